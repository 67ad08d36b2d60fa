"""POST /batches/{id}/retry with real workers, on both stacks: the retry batch runs exactly the
items it holds; on PostgreSQL the items are copied by one INSERT ... SELECT."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from batchq.storage.tables import items
from tests.integration.harness import Cluster, wait_until


def keys_of(cluster: Cluster, batch_id: str) -> list[str]:
    query = sa.select(items.c.key).where(items.c.batch_id == batch_id).order_by(items.c.seq)
    with cluster.runtime.storage.engine.connect() as conn:
        return list(conn.execute(query).scalars())


def test_the_failed_part_of_a_batch_runs_again_as_a_linked_batch(cluster: Cluster) -> None:
    cluster.start_worker(concurrency=2)
    raw = [{"key": f"c{n}", "payload": {"fail": "down"} if n % 7 == 0 else {"n": n}}
           for n in range(700)]
    original = cluster.create(raw, pageSize=25, failureThreshold=None, params={"run": 1})
    cluster.wait_final(original)

    answer = cluster.client.post(f"/batches/{original}/retry", json={"items": "failed"})

    assert answer.status_code == 201, answer.get_json()
    retry = answer.get_json()
    assert (retry["retryOf"], retry["params"], retry["totalItems"]) == (original, {"run": 1}, 100)
    assert keys_of(cluster, retry["id"]) == [f"c{n}" for n in range(0, 700, 7)]
    done = cluster.wait_final(retry["id"])
    assert (done["processedItems"], done["failedItems"]) == (100, 100)
    assert cluster.get(original)["retries"] == [retry["id"]]
    cluster.assert_counts_are_exact(retry["id"])


def test_a_cancelled_batchs_unprocessed_items_run_in_their_retry(
    production_cluster: Cluster,
) -> None:
    cluster = production_cluster
    cluster.start_worker(concurrency=1)
    original = cluster.create([{"key": f"k{n}", "payload": {"sleep": 0.02}}
                               for n in range(600)], pageSize=10, jobsPerSeed=5)
    wait_until(lambda: cluster.done_pages(original) >= 3, 60, "three pages")
    conflict = cluster.client.post(f"/batches/{original}/retry", json={"items": "unprocessed"})
    assert conflict.status_code == 409 and "still" in conflict.get_json()["error"]
    cluster.client.delete(f"/batches/{original}")
    cancelled = cluster.wait_final(original)

    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    sa.event.listen(cluster.runtime.storage.engine, "before_cursor_execute", record)
    try:
        answer = cluster.client.post(f"/batches/{original}/retry",
                                     json={"items": "failed+unprocessed"})
    finally:
        sa.event.remove(cluster.runtime.storage.engine, "before_cursor_execute", record)

    retry = answer.get_json()
    left = cancelled["unprocessedItems"]
    assert answer.status_code == 201 and retry["totalItems"] == left > 0
    copies = [s for s in statements if s.startswith("INSERT INTO items")]
    assert len(copies) == 1 and "SELECT" in copies[0]
    processed = {f"k{n}" for n in range(600)} - set(keys_of(cluster, retry["id"]))
    assert len(processed) == cancelled["processedItems"]
    assert keys_of(cluster, retry["id"]) == sorted(set(keys_of(cluster, retry["id"])),
                                                   key=lambda key: int(key[1:]))
    done = cluster.wait_final(retry["id"], timeout=120)
    assert (done["status"], done["processedItems"]) == ("Completed", left)
