"""With an event stream in the app, the batch page follows the batch through it, not by
polling: the seam to ``GET /batches/{id}/events`` (issue 10, part 2) works in a browser."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Response, stream_with_context
from playwright.sync_api import expect

from api import create_app
from api.context import current_caller, runtime
from batchq.domain.statuses import FINAL_STATUSES
from batchq.runtime import build_runtime
from batchq.settings import Settings
from batchq.storage.migrate import upgrade
from tests.unit.support import FakeDispatcher, create, ok_items, run_to_end

from .conftest import TEST_TYPES, Console, _console

pytestmark = pytest.mark.timeout(120)


def stand_in_events(batch_id: str) -> Response:
    """A stand-in for the stream: a "progress" event on each change, "end" at the end."""
    current_caller()  # the relay ran it as the console's caller
    rt = runtime()

    def stream() -> Iterator[str]:
        last = None
        for _ in range(300):
            batch = rt.storage.batches.get(batch_id)
            state = (batch["status"], batch["processed_items"])
            if state != last:
                yield f"event: progress\ndata: {batch['processed_items']}\n\n"
                last = state
            if batch["status"] in FINAL_STATUSES:
                yield "event: end\ndata: {}\n\n"
                return
            time.sleep(0.1)

    return Response(stream_with_context(stream()), mimetype="text/event-stream")


@pytest.fixture
def console_with_events(browser: Any, tmp_path: Path,
                        request: pytest.FixtureRequest) -> Iterator[Console]:
    settings = Settings(data_dir=tmp_path / "data", types=TEST_TYPES, execute_slice_seconds=0.0)
    upgrade(settings.database_url)
    rt = build_runtime(settings, FakeDispatcher())
    app = create_app(runtime=rt)
    app.add_url_rule("/batches/<batch_id>/events", "stand_in_events", stand_in_events)
    yield from _console(app, rt, browser, request)
    rt.storage.dispose()


def test_the_batch_page_follows_the_event_stream(console_with_events: Console) -> None:
    console = console_with_events
    rt = console.runtime
    batch_id = create(rt, "echo", ok_items(6), create_user_id="ada", page_size=2)
    page = console.sign_in(console.user("root"))
    page.goto(f"{console.url}/console/batches/{batch_id}")
    live = page.locator("#batch-live")
    assert "sse:progress" in str(live.get_attribute("hx-trigger"))
    assert page.get_attribute("#batch-stream", "sse-connect") == (
        f"/console/batches/{batch_id}/events")
    run_to_end(rt, batch_id)
    expect(page.locator("#batch-status")).to_have_text("Completed")
    assert page.inner_text("#c-processed") == "6"
    expect(page.locator("#batch-chart")).to_contain_text("6 items")
    console.shot(page, "batch-by-events")
