"""``GET /batches`` and ``/batches/count``: every filter, every sort, paging and each 400."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from batchq.runtime import Runtime

from .support import authenticated_client, run_to_end


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return authenticated_client(app, "root")


@pytest.fixture
def batches(app: Flask, client: FlaskClient) -> dict[str, str]:
    """Five batches: acme (two, one suspended and one finished), globex, no tenant, by alice."""
    alice = authenticated_client(app, "alice", tenant_id="acme", is_system=False)
    finished = _post(client, tenantId="acme", type="noop")
    run_to_end(app.extensions["batchq"], finished)  # before the others exist: they stay Waiting
    ids = {
        "acme-1": _post(client, tenantId="acme"),
        "acme-2": finished,
        "globex": _post(client, tenantId="globex"),
        "none": _post(client, tenantId=None),
        "alice": _post(alice),
    }
    client.patch(f"/batches/{ids['acme-1']}", json={"suspended": True})
    return ids


def _post(client: FlaskClient, type: str = "echo", **body: Any) -> str:
    response = client.post("/batches", json={"type": type, "items": [1], **body})
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def listed(client: FlaskClient, query: str) -> list[str]:
    response = client.get(f"/batches?{query}")
    assert response.status_code == 200, response.get_json()
    return [batch["id"] for batch in response.get_json()]


@pytest.mark.parametrize(("query", "expected"), [
    ("", {"acme-1", "acme-2", "globex", "none", "alice"}),
    ("type=noop", {"acme-2"}),
    ("status=Completed", {"acme-2"}),
    ("status=Waiting", {"acme-1", "globex", "none", "alice"}),
    ("tenantIdIn=acme", {"acme-1", "acme-2", "alice"}),
    ("tenantIdIn=globex,acme", {"acme-1", "acme-2", "globex", "alice"}),
    ("tenantIdIn=nobody", set()),
    ("withoutTenantId=true", {"none"}),
    ("withoutTenantId=false", {"acme-1", "acme-2", "globex", "none", "alice"}),
    ("withoutTenantId=true&tenantIdIn=globex", {"globex", "none"}),
    ("suspended=true", {"acme-1"}),
    ("suspended=false", {"acme-2", "globex", "none", "alice"}),
    ("createdBy=alice", {"alice"}),
    ("createdBy=root&tenantIdIn=acme", {"acme-1", "acme-2"}),
])
def test_each_filter_narrows_the_list_and_the_count_alike(
    client: FlaskClient, batches: dict[str, str], query: str, expected: set[str]
) -> None:
    assert set(listed(client, query)) == {batches[name] for name in expected}
    count = client.get(f"/batches/count?{query}").get_json()["count"]
    assert count == len(expected)


def test_batch_id_finds_exactly_that_batch(client: FlaskClient, batches: dict[str, str]) -> None:
    assert listed(client, f"batchId={batches['globex']}") == [batches["globex"]]
    assert client.get("/batches/count?batchId=nope").get_json() == {"count": 0}


@pytest.mark.parametrize("sort_by", ["batchId", "tenantId", "type", "status", "createdAt"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_every_sort_orders_the_whole_list(
    client: FlaskClient, batches: dict[str, str], sort_by: str, order: str
) -> None:
    rows = client.get(f"/batches?sortBy={sort_by}&sortOrder={order}").get_json()
    assert len(rows) == len(batches)
    field = "id" if sort_by == "batchId" else sort_by
    # SQL puts NULL first ascending on SQLite; compare the non-null values' order.
    values = [row[field] for row in rows if row[field] is not None]
    assert values == sorted(values, reverse=order == "desc")


def test_paging_walks_every_batch_once(client: FlaskClient, batches: dict[str, str]) -> None:
    seen: list[str] = []
    for first in range(0, 6, 2):
        seen += listed(client, f"sortBy=createdAt&sortOrder=asc&firstResult={first}&maxResults=2")
    assert sorted(seen) == sorted(batches.values())
    assert listed(client, "firstResult=5") == []
    assert listed(client, "firstResult=1000000") == []
    assert len(listed(client, "maxResults=1")) == 1
    assert len(listed(client, "maxResults=1000")) == 5


def test_a_listed_batch_shows_its_summary(client: FlaskClient, batches: dict[str, str]) -> None:
    row = client.get(f"/batches?batchId={batches['alice']}").get_json()[0]
    assert (row["createUserId"], row["tenantId"], row["type"]) == ("alice", "acme", "echo")
    assert (row["totalItems"], row["processedItems"], row["status"]) == (1, 0, "Waiting")


@pytest.mark.parametrize(("path", "field"), [
    ("/batches?sortBy=createdAt", "sortOrder"),
    ("/batches?sortOrder=asc", "sortBy"),
    ("/batches?sortBy=size&sortOrder=asc", "sortBy"),
    ("/batches?sortBy=type&sortOrder=up", "sortOrder"),
    ("/batches?status=Done", "status"),
    ("/batches?suspended=maybe", "suspended"),
    ("/batches?withoutTenantId=2", "withoutTenantId"),
    ("/batches?tenantIdIn=a,,b", "tenantIdIn"),
    ("/batches?firstResult=-1", "firstResult"),
    ("/batches?firstResult=x", "firstResult"),
    ("/batches?maxResults=0", "maxResults"),
    ("/batches?maxResults=1001", "maxResults"),
    ("/batches?sortby=type", "sortby"),
    ("/batches/count?status=Done", "status"),
    ("/batches/count?sortBy=type&sortOrder=asc", "sortBy"),
])
def test_a_bad_query_parameter_is_a_400_naming_it(
    client: FlaskClient, path: str, field: str
) -> None:
    response = client.get(path)
    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["details"]["fields"]


def test_the_runtime_fixture_is_the_apps(app: Flask) -> None:
    assert isinstance(app.extensions["batchq"], Runtime)
