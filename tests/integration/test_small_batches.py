"""Small batches on PostgreSQL, Redis and real workers: created with their pages queued (no
seed message), finalised by their last page's transaction exactly once, with exact counts,
their webhooks and their live events."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from batchq.domain.statuses import ACTIVE_STATUSES, BatchStatus
from batchq.engine.execution import run_page
from batchq.runtime import Runtime, build_runtime
from batchq.settings import Settings
from batchq.storage.common import utcnow
from tests.http_server import LocalServer, running_server
from tests.integration.harness import Cluster, wait_until
from tests.unit.support import FakeDispatcher, create, ok_items, start_slow_page

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


def test_four_workers_committing_the_last_pages_at_once_finalise_once_on_postgres(
    postgres_url: str, tmp_path: Path
) -> None:
    """PostgreSQL's row locks, not SQLite's one writer: whoever commits last finalises."""
    settings = Settings(data_dir=tmp_path, database_url=postgres_url,
                        egress_allow=("127.0.0.1/32",))
    workers = [build_runtime(settings, FakeDispatcher()) for _ in range(4)]
    creator = workers[0]
    try:
        for _ in range(10):
            batch_id = create(creator, "echo", ok_items(8), page_size=2,
                              callback_url="http://127.0.0.1:9/done")
            claims = [start_slow_page(creator, batch_id, n, f"w{n}") for n in range(4)]
            outcomes = [run_page(creator, claim, f"w{claim.page_no}") for claim in claims]
            finalized = _finish_at_once(workers, outcomes)
            assert sorted(finalized, key=str) == [BatchStatus.COMPLETED, None, None, None]
            batch = creator.storage.batches.get(batch_id)
            assert batch is not None
            assert (batch["status"], batch["processed_items"], batch["jobs_completed"]) == (
                BatchStatus.COMPLETED, 8, 4)
            events = sorted(d["event"] for d in creator.storage.deliveries.of_batch(batch_id))
            assert events == ["batch.complete", "batch.success"]
    finally:
        for worker in workers:
            worker.storage.engine.dispose()


def _finish_at_once(workers: list[Runtime], outcomes: list[object]) -> list[object]:
    start = threading.Barrier(len(workers))
    finalized: list[object] = []

    def finish(worker: Runtime, outcome: object) -> None:
        start.wait()
        result = worker.storage.pages.finish([outcome], utcnow(),  # type: ignore[list-item]
                                             finalize=True, has_post_batch=False)
        finalized.append(result.finalized)

    threads = [threading.Thread(target=finish, args=pair) for pair in zip(workers, outcomes,
                                                                           strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return finalized
