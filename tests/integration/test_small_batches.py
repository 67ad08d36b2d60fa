"""Small batches on PostgreSQL, Redis and real workers: created with their pages queued (no
seed message), finalised by their last page's transaction exactly once, with exact counts,
their webhooks and their live events."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis

from batchq.domain.statuses import ACTIVE_STATUSES
from tests.http_server import LocalServer, running_server
from tests.integration.harness import Cluster, wait_until

pytestmark = pytest.mark.services


@pytest.fixture
def receiver() -> Iterator[LocalServer]:
    with running_server() as server:
        yield server


def test_many_small_batches_end_once_each_with_exact_counts_and_their_webhooks(
    production_cluster: Cluster, receiver: LocalServer
) -> None:
    cluster = production_cluster
    cluster.start_worker(concurrency=2)
    cluster.start_worker(concurrency=2)
    ids = []
    for n in range(30):
        items = [{"n": i} if i != n % 10 else {"fail": f"boom {n}"} for i in range(10)]
        ids.append(cluster.create(items, pageSize=4, failureThreshold=None,
                                  callbackUrl=f"{receiver.url}/b{n}"))
    for batch_id in ids:
        batch = cluster.wait_final(batch_id, timeout=60)
        assert batch["status"] == "CompletedWithErrors"
        assert (batch["processedItems"], batch["failedItems"], batch["jobsCompleted"]) == (
            10, 1, 3)
        cluster.assert_counts_are_exact(batch_id)

    def all_delivered() -> bool:
        return all(len(cluster.runtime.storage.deliveries.of_batch(i)) == 1
                   and cluster.runtime.storage.deliveries.of_batch(i)[0]["status"] == "delivered"
                   for i in ids)

    wait_until(all_delivered, 60, "every webhook to be delivered", None)
    paths = sorted(r.path for r in receiver.requests)
    assert paths == sorted(f"/b{n}" for n in range(30)), "one webhook per batch, none twice"


def test_a_small_batch_sends_no_seed_message_and_finishes_without_the_monitor(
    production_cluster: Cluster,
) -> None:
    """No beat runs: the monitor is never sent by a clock, and a small batch needs none."""
    cluster = production_cluster
    broker = redis.Redis.from_url(cluster.settings.broker_url)
    batch_id = cluster.create([{"n": i} for i in range(10)])
    queued = [json.loads(m)["headers"]["task"] for m in broker.lrange("batchq", 0, -1)]
    assert queued == ["batchq.execute"]
    cluster.start_worker(concurrency=2)
    batch = cluster.wait_final(batch_id, timeout=30)
    assert (batch["status"], batch["processedItems"]) == ("Completed", 10)
    log = "".join(path.read_text() for path in cluster.logs.glob("w*.log"))
    assert "Task batchq.seed[" not in log and "Task batchq.monitor[" not in log
    assert "finished with its last page: Completed" in log


def test_the_live_stream_of_a_small_batch_ends_with_its_final_status(
    production_cluster: Cluster,
) -> None:
    cluster = production_cluster
    batch_id = cluster.create([{"n": i} for i in range(10)])
    response = cluster.client.get(f"/batches/{batch_id}/events", buffered=False)
    assert response.status_code == 200
    cluster.start_worker(concurrency=2)
    events = []
    for chunk in response.response:
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        events += [line[len("data: "):] for line in text.splitlines()
                   if line.startswith("data: ")]
        if "event: end" in text:
            break
    response.close()
    final = json.loads(events[-1])
    assert final["status"] == "Completed" and final["processedItems"] == 10
    assert final["status"] not in ACTIVE_STATUSES
