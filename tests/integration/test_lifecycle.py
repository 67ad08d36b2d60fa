"""The lifecycle of a batch on real worker processes, on both stacks."""

from __future__ import annotations

import time
from pathlib import Path

from batchq.storage.common import utcnow
from tests.integration.harness import Cluster, wait_until


def failing_every(n: int, count: int, every: int) -> list[dict[str, object]]:
    """Items keyed item-<i>; every ``every``-th one fails with "bad <i>"."""
    return [
        {"key": f"item-{i}", "payload": {"fail": f"bad {i}"} if i % every == 0 else {"n": i}}
        for i in range(n, n + count)
    ]


def sleeping(count: int, seconds: float) -> list[dict[str, float]]:
    return [{"sleep": seconds} for _ in range(count)]


def test_ten_thousand_items_with_five_percent_failing_end_completed_with_errors(
    cluster: Cluster,
) -> None:
    cluster.start_worker(concurrency=2)
    batch_id = cluster.create(failing_every(0, 10_000, 20))

    batch = cluster.wait_final(batch_id, timeout=180)

    assert batch["status"] == "CompletedWithErrors"
    assert (batch["processedItems"], batch["failedItems"]) == (10_000, 500)
    assert (batch["totalJobs"], batch["jobsCompleted"]) == (100, 100)
    assert batch["progress"] == "100 out of 100"
    assert cluster.errors(batch_id) == {f"item-{i}": f"bad {i}" for i in range(0, 10_000, 20)}
    cluster.assert_counts_are_exact(batch_id)


def test_thirty_percent_failing_items_abort_with_too_many_failed(cluster: Cluster) -> None:
    cluster.start_worker(concurrency=2)
    items = [{"fail": "boom"} if i % 10 < 3 else {"n": i} for i in range(20_000)]
    batch_id = cluster.create(items, pageSize=100)

    batch = cluster.wait_final(batch_id, timeout=180)

    assert batch["status"] == "TooManyFailed"
    assert cluster.done_pages(batch_id) < batch["totalJobs"]
    assert batch["processedItems"] < batch["totalItems"]
    assert batch["failedItems"] == 30 * batch["processedItems"] // 100
    assert batch["unprocessedItems"] == batch["totalItems"] - batch["processedItems"]
    cluster.assert_counts_are_exact(batch_id)


def test_cancel_mid_batch_drains_and_no_page_starts_after_it(cluster: Cluster) -> None:
    cluster.start_worker(concurrency=2)
    batch_id = cluster.create(sleeping(2_000, 0.01), pageSize=10)
    wait_until(lambda: cluster.done_pages(batch_id) >= 10, 60, "ten pages to finish")

    response = cluster.client.delete(f"/batches/{batch_id}")
    cancel_committed = utcnow()

    assert response.status_code == 202
    assert response.get_json()["status"] == "Cancelling"
    batch = cluster.wait_final(batch_id, timeout=60)
    assert batch["status"] == "Cancelled"
    assert 0 < batch["processedItems"] < batch["totalItems"]
    started = [page["started_at"] for page in cluster.pages(batch_id) if page["started_at"]]
    assert started and max(started) <= cancel_committed
    assert all(page["status"] in ("done", "created") for page in cluster.pages(batch_id))
    cluster.assert_counts_are_exact(batch_id)
    assert cluster.client.delete(f"/batches/{batch_id}").status_code == 409


def test_suspended_batch_starts_no_page_until_resumed(cluster: Cluster) -> None:
    cluster.start_worker(concurrency=2)
    batch_id = cluster.create(sleeping(1_000, 0.01), pageSize=10)
    wait_until(lambda: cluster.done_pages(batch_id) >= 5, 60, "five pages to finish")

    assert cluster.client.patch(f"/batches/{batch_id}", json={"suspended": True}).status_code == 200
    suspended_at = utcnow()
    time.sleep(2.5)  # longer than a page, so a page started despite the flag would show

    started = [page["started_at"] for page in cluster.pages(batch_id) if page["started_at"]]
    assert max(started) <= suspended_at
    paused = cluster.get(batch_id)
    assert paused["suspended"] is True and paused["status"] == "Processing"
    assert paused["processedItems"] < 1_000

    response = cluster.client.patch(f"/batches/{batch_id}", json={"suspended": False})
    assert response.status_code == 200
    batch = cluster.wait_final(batch_id, timeout=90)
    assert batch["status"] == "Completed"
    assert (batch["processedItems"], batch["failedItems"]) == (1_000, 0)
    cluster.assert_counts_are_exact(batch_id)


def test_raising_post_batch_step_gives_post_batch_failed(cluster: Cluster) -> None:
    cluster.start_worker(concurrency=2)
    batch_id = cluster.create([{"n": i} for i in range(50)], type="test-post-raise")

    batch = cluster.wait_final(batch_id)

    assert batch["status"] == "PostBatchFailed"
    assert "the report could not be written" in batch["failureReason"]
    assert batch["processedItems"] == 50


def test_succeeding_post_batch_step_runs_exactly_once(cluster: Cluster, tmp_path: Path) -> None:
    marker = tmp_path / "post-batch-runs.txt"
    for _ in range(2):
        cluster.start_worker(concurrency=2)
    cluster.start_beat()  # a periodic monitor racing the page-end monitors
    batch_id = cluster.create([{"n": i} for i in range(300)], type="test-post-ok",
                              pageSize=10, params={"marker": str(marker)})

    batch = cluster.wait_final(batch_id)
    time.sleep(1.5)  # give a second finaliser every chance to run

    assert batch["status"] == "Completed"
    assert batch["result"] == {"processed": 300, "failed": 0}
    assert len(marker.read_text().splitlines()) == 1


def test_an_empty_batch_is_refused_with_a_clear_400(cluster: Cluster) -> None:
    response = cluster.client.post("/batches", json={"type": "echo", "items": []})

    assert response.status_code == 400
    assert "at least one item" in response.get_json()["error"]


def test_a_one_item_batch_completes(cluster: Cluster) -> None:
    cluster.start_worker(concurrency=1)
    batch_id = cluster.create([{"hello": "world"}])

    batch = cluster.wait_final(batch_id)

    assert (batch["status"], batch["processedItems"], batch["totalJobs"]) == ("Completed", 1, 1)


def test_a_page_size_larger_than_the_batch_gives_one_page(cluster: Cluster) -> None:
    cluster.start_worker(concurrency=1)
    batch_id = cluster.create(failing_every(0, 30, 10), pageSize=1_000, failureThreshold=None)

    batch = cluster.wait_final(batch_id)

    assert batch["status"] == "CompletedWithErrors"
    assert (batch["totalJobs"], batch["processedItems"], batch["failedItems"]) == (1, 30, 3)


def test_a_huge_batch_does_not_starve_a_small_one(cluster: Cluster) -> None:
    cluster.start_worker(concurrency=2)
    huge = cluster.create(sleeping(6_000, 0.002), pageSize=10)
    wait_until(lambda: cluster.done_pages(huge) >= 5, 60, "the huge batch to start")

    small = cluster.create([{"n": i} for i in range(20)], pageSize=10)

    assert cluster.wait_final(small, timeout=60)["status"] == "Completed"
    huge_batch = cluster.get(huge)
    assert huge_batch["status"] == "Processing"
    assert huge_batch["jobsCompleted"] < huge_batch["totalJobs"] / 2
    cluster.client.delete(f"/batches/{huge}")
    assert cluster.wait_final(huge)["status"] == "Cancelled"


def test_a_batch_never_has_more_than_max_queued_jobs_pages_queued(cluster: Cluster) -> None:
    cluster.start_worker(concurrency=2)
    batch_id = cluster.create(sleeping(3_000, 0.001), pageSize=10)
    bound = cluster.settings.max_queued_jobs
    most_queued = 0
    while cluster.get(batch_id)["status"] in ("Waiting", "Processing"):
        queue = cluster.runtime.storage.pages.work_queue_status(batch_id)
        most_queued = max(most_queued, queue.queued)
        time.sleep(0.02)

    assert 0 < most_queued <= bound
    assert cluster.get(batch_id)["status"] == "Completed"
