"""Items and errors of a partly run multi-stage batch on PostgreSQL (the unit tests use SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from api import create_app
from batchq.runtime import Runtime, build_runtime
from batchq.settings import Settings
from tests.unit.support import FakeDispatcher, authenticated_client, work_off_messages


@pytest.fixture
def runtime(postgres_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = build_runtime(Settings(data_dir=tmp_path, database_url=postgres_url,
                                execute_slice_seconds=0.0), FakeDispatcher())
    yield rt
    rt.storage.engine.dispose()


def keys(client: FlaskClient, path: str) -> list[str]:
    response = client.get(path)
    assert response.status_code == 200, response.get_json()
    return [row["key"] for row in response.get_json()["items"]]


def test_status_filters_and_paging_follow_input_order_across_stages_on_postgres(
    runtime: Runtime,
) -> None:
    app = create_app(runtime=runtime)
    client = authenticated_client(app)
    stranger = authenticated_client(app, "stranger", tenant_id="globex", is_system=False)
    # Input order interleaves stage 1 and stage 0; stage 0 is k1 k3 k5 ... (pages 0-4).
    items: list[dict[str, Any]] = [
        {"key": f"k{n}", "stage": 0 if n % 2 else 1,
         "payload": {"fail": f"bad {n % 3}"} if n in (3, 9) else {"n": n}} for n in range(20)]
    created = client.post("/batches", json={"type": "echo", "items": items, "pageSize": 2,
                                            "jobsPerSeed": 2, "failureThreshold": None})
    batch_id = created.get_json()["id"]
    # Page 1 of stage 0 (k5, k7) never runs, so stage 1 never starts.
    work_off_messages(runtime, lost=lambda kind, args: kind == "execute" and args[1] == 1)

    base = f"/batches/{batch_id}/items"
    assert keys(client, f"{base}?status=succeeded") == ["k1", "k11", "k13", "k15", "k17",
                                                         "k19"]
    assert keys(client, f"{base}?status=failed") == ["k3", "k9"]
    unprocessed = [f"k{n}" for n in range(20) if n % 2 == 0 or n in (5, 7)]
    assert keys(client, f"{base}?status=unprocessed") == unprocessed
    assert keys(client, f"{base}?status=unprocessed&firstResult=3&maxResults=4") == \
        unprocessed[3:7]
    assert keys(client, f"{base}?firstResult=18") == ["k18", "k19"]
    assert client.get(f"{base}?status=unprocessed").get_json()["total"] == len(unprocessed)
    errors = client.get(f"/batches/{batch_id}/errors").get_json()
    assert [(e["index"], e["message"]) for e in errors["errors"]] == [(3, "bad 0"),
                                                                      (9, "bad 0")]
    summary = client.get(f"/batches/{batch_id}/errors/summary").get_json()
    assert summary["messages"] == [{"message": "bad 0", "count": 2, "sampleKeys": ["k3", "k9"]}]
    assert client.get(f"{base}?maxResults=0").status_code == 400
    assert stranger.get(base).status_code == 404
