"""The console's reads: the progress series and its rates, worker activity, failed-item
search and keyset exports, and the next run of a schedule."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from batchq.domain.item_outcomes import ItemStatus
from batchq.domain.lists import BatchFilter, BatchOrder, Window
from batchq.domain.permissions import Caller
from batchq.domain.throughput import (
    SERIES_BUCKETS,
    bucket_seconds,
    eta_seconds,
    items_per_second,
    recent_rate,
    series,
)
from batchq.runtime import Runtime
from batchq.service import console, listing
from batchq.storage.tables import batches, pages

from .support import create, failing_items, ok_items, run_to_end

T0 = datetime(2026, 1, 1, 12, 0, 0)


def _batch(**fields: Any) -> dict[str, Any]:
    return {"started_at": T0, "finished_at": None, "total_items": 1000,
            "processed_items": 100, "failed_items": 0, **fields}


def test_rates_and_eta_come_from_the_counters_and_the_series() -> None:
    batch = _batch()
    assert items_per_second(batch, T0 + timedelta(seconds=50)) == 2.0
    assert items_per_second(_batch(started_at=None), T0) is None
    assert bucket_seconds(batch, T0 + timedelta(seconds=120)) == 120 / SERIES_BUCKETS
    points = series(T0, 2.0, {0: (10, 1), 3: (30, 0)})
    assert [p.processed_total for p in points] == [10, 10, 10, 40]
    assert points[-1].ends_at == T0 + timedelta(seconds=8)
    assert recent_rate(points, 2.0) == 40 / 8
    assert eta_seconds(batch, 10.0) == 90.0
    assert eta_seconds(batch, None) is None
    assert eta_seconds(_batch(processed_items=1000), None) == 0.0


def _finish_pages_at(rt: Runtime, batch_id: str, seconds: list[float]) -> None:
    """Rewrite when each done page finished (page n at ``seconds[n]`` after it started)."""
    started = rt.storage.batches.get(batch_id)["started_at"]
    with rt.storage.engine.begin() as conn:
        for page_no, offset in enumerate(seconds):
            conn.execute(sa.update(pages).where(pages.c.batch_id == batch_id,
                                                pages.c.page_no == page_no)
                         .values(finished_at=started + timedelta(seconds=offset)))


def test_the_series_groups_done_pages_by_when_they_finished(rt: Runtime) -> None:
    batch_id = create(rt, "echo", [*ok_items(4), *failing_items(2)], page_size=2,
                      failure_threshold=None)
    run_to_end(rt, batch_id)
    # A start at .7 s: cutting times to whole seconds would move the first page to bucket 1.
    with rt.storage.engine.begin() as conn:
        conn.execute(sa.update(batches).where(batches.c.id == batch_id)
                     .values(started_at=T0.replace(microsecond=700_000)))
    batch = rt.storage.batches.get(batch_id)
    _finish_pages_at(rt, batch_id, [0.5, 30.5, 59.9])
    now = batch["started_at"] + timedelta(seconds=60)
    found = console.throughput(rt, {**batch, "finished_at": None}, now)
    assert found.bucket_seconds == 1.0
    by_end = {round((p.ends_at - batch["started_at"]).total_seconds()): p for p in found.points}
    assert (by_end[1].processed, by_end[31].processed, by_end[60].processed) == (2, 2, 2)
    assert (by_end[60].processed_total, by_end[60].failed_total) == (6, 2)
    assert len(found.points) <= SERIES_BUCKETS


def test_worker_activity_shows_running_pages_per_worker_and_the_queue(rt: Runtime) -> None:
    from .support import deliver_seed, start_slow_page

    batch_id = create(rt, "echo", ok_items(6), page_size=2)
    deliver_seed(rt)
    start_slow_page(rt, batch_id, 0, worker="host:1")
    activity = console.worker_activity(rt, Caller("root", is_system=True))
    assert [(run.batch_id, run.pages) for run in activity.workers["host:1"]] == [(batch_id, 1)]
    assert [(b, n) for b, _type, n in activity.queued] == [(batch_id, 2)]
    assert (activity.all_queued, activity.all_running, activity.all_busy_workers) == (2, 1, 1)
    nobody = console.worker_activity(rt, Caller("nobody", tenant_id="other"))
    assert not nobody.workers and not nobody.queued and nobody.all_running == 1


def test_failed_items_are_searched_by_key_and_message_in_any_case(rt: Runtime) -> None:
    items = [{"key": "Alpha_1", "payload": {"fail": "Timeout at 50%"}},
             {"key": "beta", "payload": {"fail": "refused"}}, *ok_items(2)]
    batch_id = create(rt, "echo", items, failure_threshold=None)
    batch = run_to_end(rt, batch_id)
    found = lambda text: [e["key"] for e in console.search_failed(rt, batch, text, Window())]  # noqa: E731
    assert found("alpha") == ["Alpha_1"]
    assert found("REFUSED") == ["beta"]
    assert found("50%") == ["Alpha_1"] and found("_1") == ["Alpha_1"]
    assert found("%") == ["Alpha_1"] and found("bet_") == []  # wildcards are plain text
    assert found("") == ["Alpha_1", "beta"]


def test_the_export_reads_unprocessed_and_failed_items_in_keyset_chunks(
        rt: Runtime, monkeypatch: Any) -> None:
    monkeypatch.setattr("batchq.service.console.EXPORT_CHUNK", 2)
    batch_id = create(rt, "echo", [*ok_items(5), *failing_items(3)], page_size=3,
                      failure_threshold=None)
    batch = rt.storage.batches.get(batch_id)
    unprocessed = [i["key"] for i in console.export_items(rt, batch, ItemStatus.UNPROCESSED)]
    assert unprocessed == [*(f"k{n}" for n in range(5)), "bad0", "bad1", "bad2"]
    batch = run_to_end(rt, batch_id)
    failed = list(console.export_items(rt, batch, ItemStatus.FAILED))
    assert [(i["key"], i["error"]) for i in failed] == [(f"bad{n}", f"boom {n}") for n in range(3)]
    assert list(console.export_items(rt, batch, ItemStatus.UNPROCESSED)) == []


def test_the_list_filters_by_the_time_a_batch_was_created(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(1))
    created = rt.storage.batches.get(batch_id)["created_at"]
    root = Caller("root", is_system=True)

    def ids(**wanted: Any) -> list[str]:
        return [b["id"] for b in listing.list_batches(rt, root, BatchFilter(**wanted),
                                                      BatchOrder(), Window())]

    assert ids(created_from=created) == [batch_id]
    assert ids(created_from=created + timedelta(seconds=1)) == []
    assert ids(created_before=created) == []
    assert ids(created_before=created + timedelta(seconds=1)) == [batch_id]
    assert listing.count_batches(rt, root, BatchFilter(created_before=created)) == 0
