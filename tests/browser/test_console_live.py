"""A running batch's page follows the batch live, until it ends, against real workers."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from batchq.domain.statuses import FINAL_STATUSES

from .conftest import Console

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]


def counter(page: Any, name: str) -> int:
    return int(page.inner_text(f"#c-{name}").replace(",", ""))


def test_a_running_batch_page_updates_live_until_the_batch_ends(live_console: Console,
                                                                 production_cluster: Any) -> None:
    cluster = production_cluster
    cluster.start_worker(concurrency=2)
    items = [{"key": f"k{n}", "payload": {"fail": f"bad {n % 3}", "sleep": 0.1} if n % 10 == 0
              else {"sleep": 0.1}} for n in range(150)]
    batch_id = cluster.create(items, pageSize=5, failureThreshold=None)
    page = live_console.sign_in(live_console.user("root"))
    page.goto(f"{live_console.url}/console/batches/{batch_id}")
    page.evaluate("window.notReloaded = true")

    seen: list[int] = []
    workers_checked = False
    deadline = time.monotonic() + 120
    while page.inner_text("#batch-status") not in FINAL_STATUSES:
        assert time.monotonic() < deadline, f"the page never showed the end; saw {seen}"
        processed = counter(page, "processed")
        if not seen or processed != seen[-1]:
            seen.append(processed)
        if 0 < processed < 150 and not workers_checked:
            live_console.shot(page, "batch-running")
            workers_checked = _workers_page_shows_the_worker(live_console, batch_id)
        time.sleep(0.3)

    assert page.evaluate("window.notReloaded") is True, "the page reloaded"
    intermediate = [n for n in seen if 0 < n < 150]
    assert len(intermediate) >= 2, f"no live updates in between: {seen}"
    assert seen == sorted(seen)
    assert workers_checked, "the workers page never showed a worker running the batch"
    expect(page.locator("#batch-status")).to_have_text("CompletedWithErrors")
    assert (counter(page, "processed"), counter(page, "failed")) == (150, 15)
    assert page.inner_text("#eta") == "ended"
    # The chart and the error histogram caught up too.
    expect(page.locator("#batch-chart .histogram tbody tr")).to_have_count(3)
    expect(page.locator("#batch-chart")).to_contain_text("over 15 failed items")
    expect(page.locator("#failed-items tbody tr")).to_have_count(15)
    api = cluster.get(batch_id)
    assert (api["processedItems"], api["failedItems"]) == (150, 15)
    live_console.shot(page, "batch-ended")


def _workers_page_shows_the_worker(console: Console, batch_id: str) -> bool:
    page = console.sign_in(console.user(f"viewer-{time.monotonic_ns()}"))
    page.goto(f"{console.url}/console/workers")
    try:
        expect(page.locator("#workers-live table.workers")).to_contain_text(batch_id[:8],
                                                                           timeout=5000)
    except AssertionError:
        page.close()
        return False
    # A worker is named by its host and pool process id.
    assert f"{socket.gethostname()}:" in page.inner_text("#workers-live table.workers")
    console.shot(page, "workers")
    page.close()
    return True
