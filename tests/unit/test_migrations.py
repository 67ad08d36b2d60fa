"""The Alembic migrations create exactly the tables of ``batchq.storage.tables``."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from batchq.storage.engine import create_engine
from batchq.storage.migrate import upgrade
from batchq.storage.tables import metadata


def test_the_migrations_equal_the_models(tmp_path: Path) -> None:
    url = "sqlite:///" + str(tmp_path / "fresh.db")
    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_upgrading_twice_changes_nothing(tmp_path: Path) -> None:
    url = "sqlite:///" + str(tmp_path / "twice.db")
    upgrade(url)
    upgrade(url)
    engine = create_engine(url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert tables == {"alembic_version", *metadata.tables}


def test_idempotency_keys_move_from_the_user_name_to_the_user_id(tmp_path: Path) -> None:
    """0010: a key of a user of today is re-owned by its id; a key of no user is dropped."""
    url = "sqlite:///" + str(tmp_path / "keys.db")
    upgrade(url, "0009_access")
    engine = create_engine(url)
    now = "2026-12-06 12:00:00"
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO users (name, id, functions, is_system, created_at) "
                "VALUES ('shop', 'u-1', '[]', 0, :now)"), {"now": now})
            for name in ("shop", "gone"):
                conn.execute(sa.text(
                    "INSERT INTO idempotency_keys (user_name, key, request_hash, status_code, "
                    "response, created_at) VALUES (:name, 'k', 'h', 201, '{}', :now)"),
                    {"name": name, "now": now})
        upgrade(url)
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT user_id, key FROM idempotency_keys")).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [("u-1", "k")]
