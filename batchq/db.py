"""Engine creation for the two dialects batchq runs on: PostgreSQL and embedded SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event


def create_engine(database_url: str, **kwargs: Any) -> sa.Engine:
    """An engine for ``database_url``; SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE."""
    database_url = normalise_url(database_url)
    if database_url.startswith("sqlite"):
        return _sqlite_engine(database_url, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 5)
    return sa.create_engine(database_url, **kwargs)


def normalise_url(database_url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://``; both mean the psycopg2 driver batchq ships.

    (SQLAlchemy 2.1 would otherwise pick psycopg 3 for a bare ``postgresql://``.)
    """
    for prefix in ("postgres://", "postgresql://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg2://" + database_url[len(prefix) :]
    return database_url


def _sqlite_engine(database_url: str, **kwargs: Any) -> sa.Engine:
    path = sa.engine.make_url(database_url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(database_url, connect_args={"timeout": 30}, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # Several processes write: take the write lock up front, so a reader never
        # has to upgrade (which SQLite refuses with "database is locked").
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_postgres(engine: sa.Engine | sa.Connection) -> bool:
    """True when the engine or connection talks to PostgreSQL."""
    return engine.dialect.name == "postgresql"
