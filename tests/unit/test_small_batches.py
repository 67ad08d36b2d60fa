"""Small batches: pages queued in the creating transaction (no seed hop), and the final
status given by the transaction of the last page, exactly once, with its webhooks and
live events (docs/design.md, invariants 1 and 5)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from api import create_app
from batchq.domain.statuses import BatchStatus, PageStatus
from batchq.engine.execution import run_page
from batchq.engine.monitoring import finalize_if_done, monitor_all, monitor_batch
from batchq.runtime import Runtime
from batchq.storage.common import utcnow
from tests.http_server import LocalServer, running_server

from .sse_client import CLOSED, Stream
from .support import (
    MakeRuntime,
    NewType,
    authenticated_client,
    create,
    deliver,
    dispatcher_of,
    failing_items,
    ok_items,
    start_slow_page,
    work_off_messages,
)

SMALL = {"small_batch_pages": 8, "egress_allow": ("127.0.0.1/32",)}


@pytest.fixture
def rt(make_runtime: MakeRuntime) -> Runtime:
    return make_runtime(**SMALL)


@pytest.fixture
def receiver() -> Iterator[LocalServer]:
    with running_server() as server:
        yield server


def batch_of(rt: Runtime, batch_id: str) -> dict[str, Any]:
    batch = rt.storage.batches.get(batch_id)
    assert batch is not None
    return dict(batch)


def test_a_small_batch_is_created_with_its_pages_queued_and_sends_no_seed(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(10), page_size=4)
    sent = dispatcher_of(rt)
    assert sent.seeds == []
    assert sent.executes == [(batch_id, 0), (batch_id, 1), (batch_id, 2)]
    statuses = [page["status"] for page in rt.storage.pages.of_batch(batch_id)]
    assert statuses == [PageStatus.QUEUED] * 3
    assert batch_of(rt, batch_id)["jobs_created"] == 3


def test_a_batch_of_more_pages_than_small_is_seeded_by_the_seed_task(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(9), page_size=1)
    sent = dispatcher_of(rt)
    assert (sent.seeds, sent.executes) == ([batch_id], [])
    assert rt.storage.pages.of_batch(batch_id) == []


def test_a_small_batch_with_fewer_pages_per_seed_queues_the_first_and_seeds_the_rest(
    rt: Runtime,
) -> None:
    batch_id = create(rt, "echo", ok_items(6), page_size=2, jobs_per_seed=1)
    sent = dispatcher_of(rt)
    assert (sent.seeds, sent.executes) == ([batch_id], [(batch_id, 0)])
    work_off_messages(rt)
    batch = batch_of(rt, batch_id)
    assert (batch["status"], batch["processed_items"], batch["jobs_completed"]) == (
        BatchStatus.COMPLETED, 6, 3)


def test_the_last_page_finalises_the_batch_and_records_its_webhooks_without_a_monitor(
    rt: Runtime, receiver: LocalServer
) -> None:
    items = ok_items(7) + failing_items(3)
    batch_id = create(rt, "echo", items, page_size=5, failure_threshold=None,
                      callback_url=receiver.url)
    work_off_messages(rt, lost=lambda kind, _args: kind == "deliver")
    batch = batch_of(rt, batch_id)
    assert (batch["status"], batch["processed_items"], batch["failed_items"]) == (
        BatchStatus.COMPLETED_WITH_ERRORS, 10, 3)
    assert batch["finished_at"] is not None and batch["expires_at"] is not None
    assert dispatcher_of(rt).monitors == []
    recorded = rt.storage.deliveries.of_batch(batch_id)
    assert [d["event"] for d in recorded] == ["batch.complete"]  # CompletedWithErrors' one
    assert sorted(dispatcher_of(rt).delivers) == sorted(d["id"] for d in recorded)
    for delivery_id in dispatcher_of(rt).delivers:
        deliver(rt, "deliver", (delivery_id,))
    assert [r.json()["type"] for r in receiver.requests] == ["batch.complete"]
    assert finalize_if_done(rt, batch_id) is None  # the monitor, as backstop, changes nothing


def test_two_workers_finishing_the_last_pages_at_once_finalise_the_batch_once(
    make_runtime: MakeRuntime, receiver: LocalServer
) -> None:
    creator = make_runtime(**SMALL)
    batch_id = create(creator, "echo", ok_items(4), page_size=2, callback_url=receiver.url)
    workers = [make_runtime(**SMALL) for _ in range(2)]
    claims = [start_slow_page(creator, batch_id, page_no, f"w{page_no}") for page_no in (0, 1)]
    outcomes = [run_page(creator, claim, f"w{claim.page_no}") for claim in claims]
    start = threading.Barrier(2)
    finalized: list[BatchStatus | None] = []

    def finish(worker: Runtime, index: int) -> None:
        start.wait()
        result = worker.storage.pages.finish([outcomes[index]], utcnow(), finalize=True,
                                             has_post_batch=False)
        finalized.append(result.finalized)

    threads = [threading.Thread(target=finish, args=(w, i)) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(finalized, key=str) == [BatchStatus.COMPLETED, None]
    batch = batch_of(creator, batch_id)
    assert (batch["status"], batch["processed_items"], batch["jobs_completed"]) == (
        BatchStatus.COMPLETED, 4, 2)
    assert len(creator.storage.deliveries.of_batch(batch_id)) == 2  # one per event


def test_a_redelivered_last_page_neither_counts_nor_finalises_again(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(3))
    claim = start_slow_page(rt, batch_id, 0)
    outcome = run_page(rt, claim, "slow-worker")
    first = rt.storage.pages.finish([outcome], utcnow(), finalize=True, has_post_batch=False)
    again = rt.storage.pages.finish([outcome], utcnow(), finalize=True, has_post_batch=False)
    assert (first.counted, first.finalized) == (True, BatchStatus.COMPLETED)
    assert (again.counted, again.finalized) == (False, None)
    batch = batch_of(rt, batch_id)
    assert (batch["processed_items"], batch["jobs_completed"]) == (3, 1)


def test_a_page_that_reaches_the_failure_threshold_ends_the_batch_too_many_failed(
    rt: Runtime,
) -> None:
    batch_id = create(rt, "echo", failing_items(10))
    work_off_messages(rt)
    batch = batch_of(rt, batch_id)
    assert (batch["status"], batch["processed_items"], batch["failed_items"]) == (
        BatchStatus.TOO_MANY_FAILED, 10, 10)
    assert dispatcher_of(rt).monitors == []


def test_a_batch_cancelled_while_its_page_runs_ends_cancelled_with_that_page(
    rt: Runtime,
) -> None:
    batch_id = create(rt, "echo", ok_items(6), page_size=3)
    claim = start_slow_page(rt, batch_id, 0)
    rt.storage.batches.request_cancel(batch_id, utcnow())
    result = rt.storage.pages.finish([run_page(rt, claim, "slow-worker")], utcnow(),
                                     finalize=True, has_post_batch=False)
    assert result.finalized == BatchStatus.CANCELLED
    batch = batch_of(rt, batch_id)
    assert (batch["status"], batch["processed_items"]) == (BatchStatus.CANCELLED, 3)
    work_off_messages(rt)  # page 1's message, unqueued by the cancel, runs nothing
    assert batch_of(rt, batch_id)["processed_items"] == 3


def test_a_suspended_small_batch_runs_nothing_until_resumed(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(4), page_size=2)
    rt.storage.batches.set_suspended(batch_id, True)
    work_off_messages(rt)
    assert batch_of(rt, batch_id)["processed_items"] == 0
    rt.storage.batches.set_suspended(batch_id, False)
    monitor_batch(rt, batch_id)  # resume puts the deferred pages back in the queue
    work_off_messages(rt)
    assert batch_of(rt, batch_id)["status"] == BatchStatus.COMPLETED


def test_a_type_with_a_post_batch_step_is_finalised_by_the_monitor_once(
    rt: Runtime, new_type: NewType
) -> None:
    steps: list[int] = []
    code, _calls = new_type(post_batch=lambda summary: steps.append(summary.processed_items))
    batch_id = create(rt, code, ok_items(3))
    work_off_messages(rt)  # the last page asked for the monitor, which ran the step
    assert dispatcher_of(rt).monitors == [batch_id]
    assert batch_of(rt, batch_id)["status"] == BatchStatus.COMPLETED
    assert steps == [3]


def test_the_live_stream_of_a_small_batch_ends_with_its_final_status(
    make_runtime: MakeRuntime,
) -> None:
    rt = make_runtime(**SMALL, sse_poll_seconds=0.05, sse_heartbeat_seconds=0.5)
    client: FlaskClient = authenticated_client(create_app(runtime=rt))
    batch_id = create(rt, "echo", ok_items(10))
    stream = Stream(client, batch_id)
    events = [stream.next_event()]
    work_off_messages(rt)
    while events[-1].name != "end":
        events.append(stream.next_event())
    assert stream.next() is CLOSED
    assert events[-1].data["status"] == BatchStatus.COMPLETED
    assert events[-1].data["processedItems"] == 10


def test_an_echo_item_with_spin_us_spins_that_long_and_succeeds(rt: Runtime) -> None:
    """``spin_us`` is the real work of bench/throughput.py; a bool or a negative is none."""
    batch_id = create(rt, "echo", [{"spin_us": 2000}, {"spin_us": True}, {"spin_us": -5}])
    started = time.perf_counter()
    work_off_messages(rt)
    assert time.perf_counter() - started >= 0.002
    batch = batch_of(rt, batch_id)
    assert (batch["status"], batch["processed_items"], batch["failed_items"]) == (
        BatchStatus.COMPLETED, 3, 0)


def test_a_monitor_round_visits_only_batches_it_has_something_to_do_for(rt: Runtime) -> None:
    """Thousands of small batches in flight must not cost a monitor round each."""
    now = utcnow()
    fresh = create(rt, "echo", ok_items(4), page_size=2)  # both pages queued just now
    running = create(rt, "echo", ok_items(2))
    start_slow_page(rt, running, 0)  # a long, live lease
    seeded_later = create(rt, "echo", ok_items(20), page_size=2)  # 10 pages: the seed's
    assert set(rt.storage.pages.needing_monitor(now, now - timedelta(seconds=60))) == {
        seeded_later}  # no page yet: nothing in flight
    later = now + timedelta(seconds=120)  # the queued messages are stale by then
    assert set(rt.storage.pages.needing_monitor(later, later - timedelta(seconds=60))) == {
        fresh, seeded_later}
    expired = now + timedelta(hours=2)  # the running page's lease has run out
    assert running in rt.storage.pages.needing_monitor(expired, now)


def test_the_monitor_round_still_finalises_a_batch_whose_last_page_left_it_done(
    rt: Runtime,
) -> None:
    batch_id = create(rt, "echo", ok_items(2))
    claim = start_slow_page(rt, batch_id, 0)
    rt.storage.pages.finish_one(run_page(rt, claim, "slow-worker"), utcnow())  # no finalising
    assert batch_of(rt, batch_id)["status"] == BatchStatus.PROCESSING
    assert monitor_all(rt) == 1
    assert batch_of(rt, batch_id)["status"] == BatchStatus.COMPLETED
