"""Crashes, lost and repeated messages, on PostgreSQL and Redis with real workers.

Each test breaks something the way production breaks it (kill -9, FLUSHDB, a
message delivered twice, an item that kills its process) and checks that the
batch still ends with counts equal to the per-item truth.
"""

from __future__ import annotations

import redis

from batchq.domain.statuses import WORKER_LOST
from tests.integration.duplicating_app import DuplicatingDispatcher
from tests.integration.harness import Cluster, wait_until


def sleeping(count: int, seconds: float) -> list[dict[str, float]]:
    return [{"sleep": seconds} for _ in range(count)]


def test_every_execute_message_delivered_twice_changes_no_count(
    production_cluster: Cluster,
) -> None:
    cluster = production_cluster
    worker = cluster.start_worker(concurrency=2, app="tests.integration.duplicating_app")
    cluster.runtime.dispatcher = DuplicatingDispatcher(cluster.runtime.dispatcher.app)  # type: ignore[attr-defined]
    items = [{"fail": "no"} if i % 50 == 0 else {"n": i} for i in range(3_000)]
    batch_id = cluster.create(items, pageSize=20)

    batch = cluster.wait_final(batch_id)
    for page in cluster.pages(batch_id):  # and once more, after the end
        cluster.runtime.dispatcher.send_execute(batch_id, page["page_no"])
    wait_until(lambda: redis.Redis.from_url(cluster.settings.broker_url).llen("batchq") == 0,
               30, "the repeated messages to be consumed", worker)

    assert batch["status"] == "CompletedWithErrors"
    after = cluster.assert_counts_are_exact(batch_id)
    assert (after["processedItems"], after["failedItems"]) == (3_000, 60)
    received = (cluster.logs / "w0.log").read_text().count("batchq.execute[")
    assert received >= 2 * batch["totalJobs"]


def test_kill_9_of_a_worker_mid_page_reruns_the_page_elsewhere(
    production_cluster: Cluster,
) -> None:
    cluster = production_cluster
    doomed = cluster.start_worker(concurrency=1)
    survivor = cluster.start_worker(concurrency=1)
    cluster.start_beat()  # the periodic monitor notices the expired lease
    batch_id = cluster.create(sleeping(400, 0.05), pageSize=20)
    doomed_pids = cluster.pids_of(doomed)

    def running_on_doomed() -> list[int]:
        return [page["page_no"] for page in cluster.pages(batch_id)
                if page["status"] == "running"
                and int(page["worker"].rsplit(":", 1)[1]) in doomed_pids]

    wait_until(running_on_doomed, 60, "a page to run on the doomed worker")
    killed_page = running_on_doomed()[0]
    cluster.kill(doomed)

    batch = cluster.wait_final(batch_id, timeout=120)
    assert survivor.poll() is None
    assert batch["status"] == "Completed"
    assert (batch["processedItems"], batch["failedItems"]) == (400, 0)
    cluster.assert_counts_are_exact(batch_id)
    page = next(p for p in cluster.pages(batch_id) if p["page_no"] == killed_page)
    assert page["attempts"] >= 2
    assert int(page["worker"].rsplit(":", 1)[1]) in cluster.pids_of(survivor)


def test_a_page_whose_worker_keeps_dying_is_given_up_after_three_attempts(
    production_cluster: Cluster,
) -> None:
    cluster = production_cluster
    cluster.start_worker(concurrency=2)
    cluster.start_beat()
    items = [{"exit": True} if i == 7 else {"n": i} for i in range(20)]
    batch_id = cluster.create(items, type="test-poison", pageSize=5)

    batch = cluster.wait_final(batch_id, timeout=120)

    assert batch["status"] == "CompletedWithErrors"
    assert (batch["processedItems"], batch["failedItems"]) == (20, 5)
    assert cluster.errors(batch_id) == {str(i): WORKER_LOST for i in range(5, 10)}
    poisoned = cluster.pages(batch_id)[1]
    assert poisoned["attempts"] == 3
    cluster.assert_counts_are_exact(batch_id)


def test_flushing_the_redis_broker_mid_batch_loses_nothing(
    production_cluster: Cluster,
) -> None:
    cluster = production_cluster
    cluster.start_worker(concurrency=2)
    cluster.start_beat()
    items = [{"fail": "x", "sleep": 0.01} if i % 25 == 0 else {"sleep": 0.01}
             for i in range(1_500)]
    batch_id = cluster.create(items, pageSize=10, jobsPerSeed=5)
    wait_until(lambda: cluster.done_pages(batch_id) >= 10, 60, "ten pages to finish")

    redis.Redis.from_url(cluster.settings.broker_url).flushdb()

    batch = cluster.wait_final(batch_id, timeout=120)
    assert batch["status"] == "CompletedWithErrors"
    assert (batch["processedItems"], batch["failedItems"]) == (1_500, 60)
    cluster.assert_counts_are_exact(batch_id)
