"""Running the Alembic migrations from code (``batchq migrate``, tests, ``batchq up``)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from batchq.storage.engine import create_engine, is_postgres
from batchq.storage.locks import lock_key

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic config for ``database_url`` without an alembic.ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database's schema up to ``revision``.

    On PostgreSQL under an advisory lock: ``batchq migrate`` (the Procfile's
    ``release``) and every worker starting on a fresh database migrate, one after
    the other; whoever comes second finds nothing left to do.
    """
    engine = create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            if is_postgres(conn):
                conn.execute(sa.select(sa.func.pg_advisory_lock(lock_key("batchq:migrate"))))
                conn.commit()
            command.upgrade(alembic_config(database_url), revision)
    finally:
        engine.dispose()  # closing the connection releases the lock


def has_users_table(engine: sa.Engine) -> bool:
    """Has the database been migrated far enough to hold users (``batchq migrate`` ran)?"""
    with engine.connect() as conn:
        return bool(sa.inspect(conn).has_table("users"))
