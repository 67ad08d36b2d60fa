"""Keyset cursors on PostgreSQL: walking every item, error and batch of a larger batch.

bench/cursors.py measures the latency of ``afterIndex`` at the start, middle and
end of a 1,000,000-item batch; this checks that the windows are right.
"""

from __future__ import annotations

from typing import Any

from tests.integration.harness import Cluster


def walk(cluster: Cluster, path: str, rows: str, size: int) -> list[Any]:
    seen: list[Any] = []
    after = None
    separator = "&" if "?" in path else "?"
    while True:
        cursor = "" if after is None else f"&afterIndex={after}"
        body = cluster.client.get(f"{path}{separator}maxResults={size}{cursor}").get_json()
        seen += [(row["index"], row["key"]) for row in body[rows]]
        after = body["nextAfterIndex"]
        if after is None:
            return seen


def test_after_index_walks_every_item_and_error_of_a_batch_in_order(
    production_cluster: Cluster,
) -> None:
    cluster = production_cluster
    cluster.start_worker(concurrency=2)
    count = 20_000
    items = [{"key": f"k{n:05}", "payload": {"fail": "no"} if n % 97 == 0 else {"n": n}}
             for n in range(count)]
    batch_id = cluster.create(items, type="echo", pageSize=250, failureThreshold=None)
    batch = cluster.wait_final(batch_id, timeout=180)
    assert batch["failedItems"] == len(range(0, count, 97))

    every = walk(cluster, f"/batches/{batch_id}/items", "items", 1000)
    failed = walk(cluster, f"/batches/{batch_id}/items?status=failed", "items", 77)
    succeeded = walk(cluster, f"/batches/{batch_id}/items?status=succeeded", "items", 1000)
    errors = walk(cluster, f"/batches/{batch_id}/errors", "errors", 500)

    assert every == [(n, f"k{n:05}") for n in range(count)]
    assert failed == errors == [(n, f"k{n:05}") for n in range(0, count, 97)]
    assert succeeded == [(n, f"k{n:05}") for n in range(count) if n % 97]
    deep = cluster.client.get(f"/batches/{batch_id}/items?afterIndex={count - 3}").get_json()
    assert [item["index"] for item in deep["items"]] == [count - 2, count - 1]
    assert deep["nextAfterIndex"] is None


def test_after_key_walks_the_batches_of_every_sort(production_cluster: Cluster) -> None:
    cluster = production_cluster
    tenants = ["acme", None, "globex", "acme", None] * 4
    made = {cluster.create([n], type="noop", tenantId=tenant) for n, tenant in enumerate(tenants)}
    for sort in ("", "&sortBy=tenantId&sortOrder=asc", "&sortBy=tenantId&sortOrder=desc",
                 "&sortBy=createdAt&sortOrder=asc", "&sortBy=type&sortOrder=desc"):
        whole = [b["id"] for b in cluster.client.get(f"/batches?maxResults=1000{sort}").get_json()]
        walked: list[str] = []
        after = ""
        while True:
            window = cluster.client.get(f"/batches?maxResults=3{sort}{after}").get_json()
            walked += [b["id"] for b in window]
            if len(window) < 3:
                break
            after = f"&afterKey={window[-1]['id']}"
        assert walked == whole and set(whole) == made, sort
