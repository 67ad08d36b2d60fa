"""Stage order under two worker processes, proven from the pages' recorded timestamps.

Rule (docs/design.md "Lifecycle", stages): no page of stage n+1 starts before every
page of stage n is done, so for each pair of consecutive stages the last
``finished_at`` of the earlier one is at most the first ``started_at`` of the
later one.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import pytest

from tests.integration.harness import Cluster

pytestmark = pytest.mark.services


def assert_stage_order(pages: Sequence[dict[str, Any]]) -> None:
    """Every page is done, and no page started before every page of earlier stages ended."""
    assert pages and all(page["status"] == "done" for page in pages), pages
    stages = sorted({page["stage"] for page in pages})
    for earlier, later in pairwise(stages):
        last_end = max(p["finished_at"] for p in pages if p["stage"] == earlier)
        first_start = min(p["started_at"] for p in pages if p["stage"] == later)
        assert last_end <= first_start, (
            f"a page of stage {later} started at {first_start}, before the last page "
            f"of stage {earlier} finished at {last_end}")


def staged_items(sizes: dict[int, int], seed: int = 3) -> list[dict[str, Any]]:
    """Echo items with an explicit stage, shuffled so that stages interleave in the request."""
    items = [{"key": f"s{stage}-{n}", "stage": stage, "payload": {"n": n, "sleep": 0.01}}
             for stage, count in sizes.items() for n in range(count)]
    random.Random(seed).shuffle(items)
    return items


def test_no_page_of_a_later_stage_starts_before_the_earlier_stages_end(cluster: Cluster) -> None:
    sizes = {0: 23, 1: 17, 2: 30}
    batch_id = cluster.create(staged_items(sizes), pageSize=5)
    cluster.start_worker(concurrency=1)
    cluster.start_worker(concurrency=1)

    batch = cluster.wait_final(batch_id, timeout=180)

    assert batch["status"] == "Completed", batch
    assert batch["processedItems"] == batch["totalItems"] == sum(sizes.values())
    assert batch["failedItems"] == 0
    cluster.assert_counts_are_exact(batch_id)
    pages = cluster.pages(batch_id)
    assert Counter(p["stage"] for p in pages) == {0: 5, 1: 4, 2: 6}
    assert {s: sum(p["succeeded"] for p in pages if p["stage"] == s) for s in sizes} == sizes
    assert_stage_order(pages)


def test_a_failed_item_does_not_hold_back_the_later_stages(cluster: Cluster) -> None:
    """Observed behaviour: stage order waits for pages to be done, not for items to succeed.

    An item of stage 0 that fails is counted and recorded like any other; its
    page is done, so stage 1 runs as usual and the batch ends CompletedWithErrors.
    """
    items = staged_items({0: 12, 1: 12})
    items.append({"key": "bad-block", "stage": 0, "payload": {"fail": "block b-7 is locked"}})
    batch_id = cluster.create(items, pageSize=5)
    cluster.start_worker(concurrency=1)
    cluster.start_worker(concurrency=1)

    batch = cluster.wait_final(batch_id, timeout=180)

    assert batch["status"] == "CompletedWithErrors", batch
    assert batch["processedItems"] == batch["totalItems"] == 25
    assert batch["failedItems"] == 1
    assert cluster.errors(batch_id) == {"bad-block": "block b-7 is locked"}
    cluster.assert_counts_are_exact(batch_id)
    pages = cluster.pages(batch_id)
    assert sum(p["succeeded"] for p in pages if p["stage"] == 1) == 12
    assert_stage_order(pages)
