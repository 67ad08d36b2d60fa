"""An item longer than a page's lease, on real workers with beat's monitor running."""

from __future__ import annotations

from tests.integration.harness import Cluster


def test_an_item_longer_than_the_lease_is_run_once_and_its_page_never_re_run(
    cluster: Cluster,
) -> None:
    lease = cluster.settings.lease_seconds
    cluster.start_worker(concurrency=2)
    cluster.start_beat()  # the monitor that would re-run a page whose lease expired
    items = [{"key": "long", "payload": {"sleep": 2.5 * lease}}] + [
        {"key": f"quick-{n}", "payload": {"n": n}} for n in range(20)]
    batch_id = cluster.create(items, pageSize=1)

    batch = cluster.wait_final(batch_id, timeout=120)

    assert batch["status"] == "Completed"
    assert batch["processedItems"] == 21
    assert [page["attempts"] for page in cluster.pages(batch_id)] == [1] * 21
    cluster.assert_counts_are_exact(batch_id)
