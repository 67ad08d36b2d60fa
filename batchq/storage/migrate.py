"""Running the Alembic migrations from code (``batchq migrate``, tests, ``batchq up``)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic config for ``database_url`` without an alembic.ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database's schema up to ``revision``."""
    command.upgrade(alembic_config(database_url), revision)


def has_users_table(engine: sa.Engine) -> bool:
    """Has the database been migrated far enough to hold users (``batchq migrate`` ran)?"""
    with engine.connect() as conn:
        return bool(sa.inspect(conn).has_table("users"))
