"""The start gate: whether a batch's pages may start now, beyond its own flags.

A runnable batch (``batchq.domain.lifecycle.runnable``) starts a page only
while one of its run windows is open (``batchq.domain.run_windows``), while
fewer than its ``maxConcurrentJobs`` pages run, and while its tenant runs
fewer pages than its cap (``BATCHQ_TENANT_LIMITS``, ``batchq.domain.throttling``).
The gate is asked in the transactions that queue and claim pages, after the
batch row is locked, and the claims it refuses are handed back in that
transaction, so a change to a limit holds for the next claim after it commits.

Counting a tenant's running pages takes a transaction-scoped advisory lock on
the tenant (PostgreSQL; SQLite serialises writers anyway), so two workers of
the tenant's batches cannot both take its last slot. It is always the last
lock a transaction takes, so it cannot close a cycle of lock waits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from batchq.domain.run_windows import is_open, parse_windows
from batchq.domain.statuses import ACTIVE_STATUSES, IN_FLIGHT_PAGES, PageStatus
from batchq.domain.throttling import TenantLimits, claimable
from batchq.errors import InvalidBatch
from batchq.storage.common import count_pages, status_values, utcnow
from batchq.storage.engine import is_postgres
from batchq.storage.tables import batches, pages

Clock = Callable[[], datetime]


class StartGate:
    """Run windows, a batch's ``maxConcurrentJobs`` and its tenant's cap, judged at ``clock()``.

    ``clock`` is the wall clock of run windows (naive UTC); a test may give a fake one.
    """

    def __init__(self, tenant_limits: TenantLimits | None = None, clock: Clock = utcnow) -> None:
        self.tenant_limits = tenant_limits or TenantLimits()
        self.clock = clock

    def window_open(self, batch: Mapping[str, Any]) -> bool:
        """Is one of the batch's run windows open now (or has it none)?"""
        return windows_open(batch.get("run_windows"), self.clock())

    def claimable(self, conn: sa.Connection, batch: Mapping[str, Any], claimed: int) -> int:
        """How many of the ``claimed`` pages (running in this transaction) may go on running."""
        if not claimed or not self.window_open(batch):
            return 0
        allowed = claimed
        if batch["max_concurrent_jobs"] is not None:
            running = count_pages(conn, batch["id"], (PageStatus.RUNNING.value,))
            allowed = claimable(claimed, running, batch["max_concurrent_jobs"])
        cap = self.tenant_limits.of(batch["tenant_id"]).max_concurrent_jobs
        if cap is not None and allowed:
            others = self._tenant_pages(conn, batch["tenant_id"], (PageStatus.RUNNING.value,))
            allowed = min(allowed, max(0, cap - (others - claimed)))
        return allowed

    def queue_room(self, conn: sa.Connection, batch: Mapping[str, Any], room: int) -> int:
        """How many of ``room`` further pages may be queued: queued and running ones count."""
        if room <= 0 or not self.window_open(batch):
            return 0
        if batch["max_concurrent_jobs"] is not None:
            in_flight = count_pages(conn, batch["id"], IN_FLIGHT_PAGES)
            room = min(room, batch["max_concurrent_jobs"] - in_flight)
        cap = self.tenant_limits.of(batch["tenant_id"]).max_concurrent_jobs
        if cap is not None and room > 0:
            room = min(room, cap - self._tenant_pages(conn, batch["tenant_id"], IN_FLIGHT_PAGES))
        return max(0, room)

    def _tenant_pages(self, conn: sa.Connection, tenant_id: str | None,
                      statuses: Iterable[str]) -> int:
        """Pages of the tenant's active batches in ``statuses``, under the tenant's lock."""
        if is_postgres(conn):
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_tenant_lock_key(tenant_id))))
        same_tenant = (batches.c.tenant_id.is_(None) if tenant_id is None
                       else batches.c.tenant_id == tenant_id)
        query = (sa.select(sa.func.count()).select_from(pages)
                 .join(batches, batches.c.id == pages.c.batch_id)
                 .where(same_tenant, batches.c.status.in_(status_values(ACTIVE_STATUSES)))
                 .where(pages.c.status.in_(list(statuses))))
        return int(conn.execute(query).scalar_one())


def windows_open(stored: Any, now: datetime) -> bool:
    """Is one of the stored windows open at ``now``? A window that no longer parses (a
    time zone removed from the system) counts as open rather than stalling the batch."""
    if not stored:
        return True
    try:
        return is_open(parse_windows(stored), now)
    except InvalidBatch:
        return True


def _tenant_lock_key(tenant_id: str | None) -> int:
    """A stable signed 64-bit advisory-lock key for the tenant (Python's hash() is salted)."""
    name = "" if tenant_id is None else tenant_id
    digest = hashlib.sha256(b"batchq:tenant-pages:" + name.encode() +
                            (b"\x00" if tenant_id is None else b"")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
