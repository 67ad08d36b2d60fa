"""Rethrottling running batches with real workers: items per second, pages at once, tenants.

Rates are checked loosely here (a shared two-core machine); bench/rethrottle.py
measures how closely a rethrottled batch holds its rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from batchq.settings import Settings
from tests.integration.harness import FAST_RECOVERY, Cluster, wait_until


def rate_over(cluster: Cluster, batch_id: str, seconds: float) -> float:
    """Items processed per second over the next ``seconds``."""
    first = cluster.get(batch_id)["processedItems"]
    started = time.monotonic()
    time.sleep(seconds)
    last = cluster.get(batch_id)["processedItems"]
    return (last - first) / (time.monotonic() - started)


def most_running(cluster: Cluster, batch_ids: list[str], seconds: float,
                 count: Callable[[list[dict]], int]) -> int:  # type: ignore[type-arg]
    """The most pages seen running at once (by ``count``) while polling for ``seconds``."""
    seen = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pages = [p for batch_id in batch_ids for p in cluster.pages(batch_id)]
        seen = max(seen, count(pages))
        time.sleep(0.05)
    return seen


def test_a_rate_set_while_the_batch_runs_holds_across_workers(cluster: Cluster) -> None:
    cluster.start_worker(concurrency=2)
    cluster.start_worker(concurrency=2)
    batch_id = cluster.create([{"n": n} for n in range(4_000)], type="noop", pageSize=20,
                              maxItemsPerSecond=40)
    wait_until(lambda: cluster.get(batch_id)["processedItems"] >= 40, 60, "the batch to start")

    slow = rate_over(cluster, batch_id, 4)
    changed = cluster.client.patch(f"/batches/{batch_id}", json={"maxItemsPerSecond": 400})
    assert changed.status_code == 200, changed.get_json()
    time.sleep(1.5)  # within a second, plus the pages committing
    fast = rate_over(cluster, batch_id, 3)

    assert 15 <= slow <= 60, slow  # 40/s, loosely: pages commit in steps of 20
    # Well above the old rate; the embedded stack's commits may not reach 400/s on a busy
    # machine, so only "clearly faster" is checked.
    assert fast >= 2 * slow, (slow, fast)
    cluster.client.patch(f"/batches/{batch_id}", json={"maxItemsPerSecond": None})
    assert cluster.wait_final(batch_id)["status"] == "Completed"
    cluster.assert_counts_are_exact(batch_id)


def test_max_concurrent_jobs_changes_how_many_pages_run_at_once(cluster: Cluster) -> None:
    cluster.start_worker(concurrency=4)
    cluster.start_beat()
    batch_id = cluster.create([{"sleep": 0.05} for _ in range(400)], pageSize=5,
                              maxConcurrentJobs=1)
    wait_until(lambda: cluster.done_pages(batch_id) >= 1, 60, "the first page")

    def running(pages: list[dict]) -> int:  # type: ignore[type-arg]
        return sum(1 for page in pages if page["status"] == "running")

    alone = most_running(cluster, [batch_id], 3, running)
    cluster.client.patch(f"/batches/{batch_id}", json={"maxConcurrentJobs": 3})
    together = most_running(cluster, [batch_id], 4, running)

    assert alone == 1
    assert 2 <= together <= 3
    assert cluster.wait_final(batch_id, timeout=180)["status"] == "Completed"
    cluster.assert_counts_are_exact(batch_id)


def test_a_tenants_cap_leaves_workers_to_the_other_tenants(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=postgres_url,
                        broker_url=redis_url, tenant_limits='{"greedy": {"maxConcurrentJobs": 1}}',
                        **FAST_RECOVERY)  # type: ignore[arg-type]
    cluster = Cluster(settings, tmp_path)
    try:
        cluster.start_worker(concurrency=4)
        cluster.start_beat()
        greedy = [cluster.create([{"sleep": 0.05} for _ in range(200)], pageSize=5,
                                 tenantId="greedy") for _ in range(3)]
        modest = cluster.create([{"sleep": 0.05} for _ in range(100)], pageSize=5,
                                tenantId="modest")
        wait_until(lambda: cluster.done_pages(greedy[0]) >= 1, 60, "the first page")

        def greedy_running(pages: list[dict]) -> int:  # type: ignore[type-arg]
            return sum(1 for page in pages if page["status"] == "running")

        most_greedy = most_running(cluster, greedy, 4, greedy_running)
        modest_batch = cluster.wait_final(modest, timeout=120)

        assert most_greedy == 1  # three batches, four worker processes: one page at a time
        assert modest_batch["status"] == "Completed"
        for batch_id in greedy:
            assert cluster.wait_final(batch_id, timeout=240)["status"] == "Completed"
    finally:
        cluster.stop()
