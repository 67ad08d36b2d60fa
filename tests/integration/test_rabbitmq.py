"""batchq on RabbitMQ (``BATCHQ_BROKER_URL=amqp://...``): a small subset of the lifecycle and
failure scenarios, run as they are on Redis, so the suite stays short, and a broker restart
on a node of the test's own."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from batchq.settings import Settings
from tests.conftest import require
from tests.integration import test_failures as failures
from tests.integration import test_lifecycle as lifecycle
from tests.integration.harness import FAST_RECOVERY, Cluster, wait_until
from tests.integration.private_rabbitmq import RabbitNode, private_rabbitmq, rabbitmq_available

pytestmark = pytest.mark.services


@pytest.mark.parametrize("scenario", [
    lifecycle.test_ten_thousand_items_with_five_percent_failing_end_completed_with_errors,
    lifecycle.test_cancel_mid_batch_drains_and_no_page_starts_after_it,
    lifecycle.test_suspended_batch_starts_no_page_until_resumed,
], ids=["completed-with-errors", "cancel", "suspend-resume"])
def test_the_lifecycle_on_rabbitmq(amqp_cluster: Cluster,
                                   scenario: Callable[[Cluster], None]) -> None:
    scenario(amqp_cluster)


def test_kill_9_of_a_worker_mid_page_on_rabbitmq_reruns_the_page_elsewhere(
    amqp_cluster: Cluster,
) -> None:
    failures.test_kill_9_of_a_worker_mid_page_reruns_the_page_elsewhere(amqp_cluster)


def test_a_small_batch_on_rabbitmq_finishes_with_its_last_page(amqp_cluster: Cluster) -> None:
    amqp_cluster.start_worker(concurrency=1)
    batch_id = amqp_cluster.create([{"n": i} for i in range(10)])
    batch = amqp_cluster.wait_final(batch_id, timeout=30)
    assert (batch["status"], batch["processedItems"]) == ("Completed", 10)


@pytest.fixture
def rabbit() -> Iterator[RabbitNode]:
    require("rabbitmq-server and rabbitmqctl", rabbitmq_available())
    with private_rabbitmq() as node:
        yield node


def test_a_rabbitmq_restart_mid_batch_loses_nothing_and_counts_once(
    postgres_url: str, rabbit: RabbitNode, tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=postgres_url,
                        broker_url=rabbit.url, **FAST_RECOVERY)  # type: ignore[arg-type]
    cluster = Cluster(settings, tmp_path)
    try:
        cluster.start_worker(concurrency=2)
        cluster.start_beat()
        items = [{"fail": "x", "sleep": 0.005} if i % 50 == 0 else {"sleep": 0.005}
                 for i in range(3_000)]
        batch_id = cluster.create(items, pageSize=20, jobsPerSeed=10)
        wait_until(lambda: cluster.done_pages(batch_id) >= 30, 90, "a fifth of the pages")
        rabbit.restart()
        restarted = time.monotonic()
        done_then = cluster.done_pages(batch_id)
        wait_until(lambda: cluster.done_pages(batch_id) > done_then + 5, 90,
                   "progress after the restart")
        print(f"\nRabbitMQ restart: progress resumed {time.monotonic() - restarted:.1f} s after it")
        batch = cluster.wait_final(batch_id, timeout=180)
        assert batch["status"] == "CompletedWithErrors"
        assert (batch["processedItems"], batch["failedItems"]) == (3_000, 60)
        cluster.assert_counts_are_exact(batch_id)
    finally:
        cluster.stop()
