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
