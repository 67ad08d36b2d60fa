"""Keyset cursors (afterIndex, afterKey) and short id prefixes on SQLite."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from batchq.domain.permissions import Function
from batchq.runtime import Runtime

from .support import (
    authenticated_client,
    create,
    deliver,
    deliver_seed,
    dispatcher_of,
    run_to_end,
)


def walk(client: FlaskClient, path: str, rows: str, size: int) -> list[Any]:
    """Every row of a list, read a window at a time through ``nextAfterIndex``."""
    seen: list[Any] = []
    after: int | None = None
    while True:
        query = f"maxResults={size}" + ("" if after is None else f"&afterIndex={after}")
        answer = client.get(f"{path}{'&' if '?' in path else '?'}{query}")
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        seen += [row["key"] for row in body[rows]]
        after = body["nextAfterIndex"]
        if after is None:
            return seen


@pytest.fixture
def half_done(rt: Runtime) -> str:
    """30 items in pages of 4, every 4th failing; pages 0-3 ran, the rest did not."""
    items = [{"key": f"k{n:02}", "payload": {"fail": "no"} if n % 4 == 1 else {"n": n}}
             for n in range(30)]
    batch_id = create(rt, "echo", items, page_size=4, failure_threshold=None)
    deliver_seed(rt)  # 8 pages created, 4 queued
    outbox = dispatcher_of(rt).outbox
    while outbox:
        kind, args = outbox.popleft()
        if kind == "execute" and args[1] < 4:
            deliver(rt, kind, args)
    return batch_id


@pytest.mark.parametrize(("status", "expected"), [
    (None, [f"k{n:02}" for n in range(30)]),
    ("failed", [f"k{n:02}" for n in range(1, 16, 4)]),
    ("succeeded", [f"k{n:02}" for n in range(16) if n % 4 != 1]),
    ("unprocessed", [f"k{n:02}" for n in range(16, 30)]),
])
def test_after_index_walks_each_item_list_once_in_order(
    client: FlaskClient, half_done: str, status: str | None, expected: list[str]
) -> None:
    path = f"/batches/{half_done}/items" + (f"?status={status}" if status else "")
    for size in (1, 3, 100):
        assert walk(client, path, "items", size) == expected


def test_after_index_walks_the_errors_and_a_full_last_window_ends_empty(
    client: FlaskClient, half_done: str
) -> None:
    assert walk(client, f"/batches/{half_done}/errors", "errors", 2) == ["k01", "k05", "k09",
                                                                          "k13"]
    last = client.get(f"/batches/{half_done}/errors?afterIndex=13").get_json()
    assert (last["errors"], last["nextAfterIndex"], last["afterIndex"]) == ([], None, 13)


def test_after_index_and_first_result_together_are_refused(
    client: FlaskClient, half_done: str
) -> None:
    for path in ("items", "errors"):
        answer = client.get(f"/batches/{half_done}/{path}?afterIndex=3&firstResult=2")
        assert answer.status_code == 400
        assert "afterIndex" in answer.get_json()["details"]["fields"]
    assert client.get(f"/batches/{half_done}/items?afterIndex=-2").status_code == 400


@pytest.fixture
def many(rt: Runtime) -> list[str]:
    tenants = ["acme", None, "globex", "acme", None, "acme", "zeta"]
    made = [create(rt, "echo" if n % 2 else "noop", [n], tenant_id=tenant)
            for n, tenant in enumerate(tenants)]
    for batch_id in made[:3]:
        run_to_end(rt, batch_id)
    return made


@pytest.mark.parametrize("sort", [None, "batchId", "tenantId", "type", "status", "createdAt"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_after_key_walks_the_batches_in_every_sort(
    client: FlaskClient, many: list[str], sort: str | None, order: str
) -> None:
    sorting = "" if sort is None else f"&sortBy={sort}&sortOrder={order}"
    whole = [b["id"] for b in client.get(f"/batches?maxResults=1000{sorting}").get_json()]
    walked: list[str] = []
    after = ""
    while True:
        window = client.get(f"/batches?maxResults=2{sorting}{after}").get_json()
        walked += [b["id"] for b in window]
        if len(window) < 2:
            break
        after = f"&afterKey={window[-1]['id']}"
    assert walked == whole and sorted(whole) == sorted(many)


def test_after_key_must_name_a_batch_the_caller_may_read(
    app: Flask, client: FlaskClient, many: list[str]
) -> None:
    stranger = authenticated_client(app, "stranger", is_system=False, tenant_id="zeta",
                                    functions=(Function.ADMIN_BATCHES,))
    for caller, after in ((client, "no-such-batch"), (stranger, many[0])):
        answer = caller.get(f"/batches?afterKey={after}")
        assert answer.status_code == 400 and answer.get_json()["details"]["field"] == "afterKey"
    assert client.get(f"/batches?afterKey={many[0]}&firstResult=1").status_code == 400


def test_a_short_id_prefix_finds_batches_on_the_primary_key(
    app: Flask, client: FlaskClient, many: list[str]
) -> None:
    wanted = many[3]
    for prefix in (wanted[:4], wanted[:8].upper(), wanted[:13], wanted):
        found = client.get(f"/batches?batchIdPrefix={prefix}").get_json()
        assert wanted in [b["id"] for b in found]
        assert all(b["id"].startswith(prefix.lower()) for b in found)
    for nothing in ("zz", "%25", "_", wanted[:35] + "g"):
        assert client.get(f"/batches?batchIdPrefix={nothing}").get_json() == []
    assert client.get(f"/batches?batchIdPrefix={wanted}0").status_code == 400  # over 36
    stranger = authenticated_client(app, "stranger", is_system=False, tenant_id="zeta",
                                    functions=(Function.ADMIN_BATCHES,))
    assert stranger.get(f"/batches?batchIdPrefix={wanted[:8]}").get_json() == []
    assert client.get(f"/batches/count?batchIdPrefix={wanted[:8]}").get_json()["count"] >= 1
