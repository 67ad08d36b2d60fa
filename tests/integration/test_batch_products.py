"""Batch types as products on real workers, both stacks: the registry's view of a run,
results and result files, progress descriptions, and types that cannot be cancelled."""

from __future__ import annotations

import csv
import io
import socket
from typing import Any

from api.presenters import NEVER_RUN
from tests.integration.harness import Cluster, wait_until


def registry_entry(cluster: Cluster, code: str) -> dict[str, Any]:
    response = cluster.client.get(f"/batch-types/{code}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def test_the_registry_shows_a_run_while_it_runs_and_after_it_finished(cluster: Cluster) -> None:
    assert registry_entry(cluster, "echo")["status"] == {"failureReason": NEVER_RUN,
                                                         "type": "echo"}
    worker = cluster.start_worker(concurrency=2)
    batch_id = cluster.create([{"n": n, "sleep": 0.02} for n in range(400)], pageSize=10)

    wait_until(lambda: registry_entry(cluster, "echo")["status"].get("opsCompleted", 0) > 0,
               60, "the run to show progress")
    running = registry_entry(cluster, "echo")
    status = running["status"]
    assert (status["batchId"], status["opsExpected"]) == (batch_id, 400)
    assert "dateCompleted" not in status and "startDate" in status
    assert status["progress"].endswith(" out of 40")
    host, _, pid = status["serverId"].partition(":")
    assert host == socket.gethostname() and int(pid) in cluster.pids_of(worker)
    assert running["distributed"] is True

    cluster.wait_final(batch_id)
    finished = registry_entry(cluster, "echo")
    assert finished["status"]["batchStatus"] == "Completed"
    assert (finished["status"]["opsCompleted"], finished["status"]["failedOps"]) == (400, 0)
    assert "dateCompleted" in finished["status"] and "opsExpected" not in finished["status"]
    assert finished["workQueueStatus"] == {"queued": 0, "running": 0, "workers": []}


def test_result_and_result_file_round_trip(cluster: Cluster) -> None:
    cluster.start_worker(concurrency=2)
    items = [{"key": f"customer-{n}", "payload": {"fail": f"locked {n}"} if n % 10 == 3
              else {"n": n}} for n in range(300)]
    batch_id = cluster.create(items, type="test-failed-keys-report", pageSize=20)

    batch = cluster.wait_final(batch_id)

    assert batch["status"] == "CompletedWithErrors"
    assert batch["result"] == {"processed": 300, "failed": 30}
    download = cluster.client.get(f"/batches/{batch_id}/result-file")
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert download.headers["Content-Disposition"] == (
        f"attachment; filename=failed-{batch_id}.csv")
    rows = list(csv.reader(io.StringIO(download.get_data(as_text=True))))
    assert rows[0] == ["key", "error"]
    assert rows[1:] == [[f"customer-{n}", f"locked {n}"] for n in range(3, 300, 10)]
    assert batch["resultFile"]["size"] == len(download.get_data())


def test_a_handlers_progress_description_shows_while_the_batch_runs(cluster: Cluster) -> None:
    cluster.start_worker(concurrency=1)
    items = [{"key": f"a{n}", "payload": {"n": n, "sleep": 0.02}} for n in range(300)]
    batch_id = cluster.create(items, type="test-progress", pageSize=10)

    wait_until(lambda: cluster.get(batch_id)["progressDescription"].startswith("Escalated"),
               60, "a handler's description")
    running = cluster.get(batch_id)
    n = int(running["progressDescription"].rsplit(" ", 1)[1])
    # The description is committed with its page's counters: that page is done and
    # counted. (Not every earlier page: the broker may deliver pages out of order.)
    page_of_n = next(page for page in cluster.pages(batch_id)
                     if page["first_pos"] <= n < page["first_pos"] + page["item_count"])
    assert page_of_n["status"] == "done"
    assert running["processedItems"] >= page_of_n["item_count"]
    assert running["progressPercent"] > 0

    batch = cluster.wait_final(batch_id)
    assert batch["progressDescription"] == "Completed: 300 of 300 items processed"


def test_a_type_that_cannot_be_cancelled_answers_409_and_runs_to_completion(
    cluster: Cluster,
) -> None:
    cluster.start_worker(concurrency=2)
    items = [{"n": n, "sleep": 0.01} for n in range(300)]
    batch_id = cluster.create(items, type="test-cannot-cancel", pageSize=10)
    wait_until(lambda: cluster.done_pages(batch_id) >= 2, 60, "two pages to finish")

    response = cluster.client.delete(f"/batches/{batch_id}")

    assert response.status_code == 409
    assert response.get_json()["error"] == (
        f"Batches of type 'test-cannot-cancel' cannot be cancelled (CannotCancel); batch "
        f"{batch_id} runs to completion")
    assert response.get_json()["details"]["cancellationBehaviour"] == "CannotCancel"
    assert cluster.get(batch_id)["status"] == "Processing"
    batch = cluster.wait_final(batch_id)
    assert batch["status"] == "Completed"
    assert batch["processedItems"] == batch["totalItems"] == 300
    cluster.assert_counts_are_exact(batch_id)


def test_a_staged_batch_shows_its_stages_in_order_then_none(cluster: Cluster) -> None:
    items = [{"key": f"{kind}-{n}", "stage": stage, "payload": {"n": n, "sleep": 0.05}}
             for stage, kind in ((0, "block"), (1, "chain"), (2, "customer")) for n in range(20)]
    batch_id = cluster.create(items, pageSize=5)
    seen: list[int] = []

    def record_stage() -> bool:
        batch = cluster.get(batch_id)
        if batch["currentStage"] is not None and seen[-1:] != [batch["currentStage"]]:
            seen.append(batch["currentStage"])
        return batch["status"] not in ("Waiting", "Processing")

    cluster.start_worker(concurrency=2)
    wait_until(record_stage, 120, "the staged batch to finish")

    assert seen == [0, 1, 2]
    assert cluster.get(batch_id)["currentStage"] is None
