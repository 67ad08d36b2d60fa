"""Single-runner guards: a periodic run that two beats (or a slow previous run) would
double is skipped while another process holds its lock."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator

import sqlalchemy as sa

from batchq.storage.engine import is_postgres

log = logging.getLogger(__name__)


@contextlib.contextmanager
def single_runner(engine: sa.Engine, name: str) -> Iterator[bool]:
    """``with single_runner(engine, "cleanup") as mine:`` run only ``if mine``.

    On PostgreSQL a session advisory lock, held on one pooled connection for the
    run; a process that dies releases it with its connection. SQLite runs on one
    machine, where every step these guard is idempotent anyway: always True.
    """
    if not is_postgres(engine):
        yield True
        return
    with engine.connect() as conn:
        key = lock_key(f"batchq:single-runner:{name}")
        mine = bool(conn.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar())
        conn.commit()  # hold the lock, not a transaction
        try:
            yield mine
        finally:
            if mine:
                _unlock(conn, key, name)


def _unlock(conn: sa.Connection, key: int, name: str) -> None:
    try:
        conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
        conn.commit()
    except Exception as exc:  # the connection is gone, and the lock went with it
        log.info("Releasing the %s lock failed (%s); it ended with its connection.", name, exc)


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name`` (Python's hash() is salted)."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
