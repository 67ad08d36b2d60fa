"""Source batches and batch processes on PostgreSQL and Redis, with real worker processes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from api import create_app
from batchq.domain.statuses import BatchStatus
from batchq.service.users import NewUser, create_user
from batchq.storage.tables import batches, items
from tests.integration.harness import Cluster, wait_until

SOURCE = "test-count-source"  # tests/support_types.py


def start_run(cluster: Cluster, **params: Any) -> str:
    response = cluster.client.post(f"/batch-types/{SOURCE}/start", json={"params": params})
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["processId"])


def item_truth(cluster: Cluster, batch_id: str) -> tuple[int, int, int]:
    """(stored items, distinct keys, distinct seqs) of a batch."""
    query = sa.select(sa.func.count(), sa.func.count(sa.distinct(items.c.key)),
                      sa.func.count(sa.distinct(items.c.seq))).where(items.c.batch_id == batch_id)
    with cluster.runtime.storage.engine.connect() as conn:
        total, keys, seqs = conn.execute(query).one()
    return int(total), int(keys), int(seqs)


def test_a_100_000_item_source_batch_completes_with_exact_counts(
    production_cluster: Cluster,
) -> None:
    cluster = production_cluster
    cluster.start_worker(concurrency=2)
    batch_id = start_run(cluster, count=100_000)

    batch = cluster.wait_final(batch_id, timeout=240)

    assert batch["status"] == BatchStatus.COMPLETED
    assert (batch["totalItems"], batch["processedItems"], batch["failedItems"]) == (100_000,
                                                                                    100_000, 0)
    assert (batch["totalJobs"], batch["jobsCompleted"]) == (1_000, 1_000)
    assert item_truth(cluster, batch_id) == (100_000, 100_000, 100_000)
    cluster.assert_counts_are_exact(batch_id)


def test_a_seed_killed_while_reading_its_source_resumes_without_a_duplicate_item(
    production_cluster: Cluster, tmp_path: Path,
) -> None:
    cluster = production_cluster
    workers = [cluster.start_worker(concurrency=1), cluster.start_worker(concurrency=1)]
    cluster.start_beat()  # the periodic monitor re-sends the stalled seed
    marker = tmp_path / "reading"
    # Chunks are pageSize * jobsPerSeed = 10,000 items: the second read stalls.
    batch_id = start_run(cluster, count=30_000, stall_at=10_000, stall_marker=str(marker))

    wait_until(lambda: marker.exists() and marker.read_text(), 60, "the seed to read chunk 2")
    reader = int(marker.read_text())
    doomed = next(worker for worker in workers if reader in cluster.pids_of(worker))
    assert cluster.get(batch_id)["totalItems"] == 10_000  # the first chunk, stored
    cluster.kill(doomed)

    batch = cluster.wait_final(batch_id, timeout=180)
    assert batch["status"] == BatchStatus.COMPLETED
    assert (batch["totalItems"], batch["processedItems"], batch["failedItems"]) == (30_000,
                                                                                    30_000, 0)
    assert item_truth(cluster, batch_id) == (30_000, 30_000, 30_000)
    cluster.assert_counts_are_exact(batch_id)


def test_of_concurrent_starts_exactly_one_creates_a_run(production_cluster: Cluster) -> None:
    cluster = production_cluster
    app = create_app(runtime=cluster.runtime)
    token = create_user(cluster.runtime.storage.users, NewUser("racer", is_system=True))
    barrier = threading.Barrier(8)
    answers: list[tuple[int, Any]] = []

    def start() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(f"/batch-types/{SOURCE}/start", json={"params": {"count": 10}},
                               headers={"Authorization": f"Bearer {token}"})
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    created = [body["processId"] for status, body in answers if status == 201]
    refused = [body["details"]["processId"] for status, body in answers if status == 409]
    assert len(created) == 1, answers
    assert refused == created * 7
    with cluster.runtime.storage.engine.connect() as conn:
        runs = conn.execute(sa.select(sa.func.count()).where(batches.c.type == SOURCE)).scalar()
    assert runs == 1
