"""Item deadlines with real worker processes: a hung handler never holds its worker."""

from __future__ import annotations

from batchq.domain.statuses import WORKER_LOST
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
    hung = cluster.create([{"hang": "ignore"}], type="test-hang", failureThreshold=None)

    batch = cluster.wait_final(hung, timeout=120)
    after = cluster.create([{"n": n} for n in range(5)], type="test-hang")

    # Each attempt ended its process; after max_attempts the page was given up.
    assert (batch["status"], batch["failedItems"]) == ("CompletedWithErrors", 1)
    assert cluster.errors(hung) == {"0": WORKER_LOST}
    assert cluster.wait_final(after, timeout=60)["status"] == "Completed"
