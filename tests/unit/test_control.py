"""What a user does to a running batch: cancel, suspend, resume, read."""

from __future__ import annotations

import pytest

from api.errors import status_code_of
from api.presenters import batch_view
from batchq.domain.statuses import BatchStatus, PageStatus
from batchq.engine.execution import run_job
from batchq.engine.monitoring import finalize_if_done, monitor_batch
from batchq.engine.seeding import queue_more_pages
from batchq.errors import BatchNotFound, Conflict, InvalidBatch
from batchq.runtime import Runtime
from batchq.service import control

from .support import (
    MakeRuntime,
    NewType,
    create,
    deliver_seed,
    dispatcher_of,
    failing_items,
    finish_slow_page,
    ok_items,
    run_to_end,
    start_slow_page,
    work_off_messages,
)


def page_statuses(rt: Runtime, batch_id: str) -> list[str]:
    return [page["status"] for page in rt.storage.pages.of_batch(batch_id)]


def status_of(rt: Runtime, batch_id: str) -> str:
    return str(control.get_batch(rt, batch_id)["status"])


def test_cancel_drains_the_batch_counting_only_the_pages_that_ran(
    rt: Runtime, new_type: NewType
) -> None:
    code, calls = new_type()
    batch_id = create(rt, code, ok_items(10), page_size=2)
    deliver_seed(rt)  # pages 0-3 queued, page 4 created
    slow = start_slow_page(rt, batch_id, 0)
    cancelled = control.cancel_batch(rt, batch_id)
    assert cancelled["status"] == BatchStatus.CANCELLING
    assert page_statuses(rt, batch_id) == ["running", "created", "created", "created", "created"]
    work_off_messages(rt)  # the execute messages of pages 1-3 arrive late: they do nothing
    assert calls.runs == []
    assert status_of(rt, batch_id) == BatchStatus.CANCELLING  # page 0 still runs
    assert finish_slow_page(rt, slow)
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.CANCELLED
    assert (batch["processed_items"], batch["failed_items"], batch["jobs_completed"]) == (2, 0, 1)
    assert calls.keys == ["k0", "k1"]
    assert batch_view(control.batch_details(rt, batch_id))["unprocessed_items"] == 8


def test_cancelled_batch_starts_no_new_page(rt: Runtime, new_type: NewType) -> None:
    code, calls = new_type()
    batch_id = create(rt, code, ok_items(6), page_size=1, jobs_per_seed=2)
    deliver_seed(rt)
    control.cancel_batch(rt, batch_id)
    assert run_job(rt, batch_id, 0, "late-worker") == 0
    assert queue_more_pages(rt, batch_id) == []
    assert run_to_end(rt, batch_id)["status"] == BatchStatus.CANCELLED
    assert calls.runs == []
    assert len(rt.storage.pages.of_batch(batch_id)) == 2  # the next seed step created nothing


def test_a_waiting_batch_cancels_at_once_when_monitored(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(3))
    dispatcher_of(rt).lose_all_messages()
    control.cancel_batch(rt, batch_id)
    assert dispatcher_of(rt).monitors == [batch_id]
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.CANCELLED
    assert batch["processed_items"] == 0
    assert batch["finished_at"] is not None


def test_a_second_cancel_while_cancelling_is_accepted(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(3))
    control.cancel_batch(rt, batch_id)
    assert control.cancel_batch(rt, batch_id)["status"] == BatchStatus.CANCELLING


@pytest.mark.parametrize("items", [ok_items(2), failing_items(2)], ids=["completed", "failed"])
def test_cancel_of_a_finished_batch_is_a_conflict(rt: Runtime, items: list[object]) -> None:
    batch_id = create(rt, "echo", items, failure_threshold=None)
    finished = run_to_end(rt, batch_id)
    with pytest.raises(Conflict) as refused:
        control.cancel_batch(rt, batch_id)
    assert status_code_of(refused.value) == 409
    assert status_of(rt, batch_id) == finished["status"]


def test_cancel_of_a_batch_stopping_for_too_many_failures_is_a_conflict(
    rt: Runtime,
) -> None:
    batch_id = create(rt, "echo", failing_items(120), page_size=10, failure_threshold=0.5)
    deliver_seed(rt)
    slow = start_slow_page(rt, batch_id, 3)
    work_off_messages(rt)  # 100 of 100 failed on the other pages: abort, page 3 still runs
    assert status_of(rt, batch_id) == BatchStatus.PROCESSING
    with pytest.raises(Conflict, match="too many items failed"):
        control.cancel_batch(rt, batch_id)
    finish_slow_page(rt, slow)
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.TOO_MANY_FAILED
    assert (batch["processed_items"], batch["jobs_completed"]) == (110, 11)


def test_cancel_of_a_type_that_cannot_be_cancelled_is_a_conflict(
    rt: Runtime, new_type: NewType
) -> None:
    code, _calls = new_type(can_cancel=False)
    batch_id = create(rt, code, ok_items(2))
    with pytest.raises(Conflict, match="cannot be cancelled"):
        control.cancel_batch(rt, batch_id)
    assert run_to_end(rt, batch_id)["status"] == BatchStatus.COMPLETED


def test_an_unknown_batch_is_not_found(rt: Runtime) -> None:
    for act in (lambda: control.cancel_batch(rt, "nope"),
                lambda: control.set_suspended(rt, "nope", True),
                lambda: control.set_description(rt, "nope", "x"),
                lambda: batch_view(control.batch_details(rt, "nope"))):
        with pytest.raises(BatchNotFound):
            act()


def test_a_suspended_batch_starts_no_page_until_resumed(rt: Runtime, new_type: NewType) -> None:
    code, calls = new_type()
    batch_id = create(rt, code, ok_items(7) + failing_items(1), page_size=2,
                      failure_threshold=None)
    deliver_seed(rt)
    assert control.set_suspended(rt, batch_id, True)["suspended"] is True
    assert page_statuses(rt, batch_id) == ["created"] * 4  # queued pages taken back
    sent = len(dispatcher_of(rt).executes)
    work_off_messages(rt)  # their late messages do nothing
    assert run_job(rt, batch_id, 0, "any-worker") == 0
    assert queue_more_pages(rt, batch_id) == []
    monitor_batch(rt, batch_id)
    assert len(dispatcher_of(rt).executes) == sent
    assert calls.runs == []
    assert status_of(rt, batch_id) == BatchStatus.WAITING
    shown = batch_view(control.batch_details(rt, batch_id))
    assert shown["progress_description"].startswith("Suspended")

    assert control.set_suspended(rt, batch_id, False)["suspended"] is False
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.COMPLETED_WITH_ERRORS
    assert (batch["processed_items"], batch["failed_items"], batch["jobs_completed"]) == (8, 1, 4)
    assert sorted(calls.keys) == sorted([f"k{n}" for n in range(7)] + ["bad0"])


def test_a_page_running_when_the_batch_is_suspended_finishes_and_counts(
    rt: Runtime, new_type: NewType
) -> None:
    code, calls = new_type()
    batch_id = create(rt, code, ok_items(4), page_size=2)
    deliver_seed(rt)
    slow = start_slow_page(rt, batch_id, 0)
    control.set_suspended(rt, batch_id, True)
    assert finish_slow_page(rt, slow)
    work_off_messages(rt)
    batch = control.get_batch(rt, batch_id)
    assert (batch["processed_items"], batch["jobs_completed"]) == (2, 1)
    assert finalize_if_done(rt, batch_id) is None
    control.set_suspended(rt, batch_id, False)
    assert run_to_end(rt, batch_id)["status"] == BatchStatus.COMPLETED
    assert sorted(calls.keys) == ["k0", "k1", "k2", "k3"]


def test_a_page_whose_worker_died_while_suspended_waits_for_the_resume(
    make_runtime: MakeRuntime,
) -> None:
    rt = make_runtime()
    batch_id = create(rt, "echo", ok_items(2), page_size=2)
    work_off_messages(rt, doomed_pages={0})
    control.set_suspended(rt, batch_id, True)
    monitor_batch(rt, batch_id)  # the lease ran out: released, but not queued
    assert page_statuses(rt, batch_id) == [PageStatus.CREATED]
    control.set_suspended(rt, batch_id, False)
    assert run_to_end(rt, batch_id)["status"] == BatchStatus.COMPLETED


def test_suspend_or_resume_of_a_finished_batch_is_a_conflict(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(1))
    run_to_end(rt, batch_id)
    for suspended in (True, False):
        with pytest.raises(Conflict):
            control.set_suspended(rt, batch_id, suspended)
    assert control.get_batch(rt, batch_id)["suspended"] is False


def test_the_description_can_be_changed(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(1), description="before")
    assert control.set_description(rt, batch_id, "after")["description"] == "after"


def test_describing_a_batch_shows_progress_and_errors_by_key(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(3) + failing_items(2), page_size=2,
                      failure_threshold=None)
    deliver_seed(rt)
    slow = start_slow_page(rt, batch_id, 2)
    work_off_messages(rt)
    shown = batch_view(control.batch_details(rt, batch_id))
    assert shown["status"] == BatchStatus.PROCESSING
    assert shown["progress"] == "2 out of 3"
    assert shown["progress_percent"] == 80.0
    assert shown["unprocessed_items"] == 1
    assert shown["item_errors"] == {"bad0": "boom 0"}
    assert shown["item_errors_truncated"] is False
    assert shown["work_queue_status"] == {"queued": 0, "running": 1, "workers": ["slow-worker"]}
    assert shown["progress_description"] == "Processing: 4 of 5 items processed, 1 failed"
    finish_slow_page(rt, slow)
    assert batch_view(control.batch_details(rt, batch_id))["item_errors"] == {
        "bad0": "boom 0", "bad1": "boom 1"}


def test_a_change_refused_for_a_finished_batch_changes_nothing(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(1), description="before")
    run_to_end(rt, batch_id)
    with pytest.raises(Conflict):
        control.change_batch(rt, batch_id, {"description": "after", "suspended": True})
    assert control.get_batch(rt, batch_id)["description"] == "before"
    assert control.change_batch(rt, batch_id, {"description": "after"})["description"] == "after"


def test_a_change_of_nothing_or_of_an_unknown_batch_is_refused(rt: Runtime) -> None:
    with pytest.raises(InvalidBatch):
        control.change_batch(rt, "no-such-batch", {})
    with pytest.raises(BatchNotFound):
        control.change_batch(rt, "no-such-batch", {"suspended": True})
