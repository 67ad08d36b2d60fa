"""The ``retail-registry-import`` batch type: upsert registry entities in stage order.

Items are entities (see ``entities.Entity``); Blocks run first, then Chains,
Wholesalers and Customers, so every reference points at a row an earlier stage
already wrote. A reference to an entity that exists neither in the tables nor
in an earlier stage fails the item with a message naming it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from batchq import BatchSummary, ItemContext, ItemFailed, batch_type
from retail_registry import storage
from retail_registry.entities import Entity, references, stage_of


def summarise(summary: BatchSummary) -> dict[str, Any]:
    """The batch's result: rows written per kind, and how many items failed."""
    written = storage.counts_by_kind(storage.database_url(summary.params), summary.batch_id)
    return {"written": written, "failed": summary.failed_items}


@batch_type(
    "retail-registry-import",
    name="Retail registry import",
    description="Upserts blocks, chains, wholesalers and customers, in that order.",
    item_schema=Entity(),
    stage_of=stage_of,
    page_size=100,
    post_batch=summarise,
)
def import_entity(payload: dict[str, Any], ctx: ItemContext) -> None:
    """Upsert one entity; an unknown reference fails it with ``ItemFailed``."""
    engine = storage.engine_for(storage.database_url(ctx.params))
    try:
        with engine.begin() as conn:
            storage.upsert(conn, payload, ctx.batch_id)
    except sa.exc.IntegrityError as exc:
        raise ItemFailed(_missing_references(engine, payload) or _first_line(exc)) from None


def _missing_references(engine: sa.Engine, entity: dict[str, Any]) -> str | None:
    """``"Customer c-1 references Wholesaler w-9, which does not exist"``, or None."""
    with engine.connect() as conn:
        unknown = [f"{kind} {ref}" for kind, ref in references(entity).values()
                   if storage.missing(conn, kind, [ref])]
    if not unknown:
        return None
    verb = "does" if len(unknown) == 1 else "do"
    return f"{entity['kind']} {entity['id']} references {' and '.join(unknown)}, " \
           f"which {verb} not exist"


def _first_line(exc: sa.exc.IntegrityError) -> str:
    return str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
