"""Item deadlines with real worker processes: a hung handler never holds its worker."""

from __future__ import annotations

from batchq.engine.deadline import hung_message
from tests.integration.harness import Cluster

DEADLINE_ERROR = ("The item was stopped after its deadline of 1 s (the batch type's "
                  "item_deadline_seconds, or BATCHQ_ITEM_TIMEOUT_SECONDS)")


def test_items_looping_or_blocked_in_c_fail_at_their_deadline_and_the_worker_runs_on(
    production_cluster: Cluster,
) -> None:
    cluster = production_cluster
    cluster.start_worker(concurrency=1)  # one process: a hung item would hold everything
    hung = cluster.create([{"hang": "loop"}, {"hang": "sleep"}, {"n": 3}], type="test-hang",
                          failureThreshold=None, pageSize=3)
    after = cluster.create([{"n": n} for n in range(5)], type="test-hang")

    assert cluster.wait_final(hung, timeout=60)["status"] == "CompletedWithErrors"
    assert cluster.wait_final(after, timeout=60)["status"] == "Completed"
    assert cluster.errors(hung) == {"0": DEADLINE_ERROR, "1": DEADLINE_ERROR}
    cluster.assert_counts_are_exact(hung)


def test_an_item_ignoring_its_deadline_ends_its_process_and_the_pool_runs_on(
    production_cluster: Cluster,
) -> None:
    cluster = production_cluster
    cluster.start_worker(concurrency=1)
    cluster.start_beat()  # the monitor re-runs the page whose lease its deadline let expire
    hung = cluster.create([{"n": 0}, {"hang": "ignore"}, {"n": 2}], type="test-hang",
                          failureThreshold=None, pageSize=3)

    batch = cluster.wait_final(hung, timeout=120)
    after = cluster.create([{"n": n} for n in range(5)], type="test-hang")

    # The first run ended its process and marked the item; the page's second run failed it
    # without running it, and ran the others.
    assert (batch["status"], batch["processedItems"], batch["failedItems"]) == (
        "CompletedWithErrors", 3, 1)
    assert cluster.errors(hung) == {"1": hung_message(1)}
    cluster.assert_counts_are_exact(hung)
    assert cluster.wait_final(after, timeout=60)["status"] == "Completed"
