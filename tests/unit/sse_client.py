"""Reading a Server-Sent Events stream from the Flask test client, event by event.

A thread iterates the streamed response and parses it into events (and
heartbeat comments), so a test can drive the batch while the stream stays open.
"""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient


@dataclass(frozen=True)
class Event:
    """One event as received; ``name`` is ":" for a heartbeat comment."""

    name: str
    id: str | None = None
    data: Any = None


#: What the reader puts in the queue once the server closed the stream.
CLOSED = Event("closed")


class Stream:
    """An open ``GET /batches/{id}/events`` and the events received so far."""

    def __init__(self, client: FlaskClient, batch_id: str,
                 last_event_id: str | None = None) -> None:
        headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
        self.response = client.get(f"/batches/{batch_id}/events", headers=headers,
                                   buffered=False)
        self.status_code = self.response.status_code
        self.events: queue.Queue[Event] = queue.Queue()
        if self.status_code == 200:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        pending = ""
        try:
            for chunk in self.response.response:
                pending += chunk.decode()
                while "\n\n" in pending:
                    block, pending = pending.split("\n\n", 1)
                    parsed = parse_block(block)
                    if parsed is not None:
                        self.events.put(parsed)
        finally:
            self.events.put(CLOSED)

    def next(self, timeout: float = 10.0) -> Event:
        """The next event or heartbeat (``CLOSED`` once the stream ended)."""
        return self.events.get(timeout=timeout)

    def next_event(self, timeout: float = 10.0) -> Event:
        """The next event, heartbeats skipped."""
        while True:
            event = self.next(timeout)
            if event.name != ":":
                return event

    def close(self) -> None:
        """Hang up, as a client going away does."""
        self.response.close()


def parse_block(block: str) -> Event | None:
    """One block of the stream: an event, a heartbeat (":"), or None for a ``retry`` line."""
    fields: dict[str, str] = {}
    for line in block.splitlines():
        if line.startswith(":"):
            return Event(":")
        name, _, value = line.partition(": ")
        fields[name] = value
    if "event" not in fields:
        return None
    return Event(fields["event"], fields.get("id"), json.loads(fields["data"]))
