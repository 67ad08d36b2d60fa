"""Progress a batch shows while it runs: handlers' descriptions, percent, current stage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from batchq.batch_types.context import MAX_PROGRESS_DESCRIPTION, ItemContext
from batchq.runtime import Runtime

from .support import (
    NewType,
    create,
    deliver,
    deliver_seed,
    dispatcher_of,
    finish_slow_page,
    ok_items,
    run_to_end,
    start_slow_page,
    work_off_messages,
)


def escalate(payload: Any, ctx: ItemContext) -> None:
    ctx.set_progress(f"Escalated activity {payload['n']} of 6")


def run_next_execute(rt: Runtime) -> None:
    """Deliver the oldest execute message; the messages it sends stay recorded."""
    outbox = dispatcher_of(rt).outbox
    message = next(m for m in outbox if m[0] == "execute")
    outbox.remove(message)
    deliver(rt, *message)


def test_a_handler_progress_description_is_shown_once_its_page_is_committed(
    client: FlaskClient, rt: Runtime, new_type: NewType
) -> None:
    code, _calls = new_type(handler=escalate)
    batch_id = create(rt, code, ok_items(6), page_size=2)
    deliver_seed(rt)
    assert client.get(f"/batches/{batch_id}").get_json()["progressDescription"] == (
        "Waiting for a worker")

    run_next_execute(rt)

    batch = client.get(f"/batches/{batch_id}").get_json()
    assert batch["progressDescription"] == "Escalated activity 1 of 6"
    assert (batch["processedItems"], batch["progressPercent"]) == (2, 33.33)
    run_next_execute(rt)
    assert rt.storage.batches.get(batch_id)["progress_description"] == "Escalated activity 3 of 6"  # type: ignore[index]


def test_a_finished_batch_shows_batchqs_sentence_and_keeps_the_handlers_on_its_row(
    client: FlaskClient, rt: Runtime, new_type: NewType
) -> None:
    code, _calls = new_type(handler=escalate)
    batch_id = create(rt, code, ok_items(6), page_size=2)
    run_to_end(rt, batch_id)
    batch = client.get(f"/batches/{batch_id}").get_json()
    assert batch["progressDescription"] == "Completed: 6 of 6 items processed"
    assert batch["progressPercent"] == 100.0
    assert rt.storage.batches.get(batch_id)["progress_description"] == "Escalated activity 5 of 6"  # type: ignore[index]


def test_a_page_whose_handler_says_nothing_keeps_the_last_description(
    rt: Runtime, new_type: NewType
) -> None:
    def first_page_only(payload: Any, ctx: ItemContext) -> None:
        if payload["n"] < 2:
            ctx.set_progress("first page")

    code, _calls = new_type(handler=first_page_only)
    batch_id = create(rt, code, ok_items(4), page_size=2)
    work_off_messages(rt)
    assert rt.storage.batches.get(batch_id)["progress_description"] == "first page"  # type: ignore[index]


@pytest.mark.parametrize(("text", "stored"), [
    ("a\x00b", "ab"),
    ("\ud800 lone surrogate", "? lone surrogate"),
    ("x" * (MAX_PROGRESS_DESCRIPTION + 50), "x" * MAX_PROGRESS_DESCRIPTION),
])
def test_a_description_the_database_cannot_hold_is_cleaned_not_fatal(
    rt: Runtime, new_type: NewType, text: str, stored: str
) -> None:
    code, _calls = new_type(handler=lambda payload, ctx: ctx.set_progress(text))
    batch_id = create(rt, code, ok_items(1))
    batch = run_to_end(rt, batch_id)
    assert (batch["status"], batch["progress_description"]) == ("Completed", stored)


def test_a_description_that_is_not_text_fails_the_item_with_a_clear_error(
    rt: Runtime, new_type: NewType
) -> None:
    code, _calls = new_type(handler=lambda payload, ctx: ctx.set_progress(42))
    batch_id = create(rt, code, ok_items(1), failure_threshold=None)
    run_to_end(rt, batch_id)
    assert rt.storage.items.first_errors(batch_id, 1)[0]["message"] == (
        "TypeError: a progress description is a str, not int")


@contextmanager
def recorded_statements(rt: Runtime) -> Iterator[list[str]]:
    """The SQL statements ``rt`` sends inside the ``with`` block."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(rt.storage.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(rt.storage.engine, "before_cursor_execute", record)


def statements_to_run(rt: Runtime, code: str) -> int:
    batch_id = create(rt, code, ok_items(50), page_size=50)
    deliver_seed(rt)
    with recorded_statements(rt) as seen:
        run_next_execute(rt)
    assert rt.storage.batches.get(batch_id)["processed_items"] == 50  # type: ignore[index]
    dispatcher_of(rt).outbox.clear()  # the monitor message: not part of the page
    return len(seen)


def test_descriptions_add_no_query_to_a_page(rt: Runtime, new_type: NewType) -> None:
    silent, _ = new_type()
    chatty, _ = new_type(handler=lambda payload, ctx: ctx.set_progress(f"item {payload}"))
    assert statements_to_run(rt, chatty) == statements_to_run(rt, silent)


def stage_items(per_stage: int = 2) -> list[dict[str, Any]]:
    return [{"key": f"{kind}{n}", "payload": n, "stage": stage}
            for stage, kind in enumerate(("block", "chain", "customer"))
            for n in range(per_stage)]


def current_stage(client: FlaskClient, batch_id: str) -> Any:
    return client.get(f"/batches/{batch_id}").get_json()["currentStage"]


def test_a_staged_batch_shows_the_stage_running_now_and_null_once_finished(
    client: FlaskClient, rt: Runtime
) -> None:
    batch_id = create(rt, "echo", stage_items(), page_size=1, jobs_per_seed=1)
    assert current_stage(client, batch_id) == 0  # no page created yet: the first one's
    deliver_seed(rt)
    slow = start_slow_page(rt, batch_id, 0)
    work_off_messages(rt)
    assert current_stage(client, batch_id) == 0  # page 0 still runs
    assert finish_slow_page(rt, slow)
    # Stage 0 is done; stage 1's pages are not all created yet (one seed step at a time).
    assert current_stage(client, batch_id) == 1
    run_to_end(rt, batch_id)
    assert current_stage(client, batch_id) is None


def test_a_batch_without_stages_shows_no_current_stage(client: FlaskClient, rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(3))
    assert current_stage(client, batch_id) is None
    single_stage = create(rt, "echo", [{"key": "a", "payload": 1, "stage": 4}])
    assert current_stage(client, single_stage) is None
