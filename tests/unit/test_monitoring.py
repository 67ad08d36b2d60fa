"""The monitor: finalisation exactly once, the post-batch step, and retention."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from batchq.batch_types.context import BatchSummary
from batchq.domain.statuses import BatchStatus
from batchq.engine.cleanup import delete_expired_batches
from batchq.engine.monitoring import finalize_if_done
from batchq.runtime import Runtime
from batchq.storage.common import utcnow
from batchq.storage.tables import batches, item_errors, items, pages

from .support import (
    MakeRuntime,
    NewType,
    create,
    deliver_seed,
    failing_items,
    finish_slow_page,
    ok_items,
    run_to_end,
    start_slow_page,
    work_off_messages,
)


class PostBatchStep:
    """A post-batch step that counts its runs (thread-safe) and answers a small report."""

    def __init__(self, error: Exception | None = None, seconds: float = 0.0) -> None:
        self.error = error
        self.seconds = seconds
        self.summaries: list[BatchSummary] = []
        self._lock = threading.Lock()

    def __call__(self, summary: BatchSummary) -> Any:
        with self._lock:
            self.summaries.append(summary)
        time.sleep(self.seconds)
        if self.error is not None:
            raise self.error
        return {"report": f"{summary.processed_items} done, {summary.failed_items} failed"}


def run_all_pages(rt: Runtime, batch_id: str) -> None:
    """Run every page, but lose the monitor messages: the batch is done, not finalised."""
    work_off_messages(rt, lost=lambda kind, _args: kind == "monitor")
    batch = rt.storage.batches.get(batch_id)
    assert batch is not None
    assert batch["jobs_completed"] == batch["total_jobs"]
    assert batch["status"] == BatchStatus.PROCESSING


def test_a_post_batch_step_runs_once_after_the_last_page_and_sets_the_result(
    rt: Runtime, new_type: NewType
) -> None:
    step = PostBatchStep()
    code, _calls = new_type(post_batch=step)
    batch_id = create(rt, code, ok_items(4) + failing_items(1), page_size=2,
                      failure_threshold=None, params={"to": "ops"})
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.COMPLETED_WITH_ERRORS
    assert batch["result"] == {"report": "5 done, 1 failed"}
    assert step.summaries == [BatchSummary(batch_id, code, {"to": "ops"}, 5, 5, 1)]


def test_a_post_batch_step_that_raises_gives_post_batch_failed_with_its_reason(
    rt: Runtime, new_type: NewType
) -> None:
    step = PostBatchStep(error=RuntimeError("the report could not be written"))
    code, _calls = new_type(post_batch=step)
    batch_id = create(rt, code, ok_items(3))
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.POST_BATCH_FAILED
    assert batch["failure_reason"] == (
        "Post-batch step failed: RuntimeError: the report could not be written")
    assert batch["processed_items"] == 3
    assert len(step.summaries) == 1


def test_a_post_batch_step_runs_exactly_once_when_finalize_runs_twice(
    rt: Runtime, new_type: NewType
) -> None:
    step = PostBatchStep()
    code, _calls = new_type(post_batch=step)
    batch_id = create(rt, code, ok_items(4), page_size=2)
    run_all_pages(rt, batch_id)
    assert finalize_if_done(rt, batch_id) == BatchStatus.COMPLETED
    assert finalize_if_done(rt, batch_id) is None
    assert len(step.summaries) == 1


def test_a_post_batch_step_runs_exactly_once_when_monitors_finalize_at_once(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    step = PostBatchStep(seconds=0.05)
    code, _calls = new_type(post_batch=step)
    rt = make_runtime()
    batch_id = create(rt, code, ok_items(4), page_size=2)
    run_all_pages(rt, batch_id)
    monitors = [make_runtime() for _ in range(4)]  # four processes, each its own connections
    start = threading.Barrier(len(monitors))
    results: list[BatchStatus | None] = []
    failures: list[BaseException] = []

    def finalize(monitor: Runtime) -> None:
        start.wait()
        try:
            results.append(finalize_if_done(monitor, batch_id))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=finalize, args=(m,)) for m in monitors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert len(step.summaries) == 1
    assert sorted(results, key=str) == [BatchStatus.COMPLETED, None, None, None]
    batch = rt.storage.batches.get(batch_id)
    assert batch is not None
    assert batch["status"] == BatchStatus.COMPLETED


def test_a_batch_without_post_batch_step_is_finalised_once_by_concurrent_monitors(
    make_runtime: MakeRuntime,
) -> None:
    rt = make_runtime()
    batch_id = create(rt, "echo", ok_items(4), page_size=2)
    # Pages committed without finalising (as by finish_one, e.g. a page the monitor gave
    # up): the final status is the monitors' to give; a worker's last page gives it itself.
    deliver_seed(rt)
    for page in rt.storage.pages.of_batch(batch_id):
        assert finish_slow_page(rt, start_slow_page(rt, batch_id, page["page_no"]))
    assert rt.storage.batches.get(batch_id)["status"] == BatchStatus.PROCESSING  # type: ignore[index]
    monitors = [make_runtime() for _ in range(4)]
    start = threading.Barrier(len(monitors))
    results: list[BatchStatus | None] = []

    def finalize(monitor: Runtime) -> None:
        start.wait()
        results.append(finalize_if_done(monitor, batch_id))

    threads = [threading.Thread(target=finalize, args=(m,)) for m in monitors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results, key=str) == [BatchStatus.COMPLETED, None, None, None]


def test_a_finaliser_that_died_is_overruled_after_the_post_batch_timeout(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    rt = make_runtime(post_batch_timeout_seconds=60)
    step = PostBatchStep()
    code, _calls = new_type(post_batch=step)
    batch_id = create(rt, code, ok_items(2))
    run_all_pages(rt, batch_id)
    started = utcnow() - timedelta(seconds=30)
    assert rt.storage.batches.claim_finalizer(batch_id, "dead-monitor", started)
    assert finalize_if_done(rt, batch_id) is None  # it may still be running
    with rt.storage.engine.begin() as conn:
        conn.execute(sa.update(batches).where(batches.c.id == batch_id)
                     .values(finalizing_since=utcnow() - timedelta(seconds=61)))
    assert finalize_if_done(rt, batch_id) == BatchStatus.POST_BATCH_FAILED
    batch = rt.storage.batches.get(batch_id)
    assert batch is not None
    assert batch["failure_reason"] == "The post-batch step did not finish within 60 seconds"
    assert step.summaries == []  # the step is never run a second time


def test_a_post_batch_result_that_is_not_json_fails_the_batch_at_once(
    rt: Runtime, new_type: NewType
) -> None:
    code, _calls = new_type(post_batch=lambda summary: {"at": datetime.now(UTC)})
    batch_id = create(rt, code, ok_items(2))
    run_all_pages(rt, batch_id)
    finalize_if_done(rt, batch_id)
    batch = rt.storage.batches.get(batch_id)
    assert batch is not None
    assert batch["status"] == BatchStatus.POST_BATCH_FAILED
    assert "result" in batch["failure_reason"]


def test_a_finished_batch_expires_retention_days_after_it_finished(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(1), retention_days=3)
    batch = run_to_end(rt, batch_id)
    assert batch["expires_at"] - batch["finished_at"] == timedelta(days=3)


def rows_of(rt: Runtime, table: sa.Table, batch_id: str) -> int:
    query = sa.select(sa.func.count()).select_from(table).where(
        (table.c.id if table is batches else table.c.batch_id) == batch_id)
    with rt.storage.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_cleanup_deletes_only_batches_past_retention_with_their_rows(rt: Runtime) -> None:
    old = create(rt, "echo", ok_items(3) + failing_items(2), page_size=2, failure_threshold=None)
    recent = create(rt, "echo", ok_items(3) + failing_items(2), page_size=2,
                    failure_threshold=None)
    run_to_end(rt, old)
    run_to_end(rt, recent)
    active = create(rt, "echo", ok_items(2))
    with rt.storage.engine.begin() as conn:
        conn.execute(sa.update(batches).where(batches.c.id == old)
                     .values(expires_at=utcnow() - timedelta(seconds=1)))
        # Even an active batch with a (bogus) past expiry is kept: only finished ones go.
        conn.execute(sa.update(batches).where(batches.c.id == active)
                     .values(expires_at=utcnow() - timedelta(days=1)))
    assert delete_expired_batches(rt) == 1
    for table in (batches, items, pages, item_errors):
        assert rows_of(rt, table, old) == 0, table.name
        assert rows_of(rt, table, recent) > 0, table.name
    assert rows_of(rt, batches, active) == 1
    assert rows_of(rt, items, active) == 2
    assert delete_expired_batches(rt) == 0


def test_cleanup_deletes_more_batches_than_one_round_takes(rt: Runtime) -> None:
    ids = [create(rt, "echo", ok_items(1)) for _ in range(3)]
    for batch_id in ids:
        run_to_end(rt, batch_id)
    with rt.storage.engine.begin() as conn:
        conn.execute(sa.update(batches).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert rt.storage.batches.delete_expired(utcnow(), limit=2) != []
    assert delete_expired_batches(rt) == 1


@pytest.mark.parametrize("result", [{"ratio": float("nan")}, ["a\x00b"]], ids=["nan", "nul"])
def test_a_post_batch_result_the_database_cannot_store_fails_the_batch_at_once(
    rt: Runtime, new_type: NewType, result: Any
) -> None:
    code, _calls = new_type(post_batch=lambda summary: result)
    batch_id = create(rt, code, ok_items(2))
    run_all_pages(rt, batch_id)
    assert finalize_if_done(rt, batch_id) == BatchStatus.POST_BATCH_FAILED
    batch = rt.storage.batches.get(batch_id)
    assert batch is not None
    assert batch["failure_reason"].startswith("The post-batch step's result (")
    assert batch["result"] is None
