"""The objects every batchq function works with, built once per process."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from batchq.adapters.egress import shared_egress
from batchq.batch_types.loading import load_types
from batchq.batch_types.registry import Registry
from batchq.domain.page_runs import PageClaim
from batchq.settings import Settings
from batchq.storage import Storage
from batchq.storage.engine import create_engine
from batchq.storage.throttling import StartGate

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    """Sends the "go" signals; the broker carries nothing the database does not know."""

    def send_seed(self, batch_id: str) -> None: ...

    def send_execute(self, batch_id: str, page_no: int) -> None: ...

    def send_monitor(self, batch_id: str) -> None: ...

    def send_deliver(self, delivery_id: str) -> None: ...

    def backlog(self) -> int:
        """How many messages the broker holds for the workers now (not yet delivered)."""
        ...


@dataclass
class Runtime:
    """Settings, storage, batch types and the message sender of one process."""

    settings: Settings
    storage: Storage
    registry: Registry
    dispatcher: Dispatcher
    #: Pages this process claimed but could not commit, because the database went away
    #: mid-page: its next job hands them back, so they need not wait for their lease
    #: (``batchq.engine.execution``).
    unfinished_claims: list[PageClaim] = field(default_factory=list)

    def clock(self) -> datetime:
        """The wall clock of run windows, naive UTC (``StartGate.clock``; a test may fake it)."""
        return self.storage.pages.gate.clock()

    def broker_backlog(self) -> int | None:
        """``Dispatcher.backlog``, or None when the broker cannot be asked."""
        try:
            return self.dispatcher.backlog()
        except Exception as exc:
            log.warning("Could not count the broker's messages: %s", exc)
            return None

    def send(self, kind: str, batch_id: str, *args: int) -> bool:
        """Send a message, logging instead of raising when the broker is unreachable.

        ``batch_id`` is the message's first argument (a delivery's id for ``deliver``).

        Losing a message is survivable: the monitor re-sends what is missing.
        """
        try:
            getattr(self.dispatcher, f"send_{kind}")(batch_id, *args)
            return True
        except Exception as exc:
            log.warning("Could not send %s message for batch %s: %s", kind, batch_id, exc)
            return False


def build_runtime(settings: Settings, dispatcher: Dispatcher, **engine_options: Any) -> Runtime:
    """Connect to the database (lazily: no connection is opened here) and load batch types.

    The process's batch types obey the egress rule of these settings (``BATCHQ_EGRESS_ALLOW``).
    """
    shared_egress.configure(settings)
    engine = create_engine(settings.database_url, **engine_options)
    gate = StartGate(settings.tenant_limit_rules)
    return Runtime(settings, Storage(engine, gate), load_types(settings.types), dispatcher)
