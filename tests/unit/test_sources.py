"""Source batches: the seed reads the source chunk by chunk at a saved cursor."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import sqlalchemy as sa

from batchq.batch_types.context import SourceChunk
from batchq.batch_types.registry import BatchType
from batchq.domain.paging import PageSpec, chunk_page_specs
from batchq.domain.statuses import BatchStatus
from batchq.engine.monitoring import finalize_if_done, monitor_batch
from batchq.engine.seeding import seed_batch
from batchq.engine.sources import MAX_SOURCE_ATTEMPTS, chunk_limit
from batchq.errors import ConfigurationError, InvalidBatch
from batchq.runtime import Runtime
from batchq.service.creation import NewBatch, create_source_batch
from batchq.storage.tables import items

from .support import MakeRuntime, NewType, dispatcher_of, run_to_end, work_off_messages


class Crash(BaseException):
    """The seed's process dies: nothing after this point runs (not an ``Exception``)."""


class CountingSource:
    """Items ``{"n": i}`` keyed ``i`` for i < params["count"]; the cursor is the next i.

    Records every cursor it was called with; ``crash_at`` dies once at that cursor,
    ``raise_at`` raises an ordinary error there (``raise_times`` times, else always).
    """

    def __init__(self, crash_at: int | None = None, raise_at: int | None = None,
                 raise_times: int | None = None) -> None:
        self.cursors: list[Any] = []
        self.crash_at = crash_at
        self.raise_at = raise_at
        self.raises_left = raise_times

    def __call__(self, params: Mapping[str, Any], cursor: Any, limit: int) -> SourceChunk:
        self.cursors.append(cursor)
        start = cursor or 0
        if start == self.crash_at:
            self.crash_at = None
            raise Crash()
        if start == self.raise_at and self.raises_left != 0:
            if self.raises_left is not None:
                self.raises_left -= 1
            raise ConnectionError("activity database unreachable")
        end = min(start + limit, params["count"])
        chunk = [{"key": str(i), "payload": {"n": i}} for i in range(start, end)]
        return SourceChunk(chunk, end if end < params["count"] else None)


def start(rt: Runtime, code: str, count: int, **options: Any) -> str:
    request = NewBatch(type=code, params={"count": count}, **options)
    return str(create_source_batch(rt, request)["id"])


def stored_keys(rt: Runtime, batch_id: str) -> list[str]:
    query = sa.select(items.c.key).where(items.c.batch_id == batch_id).order_by(items.c.seq)
    with rt.storage.engine.connect() as conn:
        return list(conn.execute(query).scalars())


def test_chunk_pages_are_cut_per_chunk_and_only_the_last_is_short() -> None:
    assert chunk_page_specs(4, 250, 25, 10) == [
        PageSpec(4, 0, 250, 10), PageSpec(5, 0, 260, 10), PageSpec(6, 0, 270, 5)]
    assert chunk_page_specs(0, 0, 0, 10) == []


def test_a_chunk_is_jobs_per_seed_pages_but_at_most_10_000_items_or_one_page() -> None:
    assert chunk_limit(5, 2) == 10
    assert chunk_limit(100, 100) == 10_000
    assert chunk_limit(100, 1_000) == 10_000
    assert chunk_limit(50_000, 3) == 50_000


def test_a_source_batch_starts_empty_and_reads_its_source_chunk_by_chunk(
    rt: Runtime, new_type: NewType
) -> None:
    source = CountingSource()
    code, calls = new_type(source=source)
    batch_id = start(rt, code, 23, page_size=2, jobs_per_seed=5)
    batch = rt.storage.batches.get(batch_id)
    assert batch is not None
    assert (batch["total_items"], batch["total_jobs"]) == (0, 0)
    assert (batch["source_exhausted"], batch["source_cursor"]) == (False, None)

    assert seed_batch(rt, batch_id) is True  # one chunk of pageSize * jobsPerSeed items
    batch = rt.storage.batches.get(batch_id)
    assert batch is not None
    assert (batch["total_items"], batch["total_jobs"], batch["jobs_created"]) == (10, 5, 5)
    assert (batch["source_cursor"], batch["stage_sizes"]) == (10, [[0, 10]])

    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.COMPLETED
    assert source.cursors == [None, 10, 20]
    assert (batch["total_items"], batch["processed_items"], batch["total_jobs"]) == (23, 23, 12)
    assert batch["source_exhausted"] is True
    assert sorted(calls.keys, key=int) == [str(i) for i in range(23)]
    assert stored_keys(rt, batch_id) == [str(i) for i in range(23)]


def test_a_seed_that_dies_mid_read_resumes_at_the_saved_cursor_without_a_duplicate(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    rt = make_runtime(requeue_after_seconds=0)
    source = CountingSource(crash_at=20)
    code, calls = new_type(source=source)
    batch_id = start(rt, code, 35, page_size=5, jobs_per_seed=2)
    with pytest.raises(Crash):
        work_off_messages(rt)
    dispatcher_of(rt).lose_all_messages()  # the dead worker's messages are gone too

    batch = run_to_end(rt, batch_id)  # the monitor re-sends the stalled seed

    assert batch["status"] == BatchStatus.COMPLETED
    assert source.cursors == [None, 10, 20, 20, 30]
    assert stored_keys(rt, batch_id) == [str(i) for i in range(35)]
    assert (batch["total_items"], batch["processed_items"]) == (35, 35)
    assert sorted(calls.keys, key=int) == [str(i) for i in range(35)]


def test_a_chunk_read_by_a_second_seed_at_the_same_cursor_is_stored_once(
    rt: Runtime, new_type: NewType
) -> None:
    code, _calls = new_type(source=CountingSource())
    batch_id = start(rt, code, 30, page_size=5, jobs_per_seed=2)
    first = rt.storage.sources.begin_read(batch_id, rt.storage.batches.get(batch_id)["created_at"])
    second = rt.storage.sources.begin_read(batch_id, rt.storage.batches.get(batch_id)["created_at"])
    assert first is not None and second is not None
    rows = [{"batch_id": batch_id, "stage": 0, "pos": i, "seq": i, "key": str(i),
             "payload": {"n": i}} for i in range(10)]

    assert rt.storage.sources.add_chunk(first, rows, 10, first["created_at"]) == 2
    assert rt.storage.sources.add_chunk(second, rows, 10, first["created_at"]) is None
    assert stored_keys(rt, batch_id) == [str(i) for i in range(10)]
    assert rt.storage.batches.get(batch_id)["total_jobs"] == 2


def test_a_second_seed_that_lost_the_race_ends_its_chain(rt: Runtime, new_type: NewType) -> None:
    code, _calls = new_type(source=CountingSource())
    batch_id = start(rt, code, 30, page_size=5, jobs_per_seed=2)
    stale = rt.storage.sources.begin_read(batch_id, rt.storage.batches.get(batch_id)["created_at"])
    assert seed_batch(rt, batch_id) is True
    assert stale is not None
    assert rt.storage.sources.add_chunk(stale, [], 10, stale["created_at"]) is None


def test_a_source_batch_does_not_finish_while_its_source_is_not_exhausted(
    rt: Runtime, new_type: NewType
) -> None:
    code, _calls = new_type(source=CountingSource())
    batch_id = start(rt, code, 30, page_size=5, jobs_per_seed=2)
    seed_batch(rt, batch_id)
    work_off_messages(rt, lost=lambda kind, _args: kind == "seed")  # every page so far runs
    batch = rt.storage.batches.get(batch_id)
    assert batch is not None
    assert batch["jobs_completed"] == batch["total_jobs"] == 2
    assert finalize_if_done(rt, batch_id) is None
    assert rt.storage.batches.get(batch_id)["status"] == BatchStatus.PROCESSING


def test_the_monitor_resends_the_seed_of_a_source_batch_that_stalled(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    rt = make_runtime(requeue_after_seconds=0)
    code, _calls = new_type(source=CountingSource())
    batch_id = start(rt, code, 30, page_size=5, jobs_per_seed=2)
    dispatcher_of(rt).lose_all_messages()
    monitor_batch(rt, batch_id)
    assert dispatcher_of(rt).seeds == [batch_id, batch_id]


def test_an_empty_source_completes_the_batch_with_no_item(rt: Runtime, new_type: NewType) -> None:
    code, _calls = new_type(source=CountingSource())
    batch_id = start(rt, code, 0)
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.COMPLETED
    assert (batch["total_items"], batch["total_jobs"]) == (0, 0)


def test_a_source_that_keeps_raising_fails_the_batch_after_three_reads_and_keeps_counts(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    rt = make_runtime(requeue_after_seconds=0)  # each monitor round re-sends the seed
    source = CountingSource(raise_at=10)
    code, _calls = new_type(source=source)
    batch_id = start(rt, code, 30, page_size=5, jobs_per_seed=2)
    batch = run_to_end(rt, batch_id, beats=6)
    assert batch["status"] == BatchStatus.FAILED
    assert batch["failure_reason"] == (
        "The source raised at cursor 10: ConnectionError: activity database unreachable "
        f"(after {MAX_SOURCE_ATTEMPTS} attempts)")
    assert source.cursors.count(10) == MAX_SOURCE_ATTEMPTS
    assert batch["processed_items"] <= 10
    assert stored_keys(rt, batch_id) == [str(i) for i in range(10)]


def test_a_source_that_raises_and_then_recovers_completes_every_item(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    rt = make_runtime(requeue_after_seconds=0)
    source = CountingSource(raise_at=10, raise_times=MAX_SOURCE_ATTEMPTS - 1)
    code, _calls = new_type(source=source)
    batch_id = start(rt, code, 30, page_size=5, jobs_per_seed=2)
    batch = run_to_end(rt, batch_id, beats=6)
    assert batch["status"] == BatchStatus.COMPLETED
    assert (batch["processed_items"], batch["source_failures"]) == (30, 0)
    assert stored_keys(rt, batch_id) == [str(i) for i in range(30)]


@pytest.mark.parametrize(("chunk", "reason"), [
    (SourceChunk([{"key": "a", "payload": 1}, {"key": "a", "payload": 2}]),
     "The source returned items that were refused: 1 of 2 items were refused; nothing was "
     "stored; item 1: duplicate key 'a', first used by item 0"),
    (SourceChunk([{"key": "a", "payload": 1, "stage": 2}]),
     "The source returned items that were refused: 1 items carry a stage; a source batch has "
     "one stage; item 0: stage must not be set"),
    (SourceChunk(list(range(11))), "The source returned 11 items, more than the limit of 10 "
                                   "it was given"),
    (SourceChunk([], float("nan")), "The source's next cursor holds NaN or Infinity, which "
                                    "are not JSON"),
    ([1, 2], "The source returned a list, not a SourceChunk"),
])
def test_a_source_that_breaks_its_contract_fails_the_batch_naming_why(
    rt: Runtime, new_type: NewType, chunk: Any, reason: str
) -> None:
    code, _calls = new_type(source=lambda params, cursor, limit: chunk)
    batch_id = start(rt, code, 0, page_size=5, jobs_per_seed=2)
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.FAILED
    assert batch["failure_reason"] == reason
    assert stored_keys(rt, batch_id) == []


def test_bare_payloads_of_a_source_are_keyed_by_their_position_in_the_batch(
    rt: Runtime, new_type: NewType
) -> None:
    def source(params: Mapping[str, Any], cursor: Any, limit: int) -> SourceChunk:
        start = cursor or 0
        return SourceChunk([{"n": start + i} for i in range(3)], None if start else 3)

    code, _calls = new_type(source=source)
    batch_id = start(rt, code, 0, page_size=5, jobs_per_seed=2)
    assert run_to_end(rt, batch_id)["status"] == BatchStatus.COMPLETED
    assert stored_keys(rt, batch_id) == ["0", "1", "2", "3", "4", "5"]


def test_a_cancel_stops_reading_the_source(rt: Runtime, new_type: NewType) -> None:
    from batchq.service.control import cancel_batch

    source = CountingSource()
    code, _calls = new_type(source=source)
    batch_id = start(rt, code, 100, page_size=5, jobs_per_seed=2)
    seed_batch(rt, batch_id)
    cancel_batch(rt, batch_id)
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.CANCELLED
    assert source.cursors == [None]
    assert batch["total_items"] == 10


def test_a_suspended_source_batch_reads_on_only_when_resumed(
    rt: Runtime, new_type: NewType
) -> None:
    from batchq.service.control import set_suspended

    source = CountingSource()
    code, _calls = new_type(source=source)
    batch_id = start(rt, code, 25, page_size=5, jobs_per_seed=2)
    set_suspended(rt, batch_id, True)
    work_off_messages(rt)
    assert source.cursors == []
    set_suspended(rt, batch_id, False)
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.COMPLETED
    assert batch["processed_items"] == 25


def test_a_type_without_a_source_cannot_start_a_source_batch(rt: Runtime) -> None:
    with pytest.raises(InvalidBatch, match="has no source"):
        create_source_batch(rt, NewBatch(type="echo"))


def test_a_type_with_a_source_and_stages_is_refused_at_registration() -> None:
    with pytest.raises(ConfigurationError, match="'both' has both a source and stage_of"):
        BatchType(code="both", handler=print, source=CountingSource(), stage_of=len)
