"""The registry's PostgreSQL tables and the upserts into them.

The foreign keys are what stage order protects: a Customer whose Wholesaler has
not been written yet cannot be written either.

Engines are per process and created on first use, so a worker's pool processes
(forked after start-up) never share a connection; importing this module opens
nothing.
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

metadata = sa.MetaData()


def _table(name: str, *references: tuple[str, str]) -> sa.Table:
    columns = [sa.Column(column, sa.String(100), sa.ForeignKey(f"{target}.id"))
               for column, target in references]
    return sa.Table(
        name, metadata,
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        *columns,
        sa.Column("batch_id", sa.String(36), nullable=False),  # the batch that last wrote it
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
    )


blocks = _table("blocks")
chains = _table("chains", ("block_id", "blocks"))
wholesalers = _table("wholesalers")
customers = _table("customers", ("block_id", "blocks"), ("chain_id", "chains"),
                   ("wholesaler_id", "wholesalers"))

#: Each kind's table; payload field ``block`` is column ``block_id``, and so on.
TABLES = {"Block": blocks, "Chain": chains, "Wholesaler": wholesalers, "Customer": customers}

#: Serialises the first CREATE TABLE of concurrent worker processes.
_SCHEMA_LOCK = 0x5E7A11

_engines: dict[tuple[int, str], sa.Engine] = {}


def database_url(params: Any) -> str:
    """``params.database_url``, else the worker's own ``BATCHQ_DATABASE_URL``."""
    url = params.get("database_url") if params else None
    url = url or os.environ.get("BATCHQ_DATABASE_URL")
    if not url or not str(url).startswith(("postgres://", "postgresql")):
        raise ValueError("retail-registry-import needs a PostgreSQL database: set "
                         "params.database_url or BATCHQ_DATABASE_URL")
    return _with_psycopg2(str(url))


def _with_psycopg2(url: str) -> str:
    # psycopg2 is what batchq ships; SQLAlchemy 2.1 would pick psycopg 3 for a bare scheme.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url.removeprefix(prefix)
    return url


def engine_for(url: str) -> sa.Engine:
    """This process's engine for ``url``; the first one creates the tables if missing."""
    key = (os.getpid(), url)
    engine = _engines.get(key)
    if engine is None:
        engine = sa.create_engine(url, pool_size=2, max_overflow=0, pool_pre_ping=True)
        with engine.begin() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
            metadata.create_all(conn, checkfirst=True)
        _engines[key] = engine
    return engine


def upsert(conn: sa.Connection, entity: dict[str, Any], batch_id: str) -> None:
    """Insert the entity, or update the row with its id; foreign keys are checked."""
    table = TABLES[entity["kind"]]
    row = {"id": entity["id"], "name": entity["name"],
           "deleted": bool(entity.get("deleted", False)), "batch_id": batch_id}
    row.update({column.name: entity.get(column.name.removesuffix("_id"))
                for column in table.c if column.name.endswith("_id") and column.name != "batch_id"})
    statement = insert(table).values(row)
    changed = {name: statement.excluded[name] for name in row if name != "id"}
    conn.execute(statement.on_conflict_do_update(
        index_elements=[table.c.id], set_={**changed, "updated_at": sa.func.now()}))


def missing(conn: sa.Connection, kind: str, ids: list[str]) -> set[str]:
    """The ids among ``ids`` that have no row of ``kind``."""
    table = TABLES[kind]
    found = conn.execute(sa.select(table.c.id).where(table.c.id.in_(ids))).scalars()
    return set(ids) - set(found)


def counts_by_kind(url: str, batch_id: str) -> dict[str, int]:
    """How many rows of each kind the batch ``batch_id`` wrote last."""
    with engine_for(url).connect() as conn:
        return {
            kind: int(conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.batch_id == batch_id)
            ).scalar_one())
            for kind, table in TABLES.items()
        }
