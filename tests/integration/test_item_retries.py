"""Item retry pages with real workers: transient failures, a worker killed mid-retry, counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from batchq.storage.tables import item_errors, item_retries
from tests.integration.harness import Cluster, wait_until


def attempts_of(cluster: Cluster, batch_id: str) -> dict[str, tuple[str, int]]:
    query = sa.select(item_errors.c.key, item_errors.c.message, item_errors.c.attempts).where(
        item_errors.c.batch_id == batch_id)
    with cluster.runtime.storage.engine.connect() as conn:
        return {key: (message, attempts) for key, message, attempts in conn.execute(query)}


def pending_retries(cluster: Cluster, batch_id: str) -> int:
    query = sa.select(sa.func.count()).select_from(item_retries).where(
        item_retries.c.batch_id == batch_id)
    with cluster.runtime.storage.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_transient_failures_run_again_on_retry_pages_and_count_once(cluster: Cluster) -> None:
    cluster.start_worker(concurrency=2)
    cluster.start_beat()
    items: list[dict[str, Any]] = []
    for n in range(200):
        payload: dict[str, Any] = {"n": n}
        if n % 10 == 3:
            payload["fail_times"] = 2  # succeeds on its third run
        elif n % 10 == 7:
            payload.update(fail_times=5, connection=True)  # fails for good after 3 runs
        elif n % 10 == 9:
            payload["fail"] = "bad data"  # fails at once: ItemFailed is final
        items.append({"key": f"k{n}", "payload": payload})
    batch_id = cluster.create(items, type="test-flaky", pageSize=20)

    batch = cluster.wait_final(batch_id, timeout=180)

    assert batch["status"] == "CompletedWithErrors"
    assert (batch["processedItems"], batch["failedItems"]) == (200, 40)
    attempts = attempts_of(cluster, batch_id)
    assert {attempts[f"k{n}"] for n in range(7, 200, 10)} == {
        ("ConnectionError: refused on attempt 3", 3)}
    assert {attempts[f"k{n}"] for n in range(9, 200, 10)} == {("bad data", 1)}
    assert pending_retries(cluster, batch_id) == 0
    cluster.assert_counts_are_exact(batch_id)


def test_a_worker_killed_mid_retry_leaves_exact_counts_and_attempts(
    production_cluster: Cluster, tmp_path: Path
) -> None:
    cluster = production_cluster
    doomed = cluster.start_worker(concurrency=1)
    cluster.start_beat()
    marker = tmp_path / "stalled"
    items = [{"key": f"k{n}", "payload": {"fail_times": 1, "stall_on_attempt": 2,
                                          "marker": str(marker)} if n == 5 else
              {"fail_times": 3} if n == 6 else {"n": n}} for n in range(30)]
    batch_id = cluster.create(items, type="test-flaky", pageSize=10)

    # k5 failed once; its retry page now hangs in the doomed worker: kill -9 it there.
    wait_until(marker.exists, 90, "the retry page of k5 to start its second attempt", doomed)
    retry_page = next(p for p in cluster.pages(batch_id) if p["item_attempt"] == 2
                      and p["status"] == "running")
    cluster.kill(doomed)
    survivor = cluster.start_worker(concurrency=2)

    batch = cluster.wait_final(batch_id, timeout=180)

    assert survivor.poll() is None
    assert batch["status"] == "CompletedWithErrors"
    assert (batch["processedItems"], batch["failedItems"]) == (30, 1)
    assert attempts_of(cluster, batch_id) == {"k6": ("busy on attempt 3", 3)}
    rerun = next(p for p in cluster.pages(batch_id) if p["page_no"] == retry_page["page_no"])
    assert rerun["status"] == "done" and rerun["attempts"] >= 2
    assert pending_retries(cluster, batch_id) == 0
    cluster.assert_counts_are_exact(batch_id)
    items_view = cluster.client.get(f"/batches/{batch_id}/items?status=succeeded&maxResults=100")
    assert "k5" in {item["key"] for item in items_view.get_json()["items"]}
