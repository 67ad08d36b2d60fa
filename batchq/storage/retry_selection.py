"""Copying a finished batch's failed or unprocessed items into its retry batch, in the database.

One ``INSERT INTO items ... SELECT`` does it (``copy_retried_items``): the
selected items keep their keys, stages and payloads and are numbered anew in
their input order (``seq``), and within each stage (``pos``, which grows with
``seq`` as creation numbers it), by window functions. No item passes through
this process, so a retry of a million items takes the memory of one of ten.

What is selected, as ``batchq.domain.item_outcomes`` defines the outcomes:

- *failed*: items with an error (joined on the primary keys);
- *unprocessed*: items of the batch's own pages that are not done (a range
  join that runs over the pages, reading each page's items from the items'
  primary key), items past the pages created so far (a cancelled batch's
  seed may not have made them all), and items whose retry is pending
  (``item_retries``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from batchq.domain.item_outcomes import ItemStatus
from batchq.domain.paging import page_specs
from batchq.domain.statuses import PageStatus
from batchq.storage.tables import item_errors, item_retries, items, pages

_COLUMNS = (items.c.stage, items.c.seq, items.c.key, items.c.payload)


def copy_retried_items(conn: sa.Connection, original: Mapping[str, Any], new_id: str,
                       selection: Sequence[str]) -> None:
    """Insert the ``selection`` of ``original``'s items as the items of batch ``new_id``."""
    parts = [part for kind in selection for part in _PARTS[ItemStatus(kind)](original)]
    chosen = (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery("chosen")
    seq = sa.func.row_number().over(order_by=chosen.c.seq) - 1
    # One stage (most batches): pos is seq, which saves the database a second sort.
    pos = seq if len(original["stage_sizes"]) <= 1 else (
        sa.func.row_number().over(partition_by=chosen.c.stage, order_by=chosen.c.seq) - 1)
    numbered = sa.select(sa.literal(new_id, sa.String), chosen.c.stage, pos, seq,
                         chosen.c.key, chosen.c.payload)
    conn.execute(sa.insert(items).from_select(
        ["batch_id", "stage", "pos", "seq", "key", "payload"], numbered))


def _failed(original: Mapping[str, Any]) -> list[sa.Select[Any]]:
    same_item = sa.and_(item_errors.c.batch_id == items.c.batch_id,
                        item_errors.c.stage == items.c.stage, item_errors.c.pos == items.c.pos)
    return [sa.select(*_COLUMNS).join(item_errors, same_item)
            .where(items.c.batch_id == original["id"])]


def _unprocessed(original: Mapping[str, Any]) -> list[sa.Select[Any]]:
    batch_id = original["id"]
    in_page = sa.and_(pages.c.batch_id == items.c.batch_id, pages.c.stage == items.c.stage,
                      items.c.pos >= pages.c.first_pos,
                      items.c.pos < pages.c.first_pos + pages.c.item_count)
    open_pages = (sa.select(*_COLUMNS).join(pages, in_page)
                  .where(items.c.batch_id == batch_id, pages.c.batch_id == batch_id)
                  .where(pages.c.status != PageStatus.DONE, pages.c.item_attempt == 1))
    same_item = sa.and_(item_retries.c.batch_id == items.c.batch_id,
                        item_retries.c.stage == items.c.stage, item_retries.c.pos == items.c.pos)
    pending = (sa.select(*_COLUMNS).join(item_retries, same_item)
               .where(items.c.batch_id == batch_id))
    parts = [open_pages, pending]
    beyond = _beyond_created_pages(original)
    if beyond is not None:
        parts.append(sa.select(*_COLUMNS).where(items.c.batch_id == batch_id, beyond))
    return parts


def _beyond_created_pages(original: Mapping[str, Any]) -> sa.ColumnElement[bool] | None:
    """The items no page was created for yet; None when every page exists.

    Pages are created in page order, stage after stage (``page_specs``), so
    those items are the rest of the stage of the next page to create and
    every later stage. A source batch's pages come with its items: none.
    """
    if original["source_exhausted"] is not None:
        return None
    own_created = original["jobs_created"] - original["retry_jobs"]
    following = page_specs(original["stage_sizes"], original["page_size"], own_created, 1)
    if not following:
        return None
    stage, first_pos = following[0].stage, following[0].first_pos
    later = [s for s, _count in original["stage_sizes"] if s > stage]
    rest_of_stage = sa.and_(items.c.stage == stage, items.c.pos >= first_pos)
    return sa.or_(rest_of_stage, items.c.stage.in_(later)) if later else rest_of_stage


_PARTS = {ItemStatus.FAILED: _failed, ItemStatus.UNPROCESSED: _unprocessed}
