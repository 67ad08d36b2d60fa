"""Engine creation for the two dialects batchq runs on: PostgreSQL and embedded SQLite."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from batchq.errors import ConfigurationError, StorageUnavailable
from batchq.storage.clock import follow_database_clock

log = logging.getLogger(__name__)


def create_engine(database_url: str, **kwargs: Any) -> sa.Engine:
    """An engine for ``database_url``; SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE.

    A database that cannot be reached raises ``StorageUnavailable`` from any
    statement (``_unavailable_as_domain_error``).
    """
    database_url = normalise_url(database_url)
    if database_url.startswith("sqlite"):
        engine = _sqlite_engine(database_url, **kwargs)
    else:
        if "poolclass" not in kwargs:
            kwargs.setdefault("pool_size", 5)
        engine = sa.create_engine(database_url, **kwargs)
        follow_database_clock(engine)
        if not kwargs.get("pool_pre_ping"):
            _ping_idle_connections(engine)
    _unavailable_as_domain_error(engine)
    return engine


_UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError)


def _unavailable_as_domain_error(engine: sa.Engine) -> None:
    """Raise ``StorageUnavailable`` instead of the driver's error when the database is gone.

    An ``OperationalError`` (refused or dropped connection, a restart, SQLite's
    "database is locked" past its busy timeout) or a disconnect says nothing
    about the request: retrying later may succeed. Every other error is left
    as it is. SQLAlchemy has already invalidated a dropped connection by then.
    """

    @event.listens_for(engine, "handle_error")
    def _on_error(context: sa.engine.ExceptionContext) -> BaseException | None:
        error = context.sqlalchemy_exception
        if not (context.is_disconnect or isinstance(error, _UNAVAILABLE)):
            return None
        # The driver's text names hosts and users: it goes to the log, not to callers.
        log.warning("The database is unavailable: %s", str(context.original_exception).strip())
        unavailable = StorageUnavailable("The database is unavailable; retry shortly")
        unavailable.__cause__ = context.original_exception
        return unavailable


#: A pooled connection unused for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_idle_connections(engine: sa.Engine) -> None:
    """``pool_pre_ping``, but only for connections that sat idle in the pool.

    A database restart or a dropped connection is found before a query fails,
    as with ``pool_pre_ping``; but a busy process, whose connections go back
    and forth within milliseconds, does not pay a round trip per checkout
    (``GET /batches/{id}`` checks out five, and pinging each was a quarter of
    its time).
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise sa.exc.DisconnectionError(f"a pooled connection is gone: {exc}") from exc
        if not alive:
            raise sa.exc.DisconnectionError("a pooled connection is gone")


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


def safe_url(database_url: str) -> str:
    """The database URL without its password, for printing."""
    return sa.engine.make_url(database_url).render_as_string(hide_password=True)


def is_postgres(engine: sa.Engine | sa.Connection) -> bool:
    """True when the engine or connection talks to PostgreSQL."""
    return engine.dialect.name == "postgresql"


def probe(database_url: str) -> None:
    """Connect once: raise ``ConfigurationError`` for a URL batchq cannot use and
    ``StorageUnavailable`` for a database it cannot reach, each with one line that says so.

    A bare engine, without the error hook that logs the driver's whole text.
    """
    try:
        engine = sa.create_engine(normalise_url(database_url), poolclass=sa.pool.NullPool)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError, ValueError) as exc:
        raise ConfigurationError(f"BATCHQ_DATABASE_URL is not a database URL batchq can use: "
                                 f"{exc}") from None
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as exc:
        lines = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
        raise StorageUnavailable(f"cannot reach the database at {safe_url(database_url)}: "
                                 f"{lines[0]}") from None
    finally:
        engine.dispose()
