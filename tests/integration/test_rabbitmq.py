"""batchq on RabbitMQ (``BATCHQ_BROKER_URL=amqp://...``): a small subset of the lifecycle and
failure scenarios, run as they are on Redis, so the suite stays short."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration import test_failures as failures
from tests.integration import test_lifecycle as lifecycle
from tests.integration.harness import Cluster

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
