"""Run windows with real workers and beat, under a fake clock the test moves."""

from __future__ import annotations

import time

from tests.integration.fake_clock_app import clock_of
from tests.integration.harness import Cluster, wait_until

NIGHTS = [{"days": "Mon-Fri", "from": "22:00", "to": "06:00", "timezone": "Europe/Berlin"}]


def test_a_batch_waits_for_its_window_pauses_when_it_closes_and_resumes(
    cluster: Cluster,
) -> None:
    clock = clock_of(cluster.settings.data_dir)
    clock.set("2026-01-05T20:59:00")  # Monday 21:59 in Berlin: closed
    cluster.runtime.storage.pages.gate.clock = clock  # the API's view of the windows
    cluster.start_worker(concurrency=2, app="tests.integration.fake_clock_app")
    cluster.start_beat()
    batch_id = cluster.create([{"sleep": 0.05} for _ in range(120)], pageSize=4,
                              runWindows=NIGHTS)

    time.sleep(3)  # several monitor rounds: nothing may start
    waiting = cluster.get(batch_id)
    assert (waiting["status"], waiting["processedItems"]) == ("Waiting", 0)
    assert waiting["progressDescription"].startswith(
        "Outside its run windows (Mon-Fri 22:00-06:00 Europe/Berlin): the next page starts at "
        "2026-01-05 22:00 Europe/Berlin")

    clock.set("2026-01-05T21:00:30")  # 22:00:30: open
    wait_until(lambda: cluster.get(batch_id)["processedItems"] >= 20, 60, "pages to run")
    clock.set("2026-01-06T05:00:01")  # Tuesday 06:00:01: closed again
    time.sleep(2)  # pages running when it closed finish; nothing new starts after them
    paused = cluster.get(batch_id)["processedItems"]
    time.sleep(3)
    still = cluster.get(batch_id)

    assert still["processedItems"] == paused < 120
    assert still["status"] == "Processing"
    assert still["workQueueStatus"]["running"] == 0
    assert "the next page starts at 2026-01-06 22:00 Europe/Berlin" in still[
        "progressDescription"]

    clock.set("2026-01-06T21:00:00")  # Tuesday 22:00
    batch = cluster.wait_final(batch_id, timeout=120)
    assert (batch["status"], batch["processedItems"]) == ("Completed", 120)
    cluster.assert_counts_are_exact(batch_id)
