"""Live progress (``GET /batches/{id}/events``): one reader per API process, shared by
every open stream.

A stream holds a thread of the web server (gunicorn's ``gthread`` worker) but no
database connection. The ``ProgressHub`` of the process runs one thread that,
every ``BATCHQ_SSE_POLL_SECONDS``, reads the rows of every watched batch in one
query on the primary key, and wakes the streams of the batches whose snapshot
changed; a stream thread waits on its batch's condition in between. So 200 open
streams cost one query per tick and one pooled connection for its length, on
SQLite as on PostgreSQL, with no broker involved; and every event of a stream
comes from the hub's reads in order, so a stream never goes back in time.

``StreamSlots`` bounds the open streams of the process and of each user; a
stream closes after its batch's final event, when its client goes away, when
nothing happened for ``BATCHQ_SSE_IDLE_SECONDS`` or after
``BATCHQ_SSE_MAX_STREAM_SECONDS`` (the client reconnects with ``Last-Event-ID``
and misses nothing).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from batchq.domain import live_events
from batchq.errors import QuotaExceeded
from batchq.settings import Settings

log = logging.getLogger(__name__)

ReadSnapshots = Callable[[Sequence[str]], Mapping[str, Mapping[str, Any]]]
#: What the hub holds for a batch that no longer exists (deleted by retention).
GONE: dict[str, Any] = {}


@dataclass
class _Watched:
    """One watched batch: its latest snapshot, a version bumped on each change, the streams."""

    changed: threading.Condition
    streams: int = 0
    version: int = 0
    latest: dict[str, Any] | None = None


class ProgressHub:
    """The process's one reader of live progress; streams wait on it, holding no connection."""

    def __init__(self, read: ReadSnapshots, poll_seconds: float) -> None:
        self._read = read
        self._poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._watched: dict[str, _Watched] = {}
        self._thread: tuple[int, threading.Thread] | None = None
        self.ticks = 0

    def watch(self, batch_id: str) -> _Watched:
        """Start watching ``batch_id`` for one more stream; the hub reads it at once."""
        with self._lock:
            watched = self._watched.get(batch_id)
            if watched is None:
                watched = self._watched[batch_id] = _Watched(threading.Condition(self._lock))
            watched.streams += 1
            self._start_thread()
            self._wake.notify()
            return watched

    def unwatch(self, batch_id: str) -> None:
        """One stream of ``batch_id`` closed; the last one stops the reading of it."""
        with self._lock:
            watched = self._watched.get(batch_id)
            if watched is not None:
                watched.streams -= 1
                if watched.streams <= 0:
                    del self._watched[batch_id]

    def wait(self, watched: _Watched, seen: int,
             timeout: float) -> tuple[int, dict[str, Any]] | None:
        """The batch's (version, snapshot) once newer than version ``seen``; None on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while watched.version == seen or watched.latest is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                watched.changed.wait(remaining)
            return watched.version, watched.latest

    def _start_thread(self) -> None:
        """Start the reader, once per process (a forked child starts its own)."""
        pid = os.getpid()
        if self._thread is None or self._thread[0] != pid or not self._thread[1].is_alive():
            thread = threading.Thread(target=self._run, name="batchq-progress-hub", daemon=True)
            self._thread = (pid, thread)
            thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._watched:
                    self._wake.wait()
                batch_ids = list(self._watched)
            self._tick(batch_ids)
            with self._lock:
                self._wake.wait(self._poll_seconds)  # a new stream wakes it early

    def _tick(self, batch_ids: list[str]) -> None:
        try:
            found = self._read(batch_ids)
        except Exception:  # the database is down: streams wait, heartbeats go on
            log.warning("The progress hub could not read %d batches; retrying.", len(batch_ids),
                        exc_info=True)
            return
        snapshots = {batch_id: live_events.snapshot(row) for batch_id, row in found.items()}
        with self._lock:
            self.ticks += 1
            for batch_id in batch_ids:
                watched = self._watched.get(batch_id)
                latest = snapshots.get(batch_id, GONE)
                if watched is not None and watched.latest != latest:
                    watched.latest = latest
                    watched.version += 1
                    watched.changed.notify_all()


class TooManyStreams(QuotaExceeded):
    """The process or the user already has the configured maximum of open streams."""


@dataclass
class StreamSlots:
    """Counts the open streams of the process and of each user, within the settings' bounds."""

    total: int
    per_user: int
    _open: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self, user: str) -> None:
        """Take a slot for ``user``; raises ``TooManyStreams`` when none is free."""
        with self._lock:
            if sum(self._open.values()) >= self.total:
                raise TooManyStreams(f"This server already holds {self.total} progress streams "
                                     "(BATCHQ_SSE_MAX_STREAMS); retry shortly",
                                     retry_after_seconds=5)
            if self._open.get(user, 0) >= self.per_user:
                raise TooManyStreams(f"User {user!r} already has {self.per_user} open progress "
                                     "streams (BATCHQ_SSE_MAX_STREAMS_PER_USER); close one",
                                     retry_after_seconds=5)
            self._open[user] = self._open.get(user, 0) + 1

    def release(self, user: str) -> None:
        """Give back a slot of ``user``."""
        with self._lock:
            self._open[user] -= 1
            if not self._open[user]:
                del self._open[user]

    def open_streams(self) -> int:
        """How many streams are open now."""
        with self._lock:
            return sum(self._open.values())


@dataclass(frozen=True)
class StreamTimes:
    """A stream's timers: heartbeat interval, idle limit, lifetime."""

    heartbeat: float
    idle: float
    lifetime: float

    @classmethod
    def from_settings(cls, settings: Settings) -> StreamTimes:
        """``BATCHQ_SSE_HEARTBEAT_SECONDS``, ``..._IDLE_SECONDS``, ``..._MAX_STREAM_SECONDS``."""
        return cls(settings.sse_heartbeat_seconds, settings.sse_idle_seconds,
                   settings.sse_max_stream_seconds)


def already_seen_end(batch: Mapping[str, Any], last_event_id: str | None) -> bool:
    """True when the batch is finished and the client's last event was its final one."""
    data = live_events.snapshot(batch)
    return live_events.is_final(data) and live_events.event_id(data) == last_event_id


class EventStream:
    """The body of one stream: an iterator of SSE bytes that gives back its slot when closed.

    The web server calls ``close`` when the client goes away or the stream ends,
    even if iteration never started.
    """

    def __init__(self, hub: ProgressHub, slots: StreamSlots, user: str,
                 batch: Mapping[str, Any], last_event_id: str | None, times: StreamTimes) -> None:
        self._hub, self._slots, self._user = hub, slots, user
        self._batch, self._last_event_id, self._times = batch, last_event_id, times
        self._closed = False
        self._watching = False
        slots.acquire(user)

    def __iter__(self) -> Iterator[bytes]:
        yield live_events.format_retry()
        first = live_events.snapshot(self._batch)
        if live_events.is_final(first):  # a final row never changes: no need to watch it
            if live_events.event_id(first) != self._last_event_id:
                yield live_events.format_event(live_events.END, first)
            return
        self._watching = True
        yield from self._follow(self._hub.watch(self._batch["id"]))

    def _follow(self, watched: _Watched) -> Iterator[bytes]:
        started = last_event = time.monotonic()
        seen_version, sent = -1, self._last_event_id
        previous: dict[str, Any] | None = None
        while True:
            now = time.monotonic()
            if now - last_event >= self._times.idle or now - started >= self._times.lifetime:
                return
            wait = min(self._times.heartbeat, self._times.idle - (now - last_event),
                       self._times.lifetime - (now - started))
            got = self._hub.wait(watched, seen_version, max(wait, 0.0))
            if got is None:
                yield live_events.HEARTBEAT
                continue
            seen_version, data = got
            if data is GONE:
                return
            if live_events.event_id(data) != sent:  # a resumed client has it already
                yield live_events.format_event(live_events.event_name(previous, data), data)
                sent, last_event = live_events.event_id(data), time.monotonic()
            previous = data
            if live_events.is_final(data):
                return

    def close(self) -> None:
        """Stop watching and give back the slot (once)."""
        if self._closed:
            return
        self._closed = True
        if self._watching:
            self._hub.unwatch(self._batch["id"])
        self._slots.release(self._user)
