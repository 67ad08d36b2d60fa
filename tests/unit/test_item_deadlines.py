"""Every item has a hard wall-clock deadline, whatever its handler does (batchq.engine.deadline)."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import pytest

from batchq.batch_types.context import ItemContext
from batchq.batch_types.registry import BatchType
from batchq.domain.statuses import WORKER_LOST, BatchStatus
from batchq.engine.deadline import hung_message
from batchq.engine.execution import run_pages
from batchq.errors import ConfigurationError
from batchq.storage.common import utcnow

from .support import MakeRuntime, NewType, create, deliver_seed, run_to_end

DEADLINE_ERROR = ("The item was stopped after its deadline of 0.5 s (the batch type's "
                  "item_deadline_seconds, or BATCHQ_ITEM_TIMEOUT_SECONDS)")


def loop_forever(payload: Any, ctx: ItemContext) -> None:
    if payload.get("hang"):
        while True:
            pass


def block_in_c(payload: Any, ctx: ItemContext) -> None:
    if payload.get("hang"):
        threading.Event().wait()  # a lock acquired in C, never released


@pytest.mark.parametrize("handler", [loop_forever, block_in_c], ids=["loop", "block-in-c"])
def test_an_item_running_past_its_types_deadline_fails_and_the_page_goes_on(
    make_runtime: MakeRuntime, new_type: NewType, handler: Any
) -> None:
    rt = make_runtime()
    code, calls = new_type(handler=handler, item_deadline_seconds=0.5)
    batch_id = create(rt, code, [{"hang": True}, {"hang": False}], failure_threshold=None)

    batch = run_to_end(rt, batch_id, beats=0)

    assert (batch["status"], batch["processed_items"], batch["failed_items"]) == (
        BatchStatus.COMPLETED_WITH_ERRORS, 2, 1)
    assert dict(rt.storage.items.iter_errors(batch_id)) == {"0": DEADLINE_ERROR}
    assert len(calls.runs) == 2


def test_the_setting_is_the_deadline_of_a_type_that_names_none(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    rt = make_runtime(item_timeout_seconds=0.5)
    code, _calls = new_type(handler=loop_forever)
    batch_id = create(rt, code, [{"hang": True}])

    batch = run_to_end(rt, batch_id, beats=0)

    assert batch["failed_items"] == 1
    assert dict(rt.storage.items.iter_errors(batch_id)) == {"0": DEADLINE_ERROR}


def test_a_handler_that_ignores_the_alarm_stops_its_lease_and_is_ended(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    rt = make_runtime(lease_seconds=0.6)
    ended = threading.Event()
    code, _calls = new_type(handler=lambda payload, ctx: swallow_until(ended),
                            item_deadline_seconds=0.3)
    batch_id = create(rt, code, [{"n": 1}])
    deliver_seed(rt)
    claim = rt.storage.pages.claim_queued(batch_id, 0, "w", utcnow(), utcnow())

    run_pages(rt, [claim], "w", on_hung=ended.set)  # returns once on_hung ended the handler

    assert ended.is_set()
    # No renewal after the deadline: the lease ran out, so the monitor re-runs the page.
    assert [page["page_no"] for page in rt.storage.pages.expired(batch_id, utcnow())] == [0]


def test_an_item_that_ignored_its_deadline_fails_at_once_when_its_page_runs_again(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    rt = make_runtime(lease_seconds=0.6)
    ended = threading.Event()

    def stubborn_or_echo(payload: Any, ctx: ItemContext) -> None:
        if payload.get("stubborn"):
            swallow_until(ended)

    code, calls = new_type(handler=stubborn_or_echo, item_deadline_seconds=0.3)
    batch_id = create(rt, code, [{"n": 0}, {"stubborn": True}, {"n": 2}],
                      failure_threshold=None)
    deliver_seed(rt)
    claim = rt.storage.pages.claim_queued(batch_id, 0, "w", utcnow(), utcnow())
    run_pages(rt, [claim], "w", on_hung=ended.set)
    [page] = rt.storage.pages.expired(batch_id, utcnow())
    assert page["hung_positions"] == [1]
    calls.runs.clear()

    batch = run_to_end(rt, batch_id)  # the monitor re-runs the page whose process ended

    assert (batch["status"], batch["processed_items"], batch["failed_items"]) == (
        BatchStatus.COMPLETED_WITH_ERRORS, 3, 1)
    assert dict(rt.storage.items.iter_errors(batch_id)) == {"1": hung_message(0.3)}
    assert calls.keys == ["0", "2"]  # the hung item did not run again


def test_a_page_given_up_fails_its_hung_items_with_the_deadline_message(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    rt = make_runtime(max_attempts=1)
    code, _calls = new_type(item_deadline_seconds=2)
    batch_id = create(rt, code, [{"n": 0}, {"n": 1}], failure_threshold=None)
    deliver_seed(rt)
    rt.storage.pages.claim_queued(batch_id, 0, "w", utcnow(), utcnow())
    rt.storage.pages.mark_hung(batch_id, 0, 1)
    rt.storage.pages.mark_hung(batch_id, 0, 1)  # marked once

    batch = run_to_end(rt, batch_id)

    assert batch["failed_items"] == 2
    assert dict(rt.storage.items.iter_errors(batch_id)) == {"0": WORKER_LOST,
                                                           "1": hung_message(2)}


def swallow_until(ended: threading.Event) -> None:
    """A handler that catches even the deadline's alarm, so only the hard layer ends it."""
    while not ended.is_set():
        with contextlib.suppress(BaseException):
            time.sleep(0.05)


@pytest.mark.parametrize("seconds", [0, -1, 86401])
def test_a_type_declaring_an_impossible_deadline_is_refused(seconds: float) -> None:
    with pytest.raises(ConfigurationError, match="item_deadline_seconds"):
        BatchType(code="bad", handler=loop_forever, item_deadline_seconds=seconds)


def test_a_deadline_that_passed_leaves_no_alarm_behind(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    rt = make_runtime()
    code, _calls = new_type(handler=loop_forever, item_deadline_seconds=0.2)
    batch_id = create(rt, code, [{"hang": True}] + [{"hang": False}] * 3, failure_threshold=None)
    run_to_end(rt, batch_id, beats=0)
    time.sleep(0.4)  # an alarm left armed would fire into this test now
    assert rt.storage.batches.get(batch_id)["status"] == BatchStatus.COMPLETED_WITH_ERRORS
