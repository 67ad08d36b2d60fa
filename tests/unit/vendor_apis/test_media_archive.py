"""The media-archive batch API at /media-archive/batches/: its statuses (and the document's
spelling Cancellling), permission functions, the system-user rule and the 30-day cleanup."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from batchq.domain.permissions import Function
from batchq.domain.statuses import BatchStatus
from batchq.engine.cleanup import delete_expired
from batchq.runtime import Runtime
from batchq.storage.common import utcnow

from ..support import authenticated_client, create, failing_items, ok_items, run_to_end
from ..test_api import assert_error
from .helpers import finished_batch, no_auth, tenant_user

URL = "/media-archive/batches/"
#: The document's statuses, as batchq writes them (Cancelling with two l).
DOCUMENT_STATUSES = {"Waiting", "Processing", "Completed", "CompletedWithErrors",
                     "PostBatchFailed", "TooManyFailed", "Cancelling", "Cancelled"}
B, A, V, E = (Function.ADMIN_BACKEND_SERVICES, Function.ADMIN_BATCHES,
              Function.ADMIN_VIEW_ALL_ORGANISATIONS, Function.ADMIN_EDIT_ALL_ORGANISATIONS)


def test_post_get_patch_delete(client: FlaskClient, rt: Runtime) -> None:
    created = client.post(URL, json={"type": "echo", "items": ok_items(4), "pageSize": 2})
    assert created.status_code == 201, created.get_data(as_text=True)
    batch = created.get_json()
    assert batch["status"] == "Waiting" and batch["cleanupDate"] is None
    read = client.get(f"{URL}{batch['id']}")
    assert read.status_code == 200 and read.get_json()["id"] == batch["id"]
    assert client.get(f"{URL}{batch['id']}/").status_code == 200
    assert [b["id"] for b in client.get(URL).get_json()] == [batch["id"]]
    assert client.get("/media-archive/batches").status_code == 200
    patched = client.patch(f"{URL}{batch['id']}", json={"suspended": True,
                                                         "description": "later"})
    assert patched.status_code == 200, patched.get_data(as_text=True)
    assert (patched.get_json()["suspended"], patched.get_json()["description"]) == (True,
                                                                                    "later")
    cancelled = client.delete(f"{URL}{batch['id']}")
    assert cancelled.status_code == 202 and cancelled.get_json()["status"] == "Cancelling"
    assert run_to_end(rt, batch["id"])["status"] == BatchStatus.CANCELLED


def test_the_statuses_are_the_documents(client: FlaskClient, rt: Runtime) -> None:
    done = finished_batch(rt)
    with_errors = finished_batch(rt, items=[*failing_items(1), *ok_items(9)])
    aborted = finished_batch(rt, items=failing_items(5))
    seen = {client.get(f"{URL}{b}").get_json()["status"] for b in (done, with_errors, aborted)}
    assert seen == {"Completed", "CompletedWithErrors", "TooManyFailed"} <= DOCUMENT_STATUSES


@pytest.mark.parametrize("spelling", ["Cancelling", "Cancellling"])
def test_cancellling_is_accepted_where_a_status_is_an_input(client: FlaskClient, rt: Runtime,
                                                             spelling: str) -> None:
    batch_id = create(rt, "echo", ok_items(2))
    patched = client.patch(f"{URL}{batch_id}", json={"status": spelling})
    assert patched.status_code == 200, patched.get_data(as_text=True)
    assert patched.get_json()["status"] == "Cancelling"
    listed = client.get(f"{URL}?status={spelling}").get_json()
    assert [b["id"] for b in listed] == [batch_id]


@pytest.mark.parametrize("body", [{"status": "Cancelled"}, {"status": "cancelling"}, {}])
def test_patch_refuses_other_statuses_and_empty_changes(client: FlaskClient, rt: Runtime,
                                                        body: dict[str, Any]) -> None:
    batch_id = create(rt, "echo", ok_items(2))
    assert_error(client.patch(f"{URL}{batch_id}", json=body), 400)
    assert rt.storage.batches.get(batch_id)["status"] == "Waiting"  # type: ignore[index]


def test_a_wrong_case_status_filter_is_400(client: FlaskClient) -> None:
    assert_error(client.get(f"{URL}?status=completed"), 400)


def test_read_permissions_follow_the_document(client: FlaskClient, rt: Runtime) -> None:
    app = client.application
    own = tenant_user(app, "ann", "acme")
    mine = own.post(URL, json={"type": "echo", "items": ok_items(1)}).get_json()["id"]
    org = create(rt, "echo", ok_items(1), tenant_id="acme", create_user_id="bob")
    other = create(rt, "echo", ok_items(1), tenant_id="globex", create_user_id="gus")

    def readable(user: FlaskClient) -> set[str]:
        return {b["id"] for b in user.get(URL).get_json()}

    assert readable(own) == {mine}
    assert_error(own.get(f"{URL}{org}"), 404)
    assert readable(tenant_user(app, "admin", "acme", A)) == {mine, org}
    assert readable(tenant_user(app, "all", "acme", A, V)) == {mine, org, other}


def test_change_permissions_follow_the_document(client: FlaskClient, rt: Runtime) -> None:
    app = client.application
    backend = tenant_user(app, "bob", "acme", B)
    org = create(rt, "echo", ok_items(1), tenant_id="acme", create_user_id="bob")
    other = create(rt, "echo", ok_items(1), tenant_id="globex", create_user_id="gus")
    suspend = {"suspended": True}
    assert backend.patch(f"{URL}{org}", json=suspend).status_code == 200  # own batch
    reader = tenant_user(app, "reader", "acme", A)
    assert_error(reader.patch(f"{URL}{org}", json=suspend), 403)
    assert_error(reader.delete(f"{URL}{org}"), 403)
    org_admin = tenant_user(app, "orgadmin", "acme", B, A)
    assert org_admin.patch(f"{URL}{org}", json=suspend).status_code == 200
    assert_error(org_admin.patch(f"{URL}{other}", json=suspend), 404)
    everyone = tenant_user(app, "root", "acme", B, A, E)
    assert everyone.delete(f"{URL}{other}").status_code == 202


def test_a_system_users_batch_runs_across_all_indices(client: FlaskClient, rt: Runtime) -> None:
    app = client.application
    # batchq's system flag makes the rule; the document's user names are examples of it.
    system = authenticated_client(app, "zeticon@installation", tenant_id="acme",
                                  is_system=True)
    batch = system.post(URL, json={"type": "echo", "items": ok_items(1)}).get_json()
    assert batch["tenantId"] is None
    for tenant in ("acme", "globex"):
        admin = tenant_user(app, f"admin-{tenant}", tenant, A)
        assert admin.get(f"{URL}{batch['id']}").status_code == 200
    named = system.post(URL, json={"type": "echo", "items": ok_items(1), "tenantId": "acme"})
    assert named.get_json()["tenantId"] == "acme"
    plain = tenant_user(app, "plain", "acme")
    assert plain.post(URL, json={"type": "echo", "items": ok_items(1)}).get_json()[
        "tenantId"] == "acme"


def test_finished_batches_are_cleaned_up_30_days_after_they_finish(client: FlaskClient,
                                                                   rt: Runtime) -> None:
    batch_id = finished_batch(rt)
    shown = client.get(f"{URL}{batch_id}").get_json()
    row = rt.storage.batches.get(batch_id)
    assert row is not None and row["expires_at"] == row["finished_at"] + timedelta(days=30)
    assert shown["cleanupDate"].startswith(row["expires_at"].isoformat()[:19])
    assert rt.storage.batches.delete_expired(utcnow() + timedelta(days=29)) == []
    assert delete_expired(rt) == 0
    assert rt.storage.batches.delete_expired(utcnow() + timedelta(days=31)) == [batch_id]
    assert_error(client.get(f"{URL}{batch_id}"), 404)


def test_unhappy_paths(client: FlaskClient) -> None:
    assert_error(no_auth(client).get(URL), 401)
    assert_error(client.get(f"{URL}nope"), 404)
    assert_error(client.patch(f"{URL}nope", json={"suspended": True}), 404)
    assert_error(client.delete(f"{URL}nope"), 404)
    assert_error(client.post(URL, json={"type": "Echo", "items": ok_items(1)}), 400)
    assert_error(client.post(URL, json={"type": "echo", "items": []}), 400)
    assert_error(client.get(f"{URL}?sortOrder=asc"), 400)
