"""The console's reads on PostgreSQL (the unit tests use SQLite): the progress series rounds
each page down into its time bucket, and the failed-item search is case- and wildcard-safe."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from batchq.domain.item_outcomes import ItemStatus
from batchq.domain.lists import Window
from batchq.runtime import Runtime, build_runtime
from batchq.service import console
from batchq.settings import Settings
from batchq.storage.tables import pages
from tests.unit.support import FakeDispatcher, create, failing_items, ok_items, run_to_end

pytestmark = pytest.mark.services


@pytest.fixture
def runtime(postgres_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = build_runtime(Settings(data_dir=tmp_path, database_url=postgres_url,
                                execute_slice_seconds=0.0), FakeDispatcher())
    yield rt
    rt.storage.engine.dispose()


def test_the_series_puts_each_page_in_the_bucket_it_finished_in_on_postgres(
        runtime: Runtime) -> None:
    batch_id = create(runtime, "echo", [*ok_items(4), *failing_items(2)], page_size=2,
                      failure_threshold=None)
    batch = run_to_end(runtime, batch_id)
    started = batch["started_at"]
    # 0.9 s must fall into bucket 0, not be rounded up into bucket 1 (PostgreSQL's CAST rounds).
    with runtime.storage.engine.begin() as conn:
        for page_no, offset in enumerate((0.9, 1.2, 2.7)):
            conn.execute(sa.update(pages).where(pages.c.batch_id == batch_id,
                                                pages.c.page_no == page_no)
                         .values(finished_at=started + timedelta(seconds=offset)))
    buckets = runtime.storage.activity.finished_per_bucket(batch_id, started, 1.0)
    assert buckets == {0: (2, 0), 1: (2, 0), 2: (2, 2)}


def test_failed_items_search_and_export_on_postgres(runtime: Runtime) -> None:
    items = [{"key": "Alpha_1", "payload": {"fail": "Timeout at 50%"}},
             {"key": "beta", "payload": {"fail": "refused"}}, *ok_items(2)]
    batch = run_to_end(runtime, create(runtime, "echo", items, failure_threshold=None))
    assert [e["key"] for e in console.search_failed(runtime, batch, "ALPHA", Window())] == [
        "Alpha_1"]
    assert [e["key"] for e in console.search_failed(runtime, batch, "bet_", Window())] == []
    assert [e["key"] for e in console.search_failed(runtime, batch, "50%", Window())] == [
        "Alpha_1"]
    exported = list(console.export_items(runtime, batch, ItemStatus.FAILED))
    assert [(i["key"], i["payload"]) for i in exported] == [
        ("Alpha_1", {"fail": "Timeout at 50%"}), ("beta", {"fail": "refused"})]
