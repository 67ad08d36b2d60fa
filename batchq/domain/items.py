"""Items as they arrive: their two accepted shapes, the checks each passes, their numbering.

An item is ``{"key"?, "payload", "stage"?}`` or a bare payload keyed by its index
(``split_item`` says which is which).
Items are numbered ``pos = 0..n-1`` within their stage (so pages are arithmetic,
``batchq.domain.paging``) and ``seq`` in input order. ``ItemReader`` does this
chunk by chunk, holding one chunk, the first refusals and a counter per stage:
never anything that grows with the item count.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from batchq.domain.storable import NUL, NUL_TEXT, SURROGATE_TEXT, is_utf8, json_problem
from batchq.errors import InvalidBatch, TooManyItems

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
#: Stages run in ascending order from 0; items.stage and pages.stage are 32-bit Integers.
MIN_STAGE, MAX_STAGE = 0, 2**31 - 1




class ItemRules(Protocol):
    """What a batch type says about its items (``BatchType`` has both)."""

    @property
    def item_schema(self) -> Any: ...

    @property
    def stage_of(self) -> Callable[[Any], int] | None: ...


@dataclass(frozen=True)
class DuplicateKeys:
    """Items whose key an earlier item of the same batch already has."""

    count: int
    #: The first of them in input order, at most the limit asked for: seq, key, first_seq.
    first: list[Mapping[str, Any]] = field(default_factory=list)


@runtime_checkable
class MeasuredItems(Protocol):
    """Items read from a body, which say how many bytes of it they took so far.

    Creation holds one chunk of rows at a time: with these, a chunk is cut at
    ``CHUNK_SIZE`` items or ``CHUNK_BYTES`` bytes, whichever comes first, so
    memory stays bounded however long each item is.
    """

    bytes_read: int

    def __iter__(self) -> Iterator[Any]: ...


def source_item_rows(batch_id: str, rules: ItemRules, raw_items: Iterable[Any],
                     first_seq: int) -> list[dict[str, Any]]:
    """Item rows of a chunk a source returned, numbered after the batch's first ``first_seq``.

    The items pass the checks of posted items (key, payload, item schema); a
    key is checked against the chunk's other keys only, not earlier chunks.
    Every item is in stage 0. Raises ``InvalidBatch`` naming refused items by seq.
    """
    reader = ItemReader(batch_id, rules, sys.maxsize)
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
    repeats: list[Mapping[str, Any]] = []
    for row in rows:
        seen = first_seq.setdefault(row["key"], row["seq"])
        if seen != row["seq"]:
            repeats.append({"seq": row["seq"], "key": row["key"], "first_seq": seen})
    return DuplicateKeys(len(repeats), repeats[:MAX_REPORTED_ITEM_ERRORS])


class ItemReader:
    """Turns raw items into item rows, chunk by chunk, collecting what it refuses.

    Its memory does not grow with the item count: one chunk of rows, the first
    refusals and a counter per stage. Repeated keys are found by the database
    once every item is in (storage, in the creating transaction); so the items it accepts are
    inserted even after a refusal, for the refusal to name every repeated key.
    """

    def __init__(self, batch_id: str, rules: ItemRules, max_items: int) -> None:
        self.batch_id = batch_id
        self.rules = rules
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
        key, payload, stage = split_item(raw, seq)
        if key is _NOT_AN_ITEM:
            self._refuse(seq, [shape_problem(raw)])
            return None
        if stage is None:
            stage = 0 if self.rules.stage_of is None else self._stage_of(payload)
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
                and self.rules.item_schema is None and json_problem(payload) is None):
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
        schema = self.rules.item_schema
        if schema is not None:
            errors = schema.validate(payload if isinstance(payload, dict) else {"_": payload})
            messages.extend(f"{name}: {problem}" for name, problem in sorted(errors.items()))
        return messages

    def _stage_of(self, payload: Any) -> Any:
        if self.rules.stage_of is None:
            return 0
        try:
            return self.rules.stage_of(payload)
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


#: The key ``split_item`` gives an object that is item-shaped but not a valid item.
_NOT_AN_ITEM: Any = object()


def split_item(raw: Any, seq: int) -> tuple[Any, Any, Any]:
    """(key, payload, stage) of an item written in either accepted form.

    The rule: an object with any of the fields ``key``, ``payload`` or ``stage``
    is an item object, which must have ``payload`` and no other field; anything
    else is a bare payload. So a misspelt field (``paylaod``) is refused rather
    than turning the whole object into a payload. A bare payload with one of
    those fields is sent wrapped: ``{"payload": {...}}``. An item object that
    breaks the rule gets ``_NOT_AN_ITEM`` as its key (``shape_problem`` says why).
    """
    if isinstance(raw, dict) and ("payload" in raw or "key" in raw or "stage" in raw):
        if "payload" in raw and raw.keys() <= _ITEM_FIELDS:
            return raw.get("key", str(seq)), raw["payload"], raw.get("stage")
        return _NOT_AN_ITEM, None, None
    return str(seq), raw, None


def shape_problem(raw: Mapping[str, Any]) -> str:
    """Why an item object (one with key, payload or stage) is not a valid item."""
    unknown = sorted(str(name) for name in raw if name not in _ITEM_FIELDS)
    problems = []
    if unknown:
        shown = ", ".join(repr(name) for name in unknown[:10])
        problems.append(f"unknown field{'s' if len(unknown) > 1 else ''} {shown}")
    if "payload" not in raw:
        problems.append("no payload field")
    return (f"an item object (one with key, payload or stage) has {' and '.join(problems)}; "
            "it takes only key, payload and stage (wrap a bare payload that has such a "
            'field as {"payload": ...})')
