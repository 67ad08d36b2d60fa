"""Recovery in seconds: dead workers found by their heartbeat, lost messages by the
broker's count, the failure threshold's reason, cleanup in bounded chunks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from batchq.domain.statuses import BatchStatus, PageStatus
from batchq.engine.cleanup import delete_expired
from batchq.engine.execution import run_job
from batchq.engine.liveness import WorkerLiveness
from batchq.engine.monitoring import monitor_all, monitor_batch
from batchq.errors import ConfigurationError, StorageUnavailable
from batchq.runtime import Runtime
from batchq.settings import Settings
from batchq.storage.common import utcnow
from batchq.storage.tables import batches, item_errors, items, pages

from .support import (
    BrokenDispatcher,
    MakeRuntime,
    create,
    deliver_seed,
    dispatcher_of,
    failing_items,
    ok_items,
    run_to_end,
    start_slow_page,
)


def _queued_page(rt: Runtime, size: int = 4) -> tuple[str, int]:
    batch_id = create(rt, "echo", ok_items(size), page_size=2)
    deliver_seed(rt)
    executes = dispatcher_of(rt).executes
    return batch_id, executes[-1][1]


def _beat_at(rt: Runtime, worker: str, seconds_ago: float) -> None:
    rt.storage.worker_heartbeats.beat(worker, utcnow() - timedelta(seconds=seconds_ago))


def _status(rt: Runtime, batch_id: str, page_no: int) -> str:
    return next(p["status"] for p in rt.storage.pages.of_batch(batch_id)
                if p["page_no"] == page_no)


def test_a_page_of_a_worker_whose_heartbeat_went_stale_runs_again_long_before_its_lease_ends(
    rt: Runtime,
) -> None:
    batch_id, page_no = _queued_page(rt)
    start_slow_page(rt, batch_id, page_no, worker="dead-host:1")  # a lease of an hour
    _beat_at(rt, "dead-host:1", rt.settings.worker_lost_after_seconds + 1)
    monitor_batch(rt, batch_id)
    assert _status(rt, batch_id, page_no) == PageStatus.QUEUED
    assert (batch_id, page_no) in dispatcher_of(rt).executes[-4:]


def test_a_page_of_a_worker_that_beats_keeps_running(rt: Runtime) -> None:
    batch_id, page_no = _queued_page(rt)
    start_slow_page(rt, batch_id, page_no, worker="live-host:1")
    _beat_at(rt, "live-host:1", 1)
    monitor_batch(rt, batch_id)
    assert _status(rt, batch_id, page_no) == PageStatus.RUNNING


def test_a_worker_without_a_heartbeat_row_is_judged_by_its_lease_alone(rt: Runtime) -> None:
    batch_id, page_no = _queued_page(rt)
    start_slow_page(rt, batch_id, page_no, worker="old-style-worker")
    monitor_batch(rt, batch_id)
    assert _status(rt, batch_id, page_no) == PageStatus.RUNNING


def test_the_liveness_of_a_process_writes_its_row_at_start_and_deletes_it_at_stop(
    rt: Runtime,
) -> None:
    liveness = WorkerLiveness(rt, "this-host:42")
    liveness.start()
    beat_at = rt.storage.worker_heartbeats.last_beats()["this-host:42"]
    assert abs(beat_at - utcnow()) < timedelta(seconds=5)
    liveness.stop()
    assert "this-host:42" not in rt.storage.worker_heartbeats.last_beats()


def _age_queued_pages(rt: Runtime, seconds: float) -> None:
    with rt.storage.engine.begin() as conn:
        conn.execute(sa.update(pages).where(pages.c.status == PageStatus.QUEUED)
                     .values(queued_at=utcnow() - timedelta(seconds=seconds)))


def test_pages_whose_messages_the_broker_lost_are_sent_again_in_the_next_round(
    rt: Runtime,
) -> None:
    batch_id, _ = _queued_page(rt, size=8)
    dispatcher = dispatcher_of(rt)
    queued = {p["page_no"] for p in rt.storage.pages.of_batch(batch_id)
              if p["status"] == PageStatus.QUEUED}
    dispatcher.lose_all_messages()  # the broker restarted empty
    _age_queued_pages(rt, rt.settings.lost_message_after_seconds + 1)
    monitor_all(rt)
    resent = {args[1] for kind, args in dispatcher.outbox if kind == "execute"}
    assert queued and resent == queued
    assert run_to_end(rt, batch_id)["status"] == BatchStatus.COMPLETED


def test_pages_whose_messages_wait_in_the_broker_are_not_sent_twice(rt: Runtime) -> None:
    _queued_page(rt, size=8)
    dispatcher = dispatcher_of(rt)
    before = len(dispatcher.outbox)
    _age_queued_pages(rt, rt.settings.lost_message_after_seconds + 1)  # a long queue
    monitor_all(rt)
    assert [kind for kind, _ in list(dispatcher.outbox)[before:]] == []


def test_a_batch_the_failure_threshold_stops_says_why(rt: Runtime) -> None:
    batch_id = create(rt, "echo", failing_items(100) + ok_items(100), page_size=50,
                      failure_threshold=0.2)
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.TOO_MANY_FAILED
    assert batch["failure_reason"] == ("100 of the 100 items processed failed, reaching the "
                                       "failure threshold of 20%; the batch was stopped")


def test_cleanup_deletes_a_large_batch_in_transactions_of_bounded_size(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch_id = create(rt, "echo", ok_items(25) + failing_items(12), page_size=5,
                      failure_threshold=None)
    run_to_end(rt, batch_id)
    with rt.storage.engine.begin() as conn:
        conn.execute(sa.update(batches).values(expires_at=utcnow() - timedelta(seconds=1)))
    deleted: list[int] = []
    delete_chunk = rt.storage.batches._delete_chunk

    def counting(*args: Any) -> int:
        deleted.append(delete_chunk(*args))
        return deleted[-1]

    monkeypatch.setattr(rt.storage.batches, "_delete_chunk", counting)
    rt.storage.batches.delete_expired(utcnow(), chunk_rows=10)
    assert max(deleted) == 10 and sum(deleted) == 37 + 12 + 8  # items, errors, pages
    with rt.storage.engine.connect() as conn:
        for table in (batches, items, item_errors, pages):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0


def test_cleanup_forgets_heartbeats_of_processes_gone_for_a_day(rt: Runtime) -> None:
    _beat_at(rt, "gone:1", 2 * 86400)
    _beat_at(rt, "here:1", 1)
    delete_expired(rt)
    assert set(rt.storage.worker_heartbeats.last_beats()) == {"here:1"}


def test_a_worker_must_be_allowed_to_miss_beats_before_it_counts_as_lost() -> None:
    with pytest.raises(ConfigurationError, match="WORKER_LOST_AFTER_SECONDS"):
        Settings(worker_heartbeat_seconds=5, worker_lost_after_seconds=10)


def test_a_monitor_round_on_sqlite_needs_no_lock(make_runtime: MakeRuntime) -> None:
    rt = make_runtime()
    with rt.storage.single_runner("monitor") as mine, \
            rt.storage.single_runner("monitor") as also_mine:
        assert mine and also_mine


def test_pages_a_job_could_not_commit_are_handed_back_by_the_next_job_of_the_process(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch_id, page_no = _queued_page(rt)
    finish = rt.storage.pages.finish

    def database_gone(*_args: Any, **_kwargs: Any) -> Any:
        raise StorageUnavailable("The database is unavailable; retry shortly")

    monkeypatch.setattr(rt.storage.pages, "finish", database_gone)
    with pytest.raises(StorageUnavailable):
        run_job(rt, batch_id, page_no, "this-host:7")
    assert _status(rt, batch_id, page_no) == PageStatus.RUNNING
    monkeypatch.setattr(rt.storage.pages, "finish", finish)
    run_job(rt, "another-batch", 1, "this-host:7")  # the database is back
    assert _status(rt, batch_id, page_no) == PageStatus.QUEUED
    assert dispatcher_of(rt).executes[-1] == (batch_id, page_no)
    assert run_to_end(rt, batch_id)["processed_items"] == 4


def test_the_seed_of_a_batch_created_while_the_broker_was_down_is_sent_in_the_next_round(
    make_runtime: MakeRuntime,
) -> None:
    down = make_runtime(dispatcher=BrokenDispatcher())
    batch_id = create(down, "echo", ok_items(4))  # its seed message could not be sent
    rt = make_runtime()
    with rt.storage.engine.begin() as conn:
        conn.execute(sa.update(batches).values(
            created_at=utcnow() - timedelta(seconds=rt.settings.lost_message_after_seconds + 1)))
    monitor_all(rt)
    assert dispatcher_of(rt).seeds == [batch_id]
    assert run_to_end(rt, batch_id)["status"] == BatchStatus.COMPLETED
