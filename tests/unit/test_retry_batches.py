"""POST /batches/{id}/retry on SQLite: the failed or unprocessed part as a linked batch."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from batchq.domain.lists import Window
from batchq.domain.permissions import Function
from batchq.runtime import Runtime
from batchq.storage.tables import items

from .support import (
    authenticated_client,
    create,
    deliver,
    deliver_seed,
    dispatcher_of,
    run_to_end,
)


def mixed_items(count: int, failing: set[int], stage_of: Any = None) -> list[dict[str, Any]]:
    made = []
    for n in range(count):
        payload: dict[str, Any] = {"fail": f"no {n}"} if n in failing else {"n": n}
        item = {"key": f"c{n}", "payload": payload}
        if stage_of is not None:
            item["stage"] = stage_of(n)
        made.append(item)
    return made


def items_of(rt: Runtime, batch_id: str) -> list[tuple[int, int, int, str, Any]]:
    """(seq, stage, pos, key, payload) of every item, in input order."""
    query = (sa.select(items.c.seq, items.c.stage, items.c.pos, items.c.key, items.c.payload)
             .where(items.c.batch_id == batch_id).order_by(items.c.seq))
    with rt.storage.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]  # type: ignore[misc]


def retry(client: FlaskClient, batch_id: str, which: str = "failed", **body: Any) -> Any:
    return client.post(f"/batches/{batch_id}/retry", json={"items": which, **body})


def test_retrying_the_failed_items_makes_a_linked_batch_of_exactly_them(
    rt: Runtime, client: FlaskClient
) -> None:
    original = create(rt, "echo", mixed_items(12, {1, 5, 6, 11}), page_size=5,
                      params={"source": "shop"}, failure_threshold=None, tenant_id="acme")
    run_to_end(rt, original)

    answer = retry(client, original)

    assert answer.status_code == 201, answer.get_json()
    new = answer.get_json()
    assert (new["type"], new["params"], new["tenantId"], new["retryOf"], new["retryItems"]) == (
        "echo", {"source": "shop"}, "acme", original, "failed")
    assert (new["status"], new["totalItems"], new["pageSize"]) == ("Waiting", 4, 5)
    assert items_of(rt, new["id"]) == [(0, 0, 0, "c1", {"fail": "no 1"}),
                                       (1, 0, 1, "c5", {"fail": "no 5"}),
                                       (2, 0, 2, "c6", {"fail": "no 6"}),
                                       (3, 0, 3, "c11", {"fail": "no 11"})]
    assert client.get(f"/batches/{original}").get_json()["retries"] == [new["id"]]
    assert client.get(f"/batches/{new['id']}").get_json()["retries"] == []
    numbers = [rt.storage.batches.get(b)["number"] for b in (original, new["id"])]  # type: ignore[index]
    assert None not in numbers and numbers[0] < numbers[1]  # the CRM BatchTask API's Id
    listed = {b["id"]: b["retryOf"] for b in client.get("/batches").get_json()}
    assert listed == {original: None, new["id"]: original}
    done = run_to_end(rt, new["id"])
    assert (done["processed_items"], done["failed_items"]) == (4, 4)


def test_unprocessed_items_are_those_never_run_even_without_a_page(
    rt: Runtime, client: FlaskClient, new_type: Any
) -> None:
    code, _ = new_type()
    # Three pages of four, one page per seed step: a cancel after the first leaves page 2
    # uncreated.
    original = create(rt, code, mixed_items(12, {2}), page_size=4, jobs_per_seed=1,
                      failure_threshold=None)
    deliver_seed(rt)  # page 0
    kind, args = dispatcher_of(rt).outbox.popleft()
    deliver(rt, kind, args)  # runs page 0
    deliver_seed(rt)  # page 1, queued; page 2 not created yet
    client.delete(f"/batches/{original}")
    cancelled = run_to_end(rt, original)
    assert (cancelled["status"], cancelled["processed_items"], cancelled["jobs_created"]) == (
        "Cancelled", 4, 2)

    unprocessed = retry(client, original, "unprocessed").get_json()
    both = retry(client, original, "failed+unprocessed").get_json()

    assert [key for _s, _st, _p, key, _pl in items_of(rt, unprocessed["id"])] == [
        f"c{n}" for n in range(4, 12)]
    assert [key for _s, _st, _p, key, _pl in items_of(rt, both["id"])] == [
        "c2", *(f"c{n}" for n in range(4, 12))]
    assert client.get(f"/batches/{original}").get_json()["retries"] == [
        unprocessed["id"], both["id"]]


def test_a_staged_batch_keeps_each_items_stage_and_numbers_them_anew(
    rt: Runtime, client: FlaskClient
) -> None:
    original = create(rt, "echo", mixed_items(9, {0, 3, 4, 8}, stage_of=lambda n: n % 3),
                      page_size=2, failure_threshold=None)
    run_to_end(rt, original)

    new = retry(client, original).get_json()

    assert items_of(rt, new["id"]) == [(0, 0, 0, "c0", {"fail": "no 0"}),
                                       (1, 0, 1, "c3", {"fail": "no 3"}),
                                       (2, 1, 0, "c4", {"fail": "no 4"}),
                                       (3, 2, 0, "c8", {"fail": "no 8"})]
    stored = rt.storage.batches.get(new["id"])
    assert stored is not None
    assert stored["stage_sizes"] == [[0, 2], [1, 1], [2, 1]] and stored["total_jobs"] == 3


def test_the_items_are_copied_by_one_insert_select_and_never_read_here(
    rt: Runtime, client: FlaskClient
) -> None:
    original = create(rt, "echo", mixed_items(50, set(range(0, 50, 3))), page_size=10,
                      failure_threshold=None)
    run_to_end(rt, original)

    with statements(rt) as seen:
        new = retry(client, original, "failed+unprocessed").get_json()

    inserts = [s for s in seen if s.startswith("INSERT INTO items")]
    assert len(inserts) == 1 and "SELECT" in inserts[0] and "row_number()" in inserts[0]
    reads_payloads = [s for s in seen if s.startswith("SELECT")
                      and "payload" in s.split(" FROM ")[0]]
    assert reads_payloads == []  # no item comes back to this process
    assert rt.storage.batches.get(new["id"])["total_items"] == 17  # type: ignore[index]


def test_a_batch_still_running_is_refused_with_409(rt: Runtime, client: FlaskClient) -> None:
    original = create(rt, "echo", mixed_items(4, {1}))

    answer = retry(client, original)

    assert answer.status_code == 409
    assert "still Waiting" in answer.get_json()["error"]
    assert answer.get_json()["details"]["reason"] == "active"


def test_nothing_to_retry_is_a_409_that_says_so(rt: Runtime, client: FlaskClient) -> None:
    original = create(rt, "echo", mixed_items(4, set()))
    run_to_end(rt, original)

    answer = retry(client, original)

    assert answer.status_code == 409
    assert answer.get_json()["error"].startswith(f"Batch {original} has no failed items")


@pytest.mark.parametrize("body", [{}, {"items": "all"}, {"items": 3}, {"items": "failed", "x": 1}])
def test_a_malformed_request_is_a_400(rt: Runtime, client: FlaskClient, body: Any) -> None:
    original = create(rt, "echo", mixed_items(2, {0}), failure_threshold=None)
    run_to_end(rt, original)
    assert client.post(f"/batches/{original}/retry", json=body).status_code == 400


def test_who_may_retry_what(rt: Runtime, app: Flask, client: FlaskClient) -> None:
    original = create(rt, "echo", mixed_items(2, {0}), failure_threshold=None, tenant_id="acme",
                      create_user_id="someone")
    run_to_end(rt, original)
    outsider = authenticated_client(app, "outsider", is_system=False, tenant_id="globex",
                                    functions=(Function.ADMIN_BATCHES,))
    viewer = authenticated_client(app, "viewer", is_system=False, tenant_id="globex",
                                  functions=(Function.ADMIN_BATCHES,
                                             Function.ADMIN_VIEW_ALL_ORGANISATIONS))
    colleague = authenticated_client(app, "colleague", is_system=False, tenant_id="acme",
                                     functions=(Function.ADMIN_BATCHES,))

    assert retry(outsider, original).status_code == 404  # cannot read it
    forbidden = retry(viewer, original)  # reads it, may not create batches for acme
    assert forbidden.status_code == 403 and forbidden.get_json()["details"]["field"] == "tenantId"
    allowed = retry(colleague, original)
    assert allowed.status_code == 201
    assert allowed.get_json()["createUserId"] == "colleague"
    assert retry(client, "no-such-batch").status_code == 404


def test_a_retry_counts_against_the_quota(make_runtime: Any, new_type: Any) -> None:
    from api import create_app

    rt = make_runtime(max_active_batches_per_user=1)
    client = authenticated_client(create_app(runtime=rt), "quota")
    original = create(rt, "echo", mixed_items(2, {0}), failure_threshold=None,
                      create_user_id="quota")
    run_to_end(rt, original)
    assert retry(client, original).status_code == 201

    refused = retry(client, original)

    assert refused.status_code == 429 and "Retry-After" in refused.headers


def test_the_retry_batch_keeps_the_originals_run_options(rt: Runtime, client: FlaskClient) -> None:
    windows = [{"days": "Mon-Sun", "from": "00:00", "to": "00:00", "timezone": "UTC"}]
    original = create(rt, "echo", mixed_items(3, {1}), failure_threshold=0.5,
                      retry_policy={"maxAttempts": 2}, run_windows=windows,
                      max_items_per_second=50, max_concurrent_jobs=2, retention_days=3)
    run_to_end(rt, original)

    new = retry(client, original, description="again").get_json()

    assert new["description"] == "again"
    assert (new["failureThreshold"], new["retryPolicy"]["maxAttempts"], new["runWindows"],
            new["maxItemsPerSecond"], new["maxConcurrentJobs"], new["retentionDays"]) == (
        0.5, 2, windows, 50, 2, 3)
    assert rt.storage.items.list_items(rt.storage.batches.get(new["id"]), None,  # type: ignore
                                       Window())[0]["key"] == "c1"


@contextmanager
def statements(rt: Runtime) -> Iterator[list[str]]:
    """Every SQL statement ``rt`` runs meanwhile, as text."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    sa.event.listen(rt.storage.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(rt.storage.engine, "before_cursor_execute", record)
