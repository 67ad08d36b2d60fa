"""The database's clock: the one clock every process of an installation reads.

Leases, heartbeats and deadlines are written by one process and compared by
another (a worker's lease by the monitor, on another machine). If each used its
own wall clock, a worker whose clock runs five minutes slow would write leases
that look expired the moment they are written, and one running fast would hold
a dead worker's pages for five minutes. So ``utcnow`` is this process's clock
corrected by its offset to the database server's clock, measured on every new
PostgreSQL connection and again every ``REMEASURE_SECONDS`` (a clock drifts by
milliseconds a day, a query costs one round trip). SQLite runs on this machine:
its clock is this one.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

log = logging.getLogger(__name__)

#: How often a pooled connection re-measures the offset when it is checked out.
REMEASURE_SECONDS = 300.0
#: An offset this large is worth a line in the log: someone should fix that machine's clock.
NOTABLE_OFFSET = timedelta(seconds=1)

_offset = timedelta(0)
_measured_at = float("-inf")


def local_utc() -> datetime:
    """This machine's wall clock, naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def utcnow() -> datetime:
    """Naive UTC by the database's clock, the one clock every table uses."""
    return local_utc() + _offset


def offset() -> timedelta:
    """How far the database's clock is ahead of this machine's (last measured)."""
    return _offset


def follow_database_clock(engine: sa.Engine) -> None:
    """Measure the offset to the PostgreSQL server's clock on connect and now and then."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        _measure(dbapi_connection)

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if time.monotonic() - _measured_at > REMEASURE_SECONDS:
            _measure(dbapi_connection)


def _measure(dbapi_connection: Any) -> None:
    """The server's time against the midpoint of the round trip that asked for it."""
    global _offset, _measured_at
    cursor = dbapi_connection.cursor()
    try:
        before = local_utc()
        cursor.execute("SELECT timezone('UTC', clock_timestamp())")
        after = local_utc()
        server = cursor.fetchone()[0]
    finally:
        cursor.close()
        dbapi_connection.rollback()  # end the transaction the query opened
    measured = server - (before + (after - before) / 2)
    if abs(measured - _offset) > NOTABLE_OFFSET:
        log.warning("This machine's clock is %.3f s behind the database's; batchq uses the "
                    "database's.", measured.total_seconds())
    _offset, _measured_at = measured, time.monotonic()
