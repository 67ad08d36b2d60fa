"""The seed step of a source batch: read the next chunk at the saved cursor, store it.

A type with a source (``BatchType.source``) finds its own items. Its batch
starts empty; each seed step calls ``source(params, cursor, limit)`` once, with
``limit = pageSize * jobsPerSeed`` (see ``chunk_limit``), and stores the chunk, its pages, the new
totals and the next cursor in one transaction. So memory is one chunk whatever
the source's size, and a seed that dies mid-read is re-sent by the monitor and
reads the same chunk again from the last stored cursor: no item is stored twice.

A source that breaks its contract or returns refused items drains the batch,
which ends ``Failed`` with the reason (pages already run stay counted). A
source that raises is read again when the monitor re-sends the stalled seed,
up to ``MAX_SOURCE_ATTEMPTS`` reads in a row, and only then fails the batch.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from batchq.batch_types.context import SourceChunk
from batchq.batch_types.registry import BatchType
from batchq.domain.items import source_item_rows
from batchq.domain.secret_params import run_params
from batchq.domain.storable import json_problem
from batchq.errors import BatchqError
from batchq.runtime import Runtime
from batchq.storage.common import Row, utcnow

log = logging.getLogger(__name__)


#: A chunk holds at most this many items (or one page, if pages are larger): a seed's
#: memory is one chunk, so it must not grow with pageSize * jobsPerSeed unchecked.
MAX_CHUNK_ITEMS = 10_000


def chunk_limit(page_size: int, jobs_per_seed: int) -> int:
    """How many items one source call may return: ``jobsPerSeed`` pages, within bounds."""
    return max(page_size, min(page_size * jobs_per_seed, MAX_CHUNK_ITEMS))


#: Reads in a row at which a source may raise before its batch fails. Between
#: them, the monitor re-sends the stalled seed after ``requeue_after_seconds``.
MAX_SOURCE_ATTEMPTS = 3


class SourceBroke(Exception):
    """The source failed or returned something the seed cannot store."""


class SourceRaised(SourceBroke):
    """The source raised: maybe a passing failure (its database restarting), so retried."""


def seed_from_source(rt: Runtime, batch_id: str) -> bool:
    """Read and store the next chunk of a source batch; True when more remain to read.

    The caller queues the new pages (``batchq.execution.seed_batch``).
    """
    batch = rt.storage.sources.begin_read(batch_id, utcnow())
    if batch is None:
        return False
    try:
        rows, next_cursor = _read_chunk(rt, batch)
    except SourceRaised as exc:
        _retry_or_fail(rt, batch, str(exc))
        return False
    except SourceBroke as exc:
        _fail(rt, batch, str(exc))
        return False
    pages = rt.storage.sources.add_chunk(batch, rows, next_cursor, utcnow())
    if pages is None:
        log.info("Dropped a chunk of batch %s read at cursor %r: the batch stopped or another "
                 "seed stored that chunk first.", batch_id, batch["source_cursor"])
        return False
    log.info("Stored %d items (%d pages) of batch %s from its source; next cursor %r.",
             len(rows), pages, batch_id, next_cursor)
    if next_cursor is None:
        rt.send("monitor", batch_id)  # the last page may already be done
        return False
    return True


def _read_chunk(rt: Runtime, batch: Row) -> tuple[list[dict[str, Any]], Any]:
    """The item rows and next cursor of the chunk after the saved cursor."""
    batch_type = _type_of(rt, batch)
    assert batch_type.source is not None
    limit = chunk_limit(batch["page_size"], batch["jobs_per_seed"])
    try:
        chunk = batch_type.source(run_params(batch), batch["source_cursor"], limit)
    except Exception as exc:
        log.info("The source of batch %s raised %r at cursor %r.", batch["id"], exc,
                 batch["source_cursor"])
        raise SourceRaised(f"The source raised at cursor {_show(batch['source_cursor'])}: "
                           f"{type(exc).__name__}: {exc}") from exc
    _check_chunk(chunk, limit)
    try:
        rows = source_item_rows(batch["id"], batch_type, chunk.items, batch["total_items"])
    except BatchqError as exc:
        raise SourceBroke(f"The source returned items that were refused: {exc.message}; "
                          f"{_first_problems(exc.details)}") from exc
    return rows, chunk.next_cursor


def _type_of(rt: Runtime, batch: Row) -> BatchType:
    try:
        batch_type = rt.registry.get(batch["type"])
    except BatchqError as exc:
        raise SourceBroke(f"The batch type is not loaded on this worker: {exc}") from exc
    if batch_type.source is None:
        raise SourceBroke(f"Batch type {batch['type']!r} has no source (any more)")
    return batch_type


def _check_chunk(chunk: Any, limit: int) -> None:
    if not isinstance(chunk, SourceChunk):
        raise SourceBroke(f"The source returned a {type(chunk).__name__}, not a SourceChunk")
    if not isinstance(chunk.items, list | tuple):
        raise SourceBroke(f"The source's items are a {type(chunk.items).__name__}, "
                          "not a list")
    if len(chunk.items) > limit:
        raise SourceBroke(f"The source returned {len(chunk.items)} items, more than the "
                          f"limit of {limit} it was given")
    problem = json_problem(chunk.next_cursor)
    if problem is not None:
        raise SourceBroke(f"The source's next cursor {problem}")


def _first_problems(details: dict[str, Any]) -> str:
    problems = details.get("itemErrors") or {}
    shown = [f"item {seq}: {'; '.join(messages)}" for seq, messages in list(problems.items())[:3]]
    return ", ".join(shown)


def _show(cursor: Any) -> str:
    text = json.dumps(cursor)
    return text if len(text) <= 200 else text[:200] + "..."


def _retry_or_fail(rt: Runtime, batch: Row, reason: str) -> None:
    """Leave the read to the monitor's re-sent seed, or fail after the last attempt."""
    failures = rt.storage.sources.count_failure(batch["id"])
    if failures is None:
        return
    if failures < MAX_SOURCE_ATTEMPTS:
        log.warning("%s (attempt %d of %d on batch %s); the monitor re-sends the seed in %s s.",
                    reason, failures, MAX_SOURCE_ATTEMPTS, batch["id"],
                    rt.settings.requeue_after_seconds)
        return
    _fail(rt, batch, f"{reason} (after {failures} attempts)")


def _fail(rt: Runtime, batch: Row, reason: str) -> None:
    if rt.storage.sources.fail(batch["id"], reason):
        log.info("Batch %s fails: %s.", batch["id"], reason)
        rt.send("monitor", batch["id"])
