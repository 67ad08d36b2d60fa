"""Creating a batch: validate and number the items while streaming them into storage."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from batchq.errors import InvalidBatch, TooManyItems
from batchq.paging import count_pages
from batchq.runtime import Runtime
from batchq.statuses import BatchStatus
from batchq.store import utcnow
from batchq.types import BatchType

CHUNK_SIZE = 10_000
MAX_REPORTED_ITEM_ERRORS = 100
_ITEM_FIELDS = frozenset({"key", "payload", "stage"})
_UNSET: Any = object()


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
    page_size = request.page_size or batch_type.page_size or rt.settings.page_size
    reader = _ItemReader(batch_id, batch_type, rt.settings.max_items)
    row = _batch_row(rt, request, batch_type, batch_id, page_size)

    def totals() -> dict[str, Any]:
        reader.raise_if_refused()
        sizes = reader.stage_sizes()
        return {"total_items": reader.count, "stage_sizes": sizes,
                "total_jobs": count_pages(sizes, page_size)}

    batch = rt.store.create_batch(row, reader.chunks(raw_items), totals)
    rt.send("seed", batch_id)
    return batch


def _batch_row(rt: Runtime, request: NewBatch, batch_type: BatchType, batch_id: str,
               page_size: int) -> dict[str, Any]:
    if page_size < 1:
        raise InvalidBatch("pageSize must be at least 1")
    jobs_per_seed = request.jobs_per_seed or batch_type.jobs_per_seed or rt.settings.jobs_per_seed
    if jobs_per_seed < 1:
        raise InvalidBatch("jobsPerSeed must be at least 1")
    threshold = request.failure_threshold
    if threshold is _UNSET:
        threshold = batch_type.threshold(rt.settings.failure_threshold)
    if threshold is not None and not 0 < threshold <= 1:
        raise InvalidBatch("failureThreshold must be greater than 0 and at most 1, or null")
    return {
        "id": batch_id, "type": batch_type.code, "status": BatchStatus.WAITING.value,
        "suspended": False, "tenant_id": request.tenant_id,
        "create_user_id": request.create_user_id, "description": request.description,
        "params": dict(request.params or {}), "page_size": page_size,
        "jobs_per_seed": jobs_per_seed, "failure_threshold": threshold,
        "retention_days": request.retention_days or rt.settings.retention_days,
        "processed_items": 0, "failed_items": 0, "jobs_created": 0, "jobs_completed": 0,
        "created_at": utcnow(),
    }


class _ItemReader:
    """Turns raw items into item rows, chunk by chunk, collecting what it refuses."""

    def __init__(self, batch_id: str, batch_type: BatchType, max_items: int) -> None:
        self.batch_id = batch_id
        self.batch_type = batch_type
        self.max_items = max_items
        self.count = 0
        self.keys: set[str] = set()
        self.next_pos: dict[int, int] = {}
        self.problems: dict[int, list[str]] = {}
        self.problem_count = 0

    def chunks(self, raw_items: Iterable[Any]) -> Iterator[list[dict[str, Any]]]:
        chunk: list[dict[str, Any]] = []
        for raw in raw_items:
            row = self._row(raw)
            if row is not None and not self.problem_count:
                chunk.append(row)
            if len(chunk) >= CHUNK_SIZE:
                yield chunk
                chunk = []
        if chunk and not self.problem_count:
            yield chunk

    def _row(self, raw: Any) -> dict[str, Any] | None:
        seq = self.count
        self.count += 1
        if self.count > self.max_items:
            raise TooManyItems(
                f"A batch may hold at most {self.max_items} items; split it into several batches",
                {"maxItems": self.max_items},
            )
        key, payload, stage = _split_item(raw, seq)
        if stage is None:
            stage = self._stage_of(payload)
        messages = self._check(key, payload, stage)
        if messages:
            self._refuse(seq, messages)
            return None
        assert isinstance(stage, int)
        pos = self.next_pos.get(stage, 0)
        self.next_pos[stage] = pos + 1
        return {"batch_id": self.batch_id, "stage": stage, "pos": pos, "seq": seq,
                "key": key, "payload": payload}

    def _check(self, key: Any, payload: Any, stage: Any) -> list[str]:
        messages: list[str] = []
        if not isinstance(key, str) or not key or len(key) > 500:
            messages.append("key must be a non-empty string of at most 500 characters")
        elif key in self.keys:
            messages.append(f"duplicate key {key!r}")
        else:
            self.keys.add(key)
        if not isinstance(stage, int) or isinstance(stage, bool):
            messages.append("stage must be an integer")
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

    def raise_if_refused(self) -> None:
        if self.count == 0:
            raise InvalidBatch("A batch needs at least one item; the item list is empty")
        if self.problem_count:
            raise InvalidBatch(
                f"{self.problem_count} of {self.count} items were refused; nothing was stored",
                {"itemErrors": {str(seq): msgs for seq, msgs in self.problems.items()},
                 "refusedItems": self.problem_count},
            )

    def stage_sizes(self) -> list[list[int]]:
        return [[stage, count] for stage, count in sorted(self.next_pos.items())]


def _split_item(raw: Any, seq: int) -> tuple[Any, Any, Any]:
    """(key, payload, stage) of an item written in either accepted form."""
    if isinstance(raw, dict) and "payload" in raw and set(raw) <= _ITEM_FIELDS:
        return raw.get("key", str(seq)), raw["payload"], raw.get("stage")
    return str(seq), raw, None
