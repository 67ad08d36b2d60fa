"""Creating a batch: validate and number the items while streaming them into storage."""

from __future__ import annotations

import contextlib
import gc
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from batchq.batch_types.registry import BatchType
from batchq.domain.paging import count_pages
from batchq.domain.statuses import BatchStatus
from batchq.domain.storable import NUL, NUL_TEXT, SURROGATE_TEXT, check_text, is_utf8, json_problem
from batchq.errors import InvalidBatch, TooManyItems
from batchq.runtime import Runtime
from batchq.storage.store import DuplicateKeys, Row, utcnow

#: Items read, checked and sent to the database at a time. Small enough that on
#: PostgreSQL the COPY keeps inserting while the next chunk is read (10,000 took
#: a quarter longer for a million items), large enough to cost nothing per chunk.
CHUNK_SIZE = 2_000
#: Of a ``MeasuredItems`` upload, a chunk is cut after this many bytes even if shorter.
CHUNK_BYTES = 8 * 1024 * 1024
MAX_REPORTED_ITEM_ERRORS = 100
#: Distinct stages of one batch: each one is an entry of the batch row's stage_sizes,
#: which every seed step reads, so their number must stay small whatever the item count.
MAX_STAGES = 1000
_ITEM_FIELDS = frozenset({"key", "payload", "stage"})
_UNSET: Any = object()
MAX_RETENTION_DAYS = 36_500  # 100 years; far beyond it, finishedAt + retention overflows dates
MIN_STAGE, MAX_STAGE = -(2**31), 2**31 - 1  # items.stage and pages.stage are 32-bit Integers


@runtime_checkable
class MeasuredItems(Protocol):
    """Items read from a body, which say how many bytes of it they took so far.

    Creation holds one chunk of rows at a time: with these, a chunk is cut at
    ``CHUNK_SIZE`` items or ``CHUNK_BYTES`` bytes, whichever comes first, so
    memory stays bounded however long each item is.
    """

    bytes_read: int

    def __iter__(self) -> Iterator[Any]: ...


@dataclass(frozen=True)
class NewBatch:
    """A request to create a batch; ``None`` options take the type's or the settings' default."""

    type: str
    params: Mapping[str, Any] | None = None
    description: str | None = None
    tenant_id: str | None = None
    create_user_id: str | None = None
    page_size: int | None = None
    jobs_per_seed: int | None = None
    failure_threshold: float | None = _UNSET
    retention_days: int | None = None


def create_batch(rt: Runtime, request: NewBatch, raw_items: Iterable[Any]) -> dict[str, Any]:
    """Store a new batch with its items and send its first seed; returns the batch row.

    Items are ``{"key", "payload", "stage"?}`` objects or bare payloads (keyed by
    their index). Nothing is stored when any item is refused.
    """
    batch_type = rt.registry.get(request.type)
    batch_id = str(uuid.uuid4())
    row = _batch_row(rt, request, batch_type, batch_id)
    page_size = row["page_size"]
    reader = _ItemReader(batch_id, batch_type, rt.settings.max_items)

    def totals(duplicates: DuplicateKeys) -> dict[str, Any]:
        reader.raise_if_refused(duplicates)
        sizes = reader.stage_sizes()
        return {"total_items": reader.count, "stage_sizes": sizes,
                "total_jobs": count_pages(sizes, page_size)}

    with _cyclic_gc_paused():
        batch = rt.store.create_batch(row, reader.chunks(raw_items), totals,
                                      max_active=rt.settings.max_active_batches_per_user)
    rt.send("seed", batch_id)
    return batch


def create_source_batch(rt: Runtime, request: NewBatch, *,
                        process_run: bool = False) -> dict[str, Any]:
    """Store a batch of a type with a source, with no item yet, and send its first seed.

    The seed reads the source chunk by chunk (``batchq.engine.sources``). With
    ``process_run``, the batch is a batch-process run, of which a type has at
    most one active: a second one fails with ``sqlalchemy.exc.IntegrityError``.
    """
    batch_type = rt.registry.get(request.type)
    if batch_type.source is None:
        raise InvalidBatch(f"Batch type {batch_type.code!r} has no source: post its items",
                           {"type": batch_type.code})
    batch_id = str(uuid.uuid4())
    row = {**_batch_row(rt, request, batch_type, batch_id), "total_items": 0,
           "stage_sizes": [], "total_jobs": 0, "source_cursor": None,
           "source_exhausted": False, "process_run": process_run}
    batch = rt.store.create_batch(row, [], lambda _no_items: {})
    rt.send("seed", batch_id)
    return batch


def source_item_rows(batch_id: str, batch_type: BatchType, raw_items: Iterable[Any],
                     first_seq: int) -> list[dict[str, Any]]:
    """Item rows of a chunk a source returned, numbered after the batch's first ``first_seq``.

    The items pass the checks of posted items (key, payload, item schema); a
    key is checked against the chunk's other keys only, not earlier chunks.
    Every item is in stage 0. Raises ``InvalidBatch`` naming refused items by seq.
    """
    reader = _ItemReader(batch_id, batch_type, sys.maxsize)
    reader.count = first_seq
    reader.next_pos = {0: first_seq}
    rows = [row for chunk in reader.chunks(raw_items) for row in chunk]
    if reader.count == first_seq:
        return []
    reader.raise_if_refused(_repeated_keys(rows))
    staged = [row["seq"] for row in rows if row["stage"] != 0]
    if staged:
        raise InvalidBatch(f"{len(staged)} items carry a stage; a source batch has one stage",
                           {"itemErrors": {str(seq): ["stage must not be set"]
                                           for seq in staged[:MAX_REPORTED_ITEM_ERRORS]}})
    return rows


def _repeated_keys(rows: list[dict[str, Any]]) -> DuplicateKeys:
    """The rows of one source chunk whose key an earlier row of the chunk has.

    A chunk is bounded (``batchq.engine.sources``), so a key set is fine here.
    """
    first_seq: dict[str, int] = {}
    repeats: list[Row] = []
    for row in rows:
        seen = first_seq.setdefault(row["key"], row["seq"])
        if seen != row["seq"]:
            repeats.append({"seq": row["seq"], "key": row["key"], "first_seq": seen})
    return DuplicateKeys(len(repeats), repeats[:MAX_REPORTED_ITEM_ERRORS])


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while items stream in (reference counting goes on).

    Every item makes a few dicts and strings that die young and form no cycles,
    yet each 700 of them start a collector pass: those passes took a fifth of the
    time of creating a large batch. Memory stays bounded, as nothing is kept but
    the current chunk; cycles made meanwhile (an exception's traceback) are
    collected once it resumes.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _batch_row(rt: Runtime, request: NewBatch, batch_type: BatchType,
               batch_id: str) -> dict[str, Any]:
    check_text("description", request.description)
    check_text("tenantId", request.tenant_id)
    params = dict(request.params or {})
    problem = json_problem(params)
    if problem is not None:
        raise InvalidBatch(f"params {problem}", {"field": "params"})
    _check_params(batch_type, params)
    return {
        "id": batch_id, "type": batch_type.code, "status": BatchStatus.WAITING.value,
        "suspended": False, "tenant_id": request.tenant_id,
        "create_user_id": request.create_user_id, "description": request.description,
        "params": params, **_options(rt, request, batch_type),
        "processed_items": 0, "failed_items": 0, "jobs_created": 0, "jobs_completed": 0,
        "created_at": utcnow(),
    }


def _check_params(batch_type: BatchType, params: dict[str, Any]) -> None:
    """Refuse ``params`` that fail the type's params schema, naming each wrong field.

    The params are stored as given: the schema only validates, the handler loads them.
    """
    if batch_type.params_schema is None:
        return
    errors = batch_type.params_schema.validate(params)
    if errors:
        problems = "; ".join(f"{name}: {_problem_text(problem)}"
                             for name, problem in sorted(errors.items()))
        raise InvalidBatch(f"params of a {batch_type.code!r} batch are not valid: {problems}",
                           {"field": "params", "paramsErrors": errors})


def _problem_text(problem: Any) -> str:
    """marshmallow's errors of one field (a list of messages, or nested by key) as text."""
    if isinstance(problem, list):
        return " ".join(str(message) for message in problem)
    if isinstance(problem, dict):
        return "; ".join(f"{name}: {_problem_text(inner)}" for name, inner in problem.items())
    return str(problem)


def _options(rt: Runtime, request: NewBatch, batch_type: BatchType) -> dict[str, Any]:
    """The batch's options, each from the request, else the type, else the settings.

    ``is not None`` rather than ``or``: an explicit 0 is refused, not replaced by a default.
    """
    page_size = _first_set(request.page_size, batch_type.page_size, rt.settings.page_size)
    jobs_per_seed = _first_set(request.jobs_per_seed, batch_type.jobs_per_seed,
                               rt.settings.jobs_per_seed)
    retention_days = _first_set(request.retention_days, rt.settings.retention_days)
    _check_count("pageSize", page_size)
    _check_count("jobsPerSeed", jobs_per_seed)
    _check_count("retentionDays", retention_days, MAX_RETENTION_DAYS)
    threshold = request.failure_threshold
    if threshold is _UNSET:
        threshold = batch_type.threshold(rt.settings.failure_threshold)
    if threshold is not None and not 0 < threshold <= 1:
        raise InvalidBatch("failureThreshold must be greater than 0 and at most 1, or null",
                           {"field": "failureThreshold"})
    return {"page_size": page_size, "jobs_per_seed": jobs_per_seed,
            "failure_threshold": threshold, "retention_days": retention_days}


def _first_set(*values: int | None) -> int:
    return next(value for value in values if value is not None)


def _check_count(field: str, value: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidBatch(f"{field} must be an integer of at least 1, not {value!r}",
                           {"field": field})
    if maximum is not None and value > maximum:
        raise InvalidBatch(f"{field} must be at most {maximum}, not {value}", {"field": field})




class _ItemReader:
    """Turns raw items into item rows, chunk by chunk, collecting what it refuses.

    Its memory does not grow with the item count: one chunk of rows, the first
    refusals and a counter per stage. Repeated keys are found by the database
    once every item is in (``Store.create_batch``); so the items it accepts are
    inserted even after a refusal, for the refusal to name every repeated key.
    """

    def __init__(self, batch_id: str, batch_type: BatchType, max_items: int) -> None:
        self.batch_id = batch_id
        self.batch_type = batch_type
        self.max_items = max_items
        self.count = 0
        self.next_pos: dict[int, int] = {}
        self.problems: dict[int, list[str]] = {}
        self.problem_count = 0

    def chunks(self, raw_items: Iterable[Any]) -> Iterator[list[dict[str, Any]]]:
        measured = raw_items if isinstance(raw_items, MeasuredItems) else None
        chunk_start = 0
        chunk: list[dict[str, Any]] = []
        for raw in raw_items:
            row = self._row(raw)
            if row is not None:
                chunk.append(row)
            if len(chunk) >= CHUNK_SIZE or (
                    measured is not None and measured.bytes_read - chunk_start >= CHUNK_BYTES):
                yield chunk
                chunk = []
                chunk_start = measured.bytes_read if measured is not None else 0
        if chunk:
            yield chunk

    def _row(self, raw: Any) -> dict[str, Any] | None:
        # Runs for every item: the helpers it needs are called only off the common path.
        seq = self.count
        self.count = seq + 1
        if seq >= self.max_items:
            raise TooManyItems(
                f"A batch may hold at most {self.max_items} items; split it into several batches",
                {"maxItems": self.max_items},
            )
        key, payload, stage = _split_item(raw, seq)
        if stage is None:
            stage = 0 if self.batch_type.stage_of is None else self._stage_of(payload)
        messages = self._check(key, payload, stage)
        if messages:
            self._refuse(seq, messages)
            return None
        pos = self.next_pos.get(stage)
        if pos is None:
            if len(self.next_pos) >= MAX_STAGES:
                self._refuse(seq, [f"a batch may have at most {MAX_STAGES} different stages"])
                return None
            pos = 0
        self.next_pos[stage] = pos + 1
        return {"batch_id": self.batch_id, "stage": stage, "pos": pos, "seq": seq,
                "key": key, "payload": payload}

    def _check(self, key: Any, payload: Any, stage: Any) -> list[str]:
        # The common case first, in one expression: this runs for every item.
        if (type(key) is str and 0 < len(key) <= 500 and NUL not in key and is_utf8(key)
                and type(stage) is int and MIN_STAGE <= stage <= MAX_STAGE
                and self.batch_type.item_schema is None and json_problem(payload) is None):
            return []
        messages: list[str] = []
        if not isinstance(key, str) or not key or len(key) > 500:
            messages.append("key must be a non-empty string of at most 500 characters")
        elif NUL in key:
            messages.append(f"key must not contain {NUL_TEXT}")
        elif not is_utf8(key):
            messages.append(f"key must not contain {SURROGATE_TEXT}")
        if not isinstance(stage, int) or isinstance(stage, bool):
            messages.append("stage must be an integer")
        elif not MIN_STAGE <= stage <= MAX_STAGE:
            messages.append(f"stage must be from {MIN_STAGE} to {MAX_STAGE}, not {stage}")
        problem = json_problem(payload)
        if problem is not None:
            messages.append(f"payload {problem}")
        schema = self.batch_type.item_schema
        if schema is not None:
            errors = schema.validate(payload if isinstance(payload, dict) else {"_": payload})
            messages.extend(f"{name}: {problem}" for name, problem in sorted(errors.items()))
        return messages

    def _stage_of(self, payload: Any) -> Any:
        if self.batch_type.stage_of is None:
            return 0
        try:
            return self.batch_type.stage_of(payload)
        except Exception as exc:
            return f"no stage: {exc}"  # refused by _check as "stage must be an integer"

    def _refuse(self, seq: int, messages: list[str]) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_REPORTED_ITEM_ERRORS:
            self.problems[seq] = messages

    def raise_if_refused(self, duplicates: DuplicateKeys) -> None:
        """Refuse the batch when it is empty or any item was refused, naming the first 100.

        An item refused here was not inserted, so it is never also a duplicate.
        """
        if self.count == 0:
            raise InvalidBatch("A batch needs at least one item; the item list is empty")
        refused = self.problem_count + duplicates.count
        if not refused:
            return
        problems = dict(self.problems)
        for repeat in duplicates.first:
            problems[repeat["seq"]] = [f"duplicate key {repeat['key']!r}, "
                                       f"first used by item {repeat['first_seq']}"]
        first = sorted(problems)[:MAX_REPORTED_ITEM_ERRORS]
        raise InvalidBatch(
            f"{refused} of {self.count} items were refused; nothing was stored",
            {"itemErrors": {str(seq): problems[seq] for seq in first}, "refusedItems": refused},
        )

    def stage_sizes(self) -> list[list[int]]:
        return [[stage, count] for stage, count in sorted(self.next_pos.items())]


def _split_item(raw: Any, seq: int) -> tuple[Any, Any, Any]:
    """(key, payload, stage) of an item written in either accepted form."""
    if isinstance(raw, dict) and "payload" in raw and raw.keys() <= _ITEM_FIELDS:
        return raw.get("key", str(seq)), raw["payload"], raw.get("stage")
    return str(seq), raw, None
