"""Running batches on SQLite with a recording dispatcher: counts, threshold, redelivery, stages."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from batchq.batch_types.context import ItemFailed
from batchq.domain.statuses import WORKER_LOST, BatchStatus, PageStatus
from batchq.engine.execution import (
    MAX_ERROR_MESSAGE,
    run_job,
    run_page,
)
from batchq.engine.monitoring import monitor_batch
from batchq.engine.seeding import queue_more_pages, seed_batch
from batchq.runtime import Runtime
from batchq.storage.common import utcnow

from .support import (
    BrokenDispatcher,
    MakeRuntime,
    NewType,
    create,
    deliver,
    deliver_seed,
    dispatcher_of,
    failing_items,
    finish_slow_page,
    ok_items,
    run_to_end,
    start_slow_page,
    work_off_messages,
)


def errors_of(rt: Runtime, batch_id: str) -> dict[str, str]:
    return {row["key"]: row["message"] for row in rt.storage.items.first_errors(batch_id, 10_000)}


def page_statuses(rt: Runtime, batch_id: str) -> list[str]:
    return [page["status"] for page in rt.storage.pages.of_batch(batch_id)]


def counts(batch: Any) -> tuple[int, int, int]:
    return batch["processed_items"], batch["failed_items"], batch["jobs_completed"]


def test_a_batch_of_good_items_completes_with_every_item_counted_once(
    rt: Runtime, new_type: NewType
) -> None:
    code, calls = new_type()
    batch_id = create(rt, code, ok_items(23), page_size=5)
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.COMPLETED
    assert counts(batch) == (23, 0, 5)
    assert batch["total_jobs"] == batch["jobs_created"] == 5
    assert sorted(calls.keys) == sorted(f"k{n}" for n in range(23))
    assert batch["started_at"] is not None and batch["finished_at"] is not None
    assert errors_of(rt, batch_id) == {}
    assert set(page_statuses(rt, batch_id)) == {PageStatus.DONE}


def test_failed_items_complete_with_errors_stored_under_their_keys(rt: Runtime) -> None:
    raw = ok_items(7) + failing_items(3) + ok_items(2, prefix="tail")
    batch_id = create(rt, "echo", raw, page_size=4, failure_threshold=None)
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.COMPLETED_WITH_ERRORS
    assert counts(batch) == (12, 3, 3)
    assert errors_of(rt, batch_id) == {"bad0": "boom 0", "bad1": "boom 1", "bad2": "boom 2"}


def test_a_handler_raising_any_exception_fails_only_that_item(
    rt: Runtime, new_type: NewType
) -> None:
    def picky(payload: Any, ctx: Any) -> None:
        if payload == "boom":
            raise ValueError("no booms here")
        if payload == "bare":
            raise KeyError

    code, calls = new_type(handler=picky)
    batch_id = create(rt, code, ["ok", "boom", "bare", "ok"], failure_threshold=None)
    batch = run_to_end(rt, batch_id)
    assert counts(batch) == (4, 2, 1)
    assert errors_of(rt, batch_id) == {"1": "ValueError: no booms here", "2": "KeyError"}
    assert calls.keys == ["0", "1", "2", "3"]


def test_an_error_message_the_database_cannot_store_is_cleaned_and_cut(
    rt: Runtime, new_type: NewType
) -> None:
    def unprintable(payload: Any, ctx: Any) -> None:
        if payload == "surrogate":
            raise ItemFailed("lone \ud800 surrogate and \x00 NUL")
        raise RuntimeError("x" * 100_000)

    code, _calls = new_type(handler=unprintable)
    batch_id = create(rt, code, ["surrogate", "huge"], failure_threshold=None)
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.COMPLETED_WITH_ERRORS
    assert counts(batch) == (2, 2, 1)
    errors = errors_of(rt, batch_id)
    assert errors["0"] == "lone ? surrogate and  NUL"
    assert errors["1"] == ("RuntimeError: " + "x" * 100_000)[:MAX_ERROR_MESSAGE]


def test_too_many_failures_abort_the_batch_before_every_page_ran(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    rt = make_runtime(failure_threshold=0.2)
    code, calls = new_type()
    batch_id = create(rt, code, failing_items(200), page_size=10)
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.TOO_MANY_FAILED
    # Judged once 100 items ran: the 10th page aborts, the other 10 never start.
    assert counts(batch) == (100, 100, 10)
    assert batch["total_jobs"] == 20
    assert len(calls.runs) == 100
    assert PageStatus.QUEUED not in page_statuses(rt, batch_id)
    assert PageStatus.RUNNING not in page_statuses(rt, batch_id)


def test_a_null_threshold_lets_every_item_fail_without_aborting(rt: Runtime) -> None:
    batch_id = create(rt, "echo", failing_items(150), page_size=10, failure_threshold=None)
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.COMPLETED_WITH_ERRORS
    assert counts(batch) == (150, 150, 15)


def test_the_threshold_waits_until_a_hundred_items_were_processed(rt: Runtime) -> None:
    # The first page fails entirely (10 of 10), but by 100 items only 10% failed.
    raw = failing_items(10) + ok_items(190)
    batch_id = create(rt, "echo", raw, page_size=10, failure_threshold=0.2)
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.COMPLETED_WITH_ERRORS
    assert counts(batch) == (200, 10, 20)


def test_a_small_batch_is_judged_only_once_all_its_items_ran(rt: Runtime) -> None:
    raw = failing_items(1) + ok_items(9)
    batch_id = create(rt, "echo", raw, page_size=1, failure_threshold=0.1)
    batch = run_to_end(rt, batch_id)
    # min(100, 10) = 10 items: 1 of 10 reaches 0.1 only at the very end.
    assert batch["status"] == BatchStatus.TOO_MANY_FAILED
    assert counts(batch) == (10, 1, 10)


def test_a_duplicate_execute_message_changes_no_count(rt: Runtime, new_type: NewType) -> None:
    code, calls = new_type()
    batch_id = create(rt, code, ok_items(6) + failing_items(2), page_size=3,
                      failure_threshold=None)
    work_off_messages(rt)  # seed: pages queued
    dispatcher_of(rt).send_execute(batch_id, 0)  # the broker delivers page 0 twice
    batch = run_to_end(rt, batch_id)
    assert counts(batch) == (8, 2, 3)
    assert len(calls.runs) == 8
    assert run_job(rt, batch_id, 0, "late-worker") == 0
    assert run_job(rt, batch_id, 2, "late-worker") == 0
    after = rt.storage.batches.get(batch_id)
    assert counts(after) == (8, 2, 3)
    assert len(calls.runs) == 8
    assert len(errors_of(rt, batch_id)) == 2


def test_a_message_for_a_page_another_worker_runs_does_nothing(
    rt: Runtime, new_type: NewType
) -> None:
    code, calls = new_type()
    batch_id = create(rt, code, ok_items(4), page_size=2)
    deliver_seed(rt)
    start_slow_page(rt, batch_id, 0)
    assert run_job(rt, batch_id, 0, "second-worker") == 0
    assert calls.runs == []
    work_off_messages(rt)
    assert calls.keys == ["k2", "k3"]  # page 1 only: page 0 is still the slow worker's


def test_an_outcome_committed_twice_is_counted_once(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(2) + failing_items(1), page_size=3)
    deliver_seed(rt)
    claim = start_slow_page(rt, batch_id, 0)
    outcome = run_page(rt, claim, "slow-worker")
    assert rt.storage.pages.finish_one(outcome, utcnow()).counted
    assert not rt.storage.pages.finish_one(outcome, utcnow()).counted
    assert counts(rt.storage.batches.get(batch_id)) == (3, 1, 1)


def test_a_worker_runs_following_pages_in_its_time_slice_and_counts_each_once(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    rt = make_runtime(execute_slice_seconds=60.0, max_queued_jobs=1)
    code, calls = new_type()
    batch_id = create(rt, code, ok_items(20), page_size=2, jobs_per_seed=100)
    work_off_messages(rt, lost=lambda kind, _args: kind == "execute")  # seed only
    assert run_job(rt, batch_id, 0, "fast-worker") == 10  # page 0, then 1..9 claimed directly
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.COMPLETED
    assert counts(batch) == (20, 0, 10)
    assert len(calls.runs) == 20


def test_a_page_whose_worker_died_is_run_again_by_another_worker(
    rt: Runtime, new_type: NewType
) -> None:
    code, calls = new_type()
    batch_id = create(rt, code, ok_items(6), page_size=2)
    work_off_messages(rt, doomed_pages={1})  # page 1's worker is killed mid-page
    assert page_statuses(rt, batch_id) == ["done", "running", "done"]
    monitor_batch(rt, batch_id)  # its lease is over: back in the queue
    assert dispatcher_of(rt).executes[-1] == (batch_id, 1)
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.COMPLETED
    assert counts(batch) == (6, 0, 3)
    assert sorted(calls.keys) == [f"k{n}" for n in range(6)]
    assert rt.storage.pages.of_batch(batch_id)[1]["attempts"] == 2


def test_a_page_whose_lease_has_not_expired_is_left_to_its_worker(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(4), page_size=2)
    deliver_seed(rt)
    start_slow_page(rt, batch_id, 0)
    sent = len(dispatcher_of(rt).executes)
    monitor_batch(rt, batch_id)
    assert page_statuses(rt, batch_id)[0] == PageStatus.RUNNING
    assert (batch_id, 0) not in dispatcher_of(rt).executes[sent:]


def test_a_long_page_renews_its_lease_so_the_monitor_leaves_it_alone(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    rt = make_runtime(lease_seconds=0.3)
    expired_seen: list[int] = []

    def slow(payload: Any, ctx: Any) -> None:
        time.sleep(0.12)
        expired_seen.append(len(rt.storage.pages.expired(ctx.batch_id, utcnow())))

    code, _calls = new_type(handler=slow)
    batch_id = create(rt, code, ok_items(5), page_size=5)
    batch = run_to_end(rt, batch_id)  # 0.6 s on one page, twice its lease
    assert expired_seen == [0] * 5
    assert counts(batch) == (5, 0, 1)
    assert rt.storage.pages.of_batch(batch_id)[0]["attempts"] == 1


def test_a_page_whose_workers_keep_dying_is_given_up_and_the_batch_finishes(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    rt = make_runtime(max_attempts=3)
    code, calls = new_type()
    batch_id = create(rt, code, ok_items(6), page_size=2, failure_threshold=None)
    batch = run_to_end(rt, batch_id, doomed_pages={1})
    assert batch["status"] == BatchStatus.COMPLETED_WITH_ERRORS
    assert counts(batch) == (6, 2, 3)
    assert errors_of(rt, batch_id) == {"k2": WORKER_LOST, "k3": WORKER_LOST}
    assert sorted(calls.keys) == ["k0", "k1", "k4", "k5"]
    assert rt.storage.pages.of_batch(batch_id)[1]["attempts"] == 3


def test_a_dead_workers_late_result_is_not_counted_again(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(2) + failing_items(2), page_size=4)
    deliver_seed(rt)
    now = utcnow()
    stale = rt.storage.pages.claim_queued(batch_id, 0, "stale-worker", now,
                                       now - timedelta(seconds=1))
    assert stale is not None
    late_outcome = run_page(rt, stale, "stale-worker")  # it ran, but hung before committing
    batch = run_to_end(rt, batch_id)  # the monitor re-queued the page; another worker ran it
    assert counts(batch) == (4, 2, 1)
    assert not rt.storage.pages.finish_one(late_outcome, utcnow()).counted
    assert counts(rt.storage.batches.get(batch_id)) == (4, 2, 1)
    assert len(errors_of(rt, batch_id)) == 2


def test_each_seed_creates_jobs_per_seed_pages_and_says_whether_more_remain(
    rt: Runtime,
) -> None:
    batch_id = create(rt, "echo", ok_items(10), page_size=1, jobs_per_seed=3)
    created = []
    for expected_more in (True, True, True, False):
        assert seed_batch(rt, batch_id) is expected_more
        batch = rt.storage.batches.get(batch_id)
        assert batch is not None
        created.append(batch["jobs_created"])
    assert created == [3, 6, 9, 10]
    assert [page["page_no"] for page in rt.storage.pages.of_batch(batch_id)] == list(range(10))
    assert seed_batch(rt, batch_id) is False
    assert len(rt.storage.pages.of_batch(batch_id)) == 10


def test_a_seed_message_that_comes_again_creates_no_page_twice(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(5), page_size=1, jobs_per_seed=2)
    dispatcher_of(rt).send_seed(batch_id)  # delivered twice from the start
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.COMPLETED
    assert counts(batch) == (5, 0, 5)
    assert [page["page_no"] for page in rt.storage.pages.of_batch(batch_id)] == list(range(5))


def test_a_batch_keeps_at_most_max_queued_jobs_in_the_queue(make_runtime: MakeRuntime) -> None:
    rt = make_runtime(max_queued_jobs=2)
    batch_id = create(rt, "echo", ok_items(12), page_size=1)
    outbox = dispatcher_of(rt).outbox
    while outbox:
        deliver(rt, *outbox.popleft())
        assert rt.storage.pages.work_queue_status(batch_id).queued <= 2
    batch = rt.storage.batches.get(batch_id)
    assert batch is not None
    assert batch["status"] == BatchStatus.COMPLETED
    assert counts(batch) == (12, 0, 12)


def test_two_batches_interleave_their_pages(rt: Runtime, new_type: NewType) -> None:
    code, calls = new_type()
    big = create(rt, code, ok_items(40, prefix="big"), page_size=2)
    small = create(rt, code, ok_items(4, prefix="small"), page_size=2)
    work_off_messages(rt)
    order = calls.keys
    assert order.index("small3") < order.index("big39")  # the big one did not go first in full
    assert run_to_end(rt, big)["status"] == run_to_end(rt, small)["status"] == "Completed"


def stage_items() -> list[dict[str, Any]]:
    return ([{"key": f"block{n}", "payload": n, "stage": 0} for n in range(4)]
            + [{"key": f"chain{n}", "payload": n, "stage": 1} for n in range(4)])


@pytest.mark.parametrize("slice_seconds", [0.0, 60.0], ids=["page-per-message", "time-slice"])
def test_no_page_of_stage_one_starts_while_a_stage_zero_page_is_not_done(
    make_runtime: MakeRuntime, new_type: NewType, slice_seconds: float
) -> None:
    rt = make_runtime(execute_slice_seconds=slice_seconds)
    code, calls = new_type()
    batch_id = create(rt, code, stage_items(), page_size=2)
    deliver_seed(rt)
    assert dispatcher_of(rt).executes == [(batch_id, 0), (batch_id, 1)]
    slow = start_slow_page(rt, batch_id, 0)
    work_off_messages(rt)
    assert page_statuses(rt, batch_id) == ["running", "done", "created", "created"]
    assert calls.stages == [0, 0]
    monitor_batch(rt, batch_id)
    assert page_statuses(rt, batch_id)[2:] == ["created", "created"]
    assert finish_slow_page(rt, slow)
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.COMPLETED
    assert counts(batch) == (8, 0, 4)
    assert calls.stages == [0, 0, 0, 0, 1, 1, 1, 1]


def test_stages_run_in_their_order_whatever_the_input_order(
    rt: Runtime, new_type: NewType
) -> None:
    code, calls = new_type()
    raw = [{"key": f"i{n}", "payload": n, "stage": (7 - n) % 3} for n in range(12)]
    batch_id = create(rt, code, raw, page_size=1, jobs_per_seed=2)
    batch = run_to_end(rt, batch_id)
    assert counts(batch) == (12, 0, 12)
    assert calls.stages == sorted(calls.stages)


def test_a_lost_execute_message_is_sent_again_by_the_monitor(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    rt = make_runtime(requeue_after_seconds=0)
    code, calls = new_type()
    batch_id = create(rt, code, ok_items(9), page_size=3)
    work_off_messages(rt, lost=lambda kind, _args: kind == "execute")
    assert page_statuses(rt, batch_id) == ["queued", "queued", "queued"]
    monitor_batch(rt, batch_id)
    assert sorted(dispatcher_of(rt).executes[-3:]) == [(batch_id, 0), (batch_id, 1), (batch_id, 2)]
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.COMPLETED
    assert counts(batch) == (9, 0, 3)
    assert len(calls.runs) == 9


def test_a_queued_page_is_not_sent_again_before_requeue_after_seconds(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(3), page_size=1)
    work_off_messages(rt, lost=lambda kind, _args: kind == "execute")
    sent = len(dispatcher_of(rt).executes)
    monitor_batch(rt, batch_id)
    assert len(dispatcher_of(rt).executes) == sent


def test_a_lost_seed_is_sent_again_by_the_monitor(make_runtime: MakeRuntime) -> None:
    rt = make_runtime(requeue_after_seconds=0)
    batch_id = create(rt, "echo", ok_items(5), page_size=1, jobs_per_seed=2)
    dispatcher_of(rt).lose_all_messages()
    monitor_batch(rt, batch_id)
    assert dispatcher_of(rt).seeds == [batch_id, batch_id]
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.COMPLETED
    assert counts(batch) == (5, 0, 5)


def test_a_broker_that_forgets_everything_mid_batch_loses_no_item(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    rt = make_runtime(requeue_after_seconds=0, max_queued_jobs=3)
    code, calls = new_type()
    batch_id = create(rt, code, ok_items(30) + failing_items(5), page_size=2, jobs_per_seed=4,
                      failure_threshold=None)
    outbox = dispatcher_of(rt).outbox
    for _ in range(6):  # some progress, then the broker restarts empty
        deliver(rt, *outbox.popleft())
    rt.dispatcher.lose_all_messages()  # type: ignore[attr-defined]
    batch = run_to_end(rt, batch_id, beats=10)
    assert batch["status"] == BatchStatus.COMPLETED_WITH_ERRORS
    assert counts(batch) == (35, 5, 18)
    assert sorted(set(calls.keys)) == sorted(calls.keys)  # no item ran twice


def test_a_batch_created_while_the_broker_is_down_still_runs(
    make_runtime: MakeRuntime,
) -> None:
    down = make_runtime(dispatcher=BrokenDispatcher())
    batch_id = create(down, "echo", ok_items(4), page_size=2)  # the seed message is lost
    rt = make_runtime(requeue_after_seconds=0)
    monitor_batch(rt, batch_id)
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.COMPLETED
    assert counts(batch) == (4, 0, 2)


def test_queueing_sends_one_execute_message_per_queued_page(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(10), page_size=1)
    rt.storage.pages.seed(batch_id, utcnow())
    assert queue_more_pages(rt, batch_id) == [0, 1, 2, 3]
    assert queue_more_pages(rt, batch_id) == []  # four wait already
    assert dispatcher_of(rt).executes == [(batch_id, n) for n in range(4)]
