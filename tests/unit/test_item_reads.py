"""``/batches/{id}/items``, ``/errors`` and ``/errors/summary`` on SQLite."""

from __future__ import annotations

from collections.abc import Container
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from batchq.domain.item_outcomes import Segment, open_segments
from batchq.domain.permissions import Function
from batchq.runtime import Runtime

from .support import (
    NewType,
    authenticated_client,
    create,
    run_to_end,
    work_off_messages,
)
from .test_api import assert_error

KINDS = {"block": 0, "customer": 1}


@pytest.fixture
def staged_type(new_type: NewType) -> str:
    code, _calls = new_type(stage_of=lambda payload: KINDS[payload["kind"]])
    return code


def staged_items(count: int = 10, failing: Container[int] = ()) -> list[dict[str, Any]]:
    """Customers and blocks alternating in the input; item n fails when n is in ``failing``."""
    items = []
    for n in range(count):
        payload: dict[str, Any] = {"kind": "customer" if n % 2 else "block"}
        if n in failing:
            payload["fail"] = f"boom {n % 3}"
        items.append({"key": f"k{n}", "payload": payload})
    return items


def run_all_but(rt: Runtime, batch_id: str, skipped_pages: Container[int]) -> None:
    """Run every page the batch lets run, except ``skipped_pages``, whose messages are lost."""
    work_off_messages(rt, lost=lambda kind, args: kind == "execute" and args[1] in skipped_pages)


def keys(page: dict[str, Any]) -> list[str]:
    return [row["key"] for row in page["items"]]


def test_items_of_a_finished_multi_stage_batch_come_in_input_order_with_their_outcome(
    rt: Runtime, client: FlaskClient, staged_type: str
) -> None:
    batch_id = create(rt, staged_type, staged_items(10, failing={3, 4}), page_size=2,
                      failure_threshold=None)
    run_to_end(rt, batch_id)

    page = client.get(f"/batches/{batch_id}/items").get_json()

    assert page["total"] == 10 and page["status"] is None
    assert keys(page) == [f"k{n}" for n in range(10)]
    assert [row["index"] for row in page["items"]] == list(range(10))
    assert [row["stage"] for row in page["items"]] == [0, 1] * 5
    fourth = page["items"][3]
    assert fourth == {"index": 3, "key": "k3", "stage": 1, "status": "failed",
                      "error": "boom 0", "payload": {"kind": "customer", "fail": "boom 0"}}
    assert "error" not in page["items"][0] and page["items"][0]["status"] == "succeeded"
    failed = client.get(f"/batches/{batch_id}/items?status=failed").get_json()
    assert keys(failed) == ["k3", "k4"] and failed["total"] == 2
    succeeded = client.get(f"/batches/{batch_id}/items?status=succeeded").get_json()
    assert keys(succeeded) == [f"k{n}" for n in range(10) if n not in (3, 4)]
    assert succeeded["total"] == 8
    unprocessed = client.get(f"/batches/{batch_id}/items?status=unprocessed").get_json()
    assert unprocessed["items"] == [] and unprocessed["total"] == 0


def test_items_whose_page_is_not_done_or_not_created_are_unprocessed(
    rt: Runtime, client: FlaskClient, staged_type: str
) -> None:
    # Stage 0 holds k0 k2 k4 k6 k8 (pages 0-2), stage 1 k1 k3 k5 k7 k9 (pages 3-5).
    # Page 1 (k4, k6) never runs, so stage 1 never starts.
    batch_id = create(rt, staged_type, staged_items(10, failing={8}), page_size=2,
                      jobs_per_seed=1, failure_threshold=None)
    run_all_but(rt, batch_id, skipped_pages={1})

    statuses = {row["key"]: row["status"] for row in
                client.get(f"/batches/{batch_id}/items").get_json()["items"]}
    unprocessed = client.get(f"/batches/{batch_id}/items?status=unprocessed").get_json()
    succeeded = client.get(f"/batches/{batch_id}/items?status=succeeded").get_json()
    failed = client.get(f"/batches/{batch_id}/items?status=failed").get_json()

    assert keys(unprocessed) == ["k1", "k3", "k4", "k5", "k6", "k7", "k9"]
    assert unprocessed["total"] == 7
    assert keys(succeeded) == ["k0", "k2"] and succeeded["total"] == 2
    assert keys(failed) == ["k8"] and failed["total"] == 1
    assert statuses == {**{key: "unprocessed" for key in keys(unprocessed)},
                        "k0": "succeeded", "k2": "succeeded", "k8": "failed"}


def test_a_status_filter_pages_through_items_without_gaps_or_repeats(
    rt: Runtime, client: FlaskClient, new_type: NewType
) -> None:
    code, _calls = new_type()
    items = [{"key": f"k{n}", "payload": {"fail": "x"} if n % 4 == 0 else {"n": n}}
             for n in range(40)]
    batch_id = create(rt, code, items, page_size=3, jobs_per_seed=2, failure_threshold=None)
    run_all_but(rt, batch_id, skipped_pages={2, 5, 6})

    for status in ("succeeded", "failed", "unprocessed", None):
        query = f"status={status}&" if status else ""
        whole = client.get(f"/batches/{batch_id}/items?{query}maxResults=1000").get_json()
        pieces: list[str] = []
        for first in range(0, 45, 7):
            page = client.get(f"/batches/{batch_id}/items?{query}firstResult={first}"
                              f"&maxResults=7").get_json()
            assert page["firstResult"] == first and page["maxResults"] == 7
            pieces += keys(page)
        assert pieces == keys(whole)
        assert len(pieces) == whole["total"]
        assert all(row["status"] == status for row in whole["items"] if status)


def test_errors_are_listed_in_input_order_with_their_index_and_time(
    rt: Runtime, client: FlaskClient, staged_type: str
) -> None:
    batch_id = create(rt, staged_type, staged_items(10, failing={1, 2, 5, 8}), page_size=2,
                      failure_threshold=None)
    run_to_end(rt, batch_id)

    page = client.get(f"/batches/{batch_id}/errors").get_json()

    assert page["total"] == 4 and (page["firstResult"], page["maxResults"]) == (0, 100)
    assert [(e["index"], e["key"], e["message"]) for e in page["errors"]] == [
        (1, "k1", "boom 1"), (2, "k2", "boom 2"), (5, "k5", "boom 2"), (8, "k8", "boom 2")]
    assert all(e["failedAt"] for e in page["errors"])
    second = client.get(f"/batches/{batch_id}/errors?firstResult=1&maxResults=2").get_json()
    assert [e["key"] for e in second["errors"]] == ["k2", "k5"]


def test_paging_past_the_end_answers_an_empty_page_with_the_total(
    rt: Runtime, client: FlaskClient, staged_type: str
) -> None:
    batch_id = create(rt, staged_type, staged_items(4, failing={0}), failure_threshold=None)
    run_to_end(rt, batch_id)

    errors = client.get(f"/batches/{batch_id}/errors?firstResult=1").get_json()
    items = client.get(f"/batches/{batch_id}/items?firstResult=4").get_json()
    failed = client.get(f"/batches/{batch_id}/items?status=failed&firstResult=9").get_json()

    assert (errors["total"], errors["errors"]) == (1, [])
    assert (items["total"], items["items"]) == (4, [])
    assert (failed["total"], failed["items"]) == (1, [])


@pytest.mark.parametrize("query", [
    "maxResults=0", "maxResults=-1", "maxResults=1001", "firstResult=-1", "maxResults=ten",
    "firstResult=", "sortBy=key",
])
@pytest.mark.parametrize("endpoint", ["errors", "items"])
def test_a_bad_page_is_a_400_that_names_the_parameter(
    rt: Runtime, client: FlaskClient, query: str, endpoint: str
) -> None:
    batch_id = create(rt, "echo", [1])

    details = assert_error(client.get(f"/batches/{batch_id}/{endpoint}?{query}"), 400)

    assert query.split("=")[0] in details["fields"]


def test_an_unknown_status_is_a_400_that_lists_the_known_ones(
    rt: Runtime, client: FlaskClient
) -> None:
    batch_id = create(rt, "echo", [1])

    response = client.get(f"/batches/{batch_id}/items?status=Completed")

    details = assert_error(response, 400)
    assert "succeeded" in str(details["fields"]["status"])


def test_the_error_summary_ranks_messages_by_count_with_sample_keys(
    rt: Runtime, client: FlaskClient
) -> None:
    messages = ["timeout"] * 5 + ["bad vat number"] * 3 + ["no such customer"] * 3 + ["gone"]
    items = [{"key": f"k{n}", "payload": {"fail": message}} for n, message in
             enumerate(messages)] + [{"key": "ok", "payload": {}}]
    batch_id = create(rt, "echo", items, failure_threshold=None)
    run_to_end(rt, batch_id)

    summary = client.get(f"/batches/{batch_id}/errors/summary?limit=3").get_json()

    assert (summary["failedItems"], summary["distinctMessages"]) == (12, 4)
    assert summary["messages"] == [
        {"message": "timeout", "count": 5, "sampleKeys": ["k0", "k1", "k2"]},
        {"message": "bad vat number", "count": 3, "sampleKeys": ["k5", "k6", "k7"]},
        {"message": "no such customer", "count": 3, "sampleKeys": ["k8", "k9", "k10"]},
    ]
    default = client.get(f"/batches/{batch_id}/errors/summary").get_json()
    assert [m["message"] for m in default["messages"]][-1] == "gone"
    assert_error(client.get(f"/batches/{batch_id}/errors/summary?limit=0"), 400)


def test_the_error_summary_of_a_batch_without_errors_is_empty(
    rt: Runtime, client: FlaskClient
) -> None:
    batch_id = create(rt, "echo", [1, 2])
    run_to_end(rt, batch_id)

    summary = client.get(f"/batches/{batch_id}/errors/summary").get_json()

    assert summary == {"failedItems": 0, "distinctMessages": 0, "messages": []}


@pytest.mark.parametrize("path", ["items", "items?status=failed", "errors", "errors/summary"])
def test_items_and_errors_answer_404_outside_the_read_scope_and_401_without_a_token(
    app: Flask, rt: Runtime, path: str
) -> None:
    owner = authenticated_client(app, "owner", tenant_id="acme", is_system=False)
    stranger = authenticated_client(app, "stranger", tenant_id="acme", is_system=False)
    admin = authenticated_client(app, "admin", tenant_id="acme", is_system=False,
                                 functions=(Function.ADMIN_BATCHES,))
    other_admin = authenticated_client(app, "globex-admin", tenant_id="globex",
                                       is_system=False, functions=(Function.ADMIN_BATCHES,))
    batch_id = owner.post("/batches", json={"type": "echo", "items": [{"fail": "x"}]}
                          ).get_json()["id"]
    run_to_end(rt, batch_id)

    assert owner.get(f"/batches/{batch_id}/{path}").status_code == 200
    assert admin.get(f"/batches/{batch_id}/{path}").status_code == 200
    assert_error(stranger.get(f"/batches/{batch_id}/{path}"), 404)
    assert_error(other_admin.get(f"/batches/{batch_id}/{path}"), 404)
    assert_error(owner.get(f"/batches/no-such-batch/{path}"), 404)
    assert_error(app.test_client().get(f"/batches/{batch_id}/{path}"), 401)


def test_open_segments_are_the_holes_between_done_runs_and_the_open_tail() -> None:
    done = [Segment(0, 0, 4), Segment(0, 6, 8), Segment(2, 0, 3)]

    holes = open_segments([[0, 10], [1, 5], [2, 3]], done)

    assert holes == [Segment(0, 4, 6), Segment(0, 8, None), Segment(1, 0, None)]


def test_the_new_endpoints_are_in_the_openapi_document(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]

    for path in ("/batches/{batch_id}/items", "/batches/{batch_id}/errors",
                 "/batches/{batch_id}/errors/summary"):
        assert set(paths[path]["get"]["responses"]) >= {"200", "400", "401", "404"}
