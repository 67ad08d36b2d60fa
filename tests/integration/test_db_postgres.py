"""The PostgreSQL engine: pooled connections the server dropped are replaced unnoticed."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from batchq.storage import engine as db
from batchq.storage.engine import create_engine


def test_a_pooled_connection_the_server_dropped_is_replaced_after_it_idled(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.1)
    engine = create_engine(postgres_url)
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            dropped = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped})
        time.sleep(0.3)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() != dropped
    finally:
        engine.dispose()
        admin.dispose()
