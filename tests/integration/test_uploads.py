"""Streamed uploads and the duplicate-key check on PostgreSQL (one COPY per batch)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from api import create_app
from batchq.domain import items as item_rules
from batchq.errors import InvalidBatch, TooManyItems
from batchq.runtime import Runtime, build_runtime
from batchq.settings import Settings
from batchq.storage.tables import batches, items
from tests.integration.harness import Cluster
from tests.unit.support import FakeDispatcher, authenticated_client, create


@pytest.fixture
def pg_runtime(postgres_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = build_runtime(Settings(data_dir=tmp_path, database_url=postgres_url, max_items=20),
                            FakeDispatcher())
    yield runtime
    runtime.storage.engine.dispose()


def stored_rows(rt: Runtime) -> tuple[int, int]:
    """(batches, items) in the database."""
    with rt.storage.engine.connect() as conn:
        return tuple(int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
                     for table in (batches, items))  # type: ignore[return-value]


def test_repeated_keys_are_found_by_postgresql_across_copy_chunks(
    pg_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(item_rules, "CHUNK_SIZE", 3)
    raw = [{"key": f"k{n % 5}", "payload": n} for n in range(8)]
    with pytest.raises(InvalidBatch) as refused:
        create(pg_runtime, "echo", raw)
    assert refused.value.details["itemErrors"] == {
        str(n): [f"duplicate key 'k{n - 5}', first used by item {n - 5}"] for n in (5, 6, 7)}
    assert refused.value.details["refusedItems"] == 3
    assert stored_rows(pg_runtime) == (0, 0)


def test_a_batch_without_repeated_keys_is_stored_whole_by_one_copy(
    pg_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(item_rules, "CHUNK_SIZE", 3)
    raw: list[Any] = [{"key": 'quote " comma , newline \n back \\ slash', "payload": {"a": "\"'"}},
                      {"big": 2**70, "text": "caf\u00e9 \u2603", 1: None}, *range(2, 10)]
    create(pg_runtime, "echo", raw)
    with pg_runtime.storage.engine.connect() as conn:
        rows = conn.execute(sa.select(items.c.key, items.c.payload).order_by(items.c.seq)).all()
    assert [tuple(row) for row in rows] == [
        ('quote " comma , newline \n back \\ slash', {"a": "\"'"}),
        ("1", {"big": 2**70, "text": "caf\u00e9 \u2603", "1": None}),
        *((str(n), n) for n in range(2, 10))]


@pytest.mark.parametrize(("body", "status"), [
    (b"".join(b"%d\n" % n for n in range(15)) + b"{broken\n", 400),
    (b"".join(b"%d\n" % n for n in range(21)), 413),
])
def test_an_upload_refused_in_the_middle_of_the_copy_stores_nothing(
    pg_runtime: Runtime, monkeypatch: pytest.MonkeyPatch, body: bytes, status: int
) -> None:
    monkeypatch.setattr(item_rules, "CHUNK_SIZE", 4)  # some chunks were sent to COPY already
    client = authenticated_client(create_app(runtime=pg_runtime))
    response = client.post("/batches?type=echo", data=body, content_type="application/x-ndjson")
    assert response.status_code == status, response.get_data(as_text=True)
    assert set(response.get_json()) == {"status", "error", "details"}
    assert stored_rows(pg_runtime) == (0, 0)
    with pytest.raises(TooManyItems):  # the connection pool is still usable
        create(pg_runtime, "echo", range(21))


def test_a_fifty_thousand_item_ndjson_upload_runs_to_exact_counts(
    production_cluster: Cluster,
) -> None:
    production_cluster.start_worker(concurrency=2)
    lines = (b'{"key": "item-%d", "payload": {"fail": "bad %d"}}\n' % (n, n) if n % 100 == 0
             else b'{"n": %d}\n' % n for n in range(50_000))
    response = production_cluster.client.post(
        "/batches?type=echo&pageSize=500&description=upload", data=b"".join(lines),
        content_type="application/x-ndjson")
    assert response.status_code == 201, response.get_data(as_text=True)
    batch_id = response.get_json()["id"]

    batch = production_cluster.wait_final(batch_id, timeout=240)

    assert batch["status"] == "CompletedWithErrors"
    assert (batch["totalItems"], batch["processedItems"], batch["failedItems"]) == \
        (50_000, 50_000, 500)
    assert (batch["totalJobs"], batch["jobsCompleted"]) == (100, 100)
    assert production_cluster.errors(batch_id) == {
        f"item-{n}": f"bad {n}" for n in range(0, 50_000, 100)}
    production_cluster.assert_counts_are_exact(batch_id)


def test_a_csv_upload_runs_on_the_workers_stage_by_stage(production_cluster: Cluster) -> None:
    production_cluster.start_worker(concurrency=1)
    body = "key,stage,n\n" + "".join(f"c-{n},{n % 2},{n}\n" for n in range(10))
    response = production_cluster.client.post("/batches?type=echo&pageSize=3",
                                              data=body.encode(), content_type="text/csv")
    assert response.status_code == 201, response.get_data(as_text=True)
    batch_id = response.get_json()["id"]
    batch = production_cluster.wait_final(batch_id)
    assert (batch["status"], batch["processedItems"], batch["totalJobs"]) == ("Completed", 10, 4)
    pages = production_cluster.pages(batch_id)
    assert [(page["stage"], page["item_count"]) for page in pages] == [(0, 3), (0, 2), (1, 3),
                                                                         (1, 2)]
    last_of_stage_0 = max(page["finished_at"] for page in pages if page["stage"] == 0)
    assert all(page["started_at"] >= last_of_stage_0 for page in pages if page["stage"] == 1)
