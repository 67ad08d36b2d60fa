"""docs/design.md's permission table on every /batches endpoint, for every role and every batch.

The result file's download shares the read check (``queries.check_access``) and is
covered in test_results.py.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from batchq.domain.permissions import Caller, Function, Ownership, can_change, can_read

from .support import authenticated_client

ADMIN = Function.ADMIN_BATCHES
VIEW_ALL = Function.ADMIN_VIEW_ALL_ORGANISATIONS
BACKEND = Function.ADMIN_BACKEND_SERVICES
EDIT_ALL = Function.ADMIN_EDIT_ALL_ORGANISATIONS

ROLES: dict[str, dict[str, Any]] = {
    "plain": {"functions": ()},
    "admin": {"functions": (ADMIN,)},
    "admin+view-all": {"functions": (ADMIN, VIEW_ALL)},
    "backend": {"functions": (BACKEND,)},
    "backend+admin": {"functions": (BACKEND, ADMIN)},
    "backend+admin+edit-all": {"functions": (BACKEND, ADMIN, EDIT_ALL)},
    "system": {"is_system": True},
}
BATCHES = ("own", "same-tenant", "other-tenant", "system-wide")

# (read, change) per role and batch: True allowed; reading refused is 404, changing 403.
R, C, N = "read+change", "read", "none"
TABLE: dict[str, dict[str, str]] = {
    "plain": {"own": C, "same-tenant": N, "other-tenant": N, "system-wide": N},
    "admin": {"own": C, "same-tenant": C, "other-tenant": N, "system-wide": C},
    "admin+view-all": {"own": C, "same-tenant": C, "other-tenant": C, "system-wide": C},
    "backend": {"own": R, "same-tenant": N, "other-tenant": N, "system-wide": N},
    "backend+admin": {"own": R, "same-tenant": R, "other-tenant": N, "system-wide": C},
    "backend+admin+edit-all": {"own": R, "same-tenant": R, "other-tenant": R,
                               "system-wide": R},
    "system": {"own": R, "same-tenant": R, "other-tenant": R, "system-wide": R},
}
CASES = [(role, batch) for role in ROLES for batch in BATCHES]


@dataclass
class World:
    """A caller of one role in tenant acme, and one batch of each kind."""

    caller: FlaskClient
    batch_ids: dict[str, str]


def post(client: FlaskClient, **body: Any) -> str:
    response = client.post("/batches", json={"type": "echo", "items": [1, 2], **body})
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def make_world(app: Flask, role: str) -> World:
    caller = authenticated_client(app, "caller", tenant_id="acme", **_role(role))
    colleague = authenticated_client(app, "colleague", tenant_id="acme", is_system=False)
    stranger = authenticated_client(app, "stranger", tenant_id="globex", is_system=False)
    system = authenticated_client(app, "system", is_system=True)
    return World(caller, {"own": post(caller), "same-tenant": post(colleague),
                          "other-tenant": post(stranger), "system-wide": post(system)})


def _role(role: str) -> dict[str, Any]:
    options = dict(ROLES[role])
    options.setdefault("is_system", False)
    return options


#: Every read of one batch: the batch itself, its items, its errors and their summary.
READS = ("", "/items", "/errors", "/errors/summary")


@pytest.mark.parametrize(("role", "batch"), CASES)
def test_every_read_answers_200_within_the_read_reach_and_404_outside(
    app: Flask, role: str, batch: str
) -> None:
    world = make_world(app, role)
    for read in READS:
        response = world.caller.get(f"/batches/{world.batch_ids[batch]}{read}")
        expected = 404 if TABLE[role][batch] == N else 200
        assert response.status_code == expected, (read, response.get_json())


@pytest.mark.parametrize(("role", "batch"), CASES)
def test_patch_answers_200_403_or_404_as_the_table_says(
    app: Flask, role: str, batch: str
) -> None:
    world = make_world(app, role)
    response = world.caller.patch(f"/batches/{world.batch_ids[batch]}",
                                  json={"suspended": True, "description": "changed"})
    expected = {R: 200, C: 403, N: 404}[TABLE[role][batch]]
    assert response.status_code == expected, response.get_json()
    suspended = _as_system(app).get(f"/batches/{world.batch_ids[batch]}").get_json()["suspended"]
    assert suspended is (expected == 200)


@pytest.mark.parametrize(("role", "batch"), CASES)
def test_delete_answers_202_403_or_404_as_the_table_says(
    app: Flask, role: str, batch: str
) -> None:
    world = make_world(app, role)
    response = world.caller.delete(f"/batches/{world.batch_ids[batch]}")
    expected = {R: 202, C: 403, N: 404}[TABLE[role][batch]]
    assert response.status_code == expected, response.get_json()
    status = _as_system(app).get(f"/batches/{world.batch_ids[batch]}").get_json()["status"]
    assert (status == "Cancelling") is (expected == 202)


@pytest.mark.parametrize("role", ROLES)
def test_list_and_count_hold_exactly_the_readable_batches(app: Flask, role: str) -> None:
    world = make_world(app, role)
    readable = {world.batch_ids[b] for b in BATCHES if TABLE[role][b] != N}
    listed = world.caller.get("/batches").get_json()
    assert {batch["id"] for batch in listed} == readable
    assert world.caller.get("/batches/count").get_json() == {"count": len(readable)}
    for name, query in (("tenant", "tenantIdIn=globex"), ("no tenant", "withoutTenantId=true"),
                        ("creator", "createdBy=stranger")):
        listed = world.caller.get(f"/batches?{query}").get_json()
        assert {batch["id"] for batch in listed} <= readable, name


def test_a_404_for_an_unreadable_batch_equals_that_of_a_missing_one(app: Flask) -> None:
    world = make_world(app, "plain")
    hidden = world.caller.get(f"/batches/{world.batch_ids['other-tenant']}").get_json()
    missing = world.caller.get("/batches/no-such-batch").get_json()
    assert hidden["error"].replace(world.batch_ids["other-tenant"], "X") == \
        missing["error"].replace("no-such-batch", "X")


def test_a_new_batch_records_its_creator_and_the_callers_tenant(app: Flask) -> None:
    client = authenticated_client(app, "alice", tenant_id="acme", is_system=False)
    body = client.get(f"/batches/{post(client)}").get_json()
    assert (body["createUserId"], body["tenantId"]) == ("alice", "acme")


@pytest.mark.parametrize(("role", "tenant", "status"), [
    ("plain", "acme", 201),
    ("plain", "globex", 403),
    ("plain", None, 403),
    ("backend+admin", "globex", 403),
    ("admin+view-all", "globex", 403),
    ("backend+admin+edit-all", "globex", 201),
    ("backend+admin+edit-all", None, 201),
    ("system", "globex", 201),
])
def test_creating_for_another_tenant_needs_the_edit_all_right(
    app: Flask, role: str, tenant: str | None, status: int
) -> None:
    client = authenticated_client(app, "caller", tenant_id="acme", **_role(role))
    response = client.post("/batches", json={"type": "echo", "items": [1], "tenantId": tenant})
    assert response.status_code == status, response.get_json()
    if status == 201:
        assert response.get_json()["tenantId"] == tenant
    else:
        assert response.get_json()["details"] == {"field": "tenantId"}


def test_a_user_without_a_tenant_owns_the_batches_without_one() -> None:
    admin = Caller("root-admin", None, frozenset({ADMIN}))
    assert can_read(admin, Ownership("someone", None))
    assert not can_read(admin, Ownership("someone", "acme"))
    assert not can_change(admin, Ownership("someone", None))


def _as_system(app: Flask) -> FlaskClient:
    return authenticated_client(app, f"observer-{uuid.uuid4().hex}", is_system=True)


def test_a_system_wide_batch_is_changed_only_with_the_edit_all_rights_even_by_its_starter() -> None:
    starter = Caller("ops", None, frozenset({ADMIN, BACKEND}), user_id="u-ops")
    run = Ownership("ops", None, system_wide=True, owner_id="u-ops")
    plain = Ownership("ops", None, system_wide=False, owner_id="u-ops")
    assert can_read(starter, run) and not can_change(starter, run)
    assert can_change(starter, plain)  # the same user, tenant and rights on a batch of its own
    assert can_change(Caller("root", None, frozenset({ADMIN, BACKEND, EDIT_ALL})), run)


def test_ownership_is_by_user_id_not_by_name() -> None:
    batch = Ownership("ann", "acme", owner_id="u-first-ann")
    assert can_read(Caller("ann", "acme", user_id="u-first-ann"), batch)
    assert not can_read(Caller("ann", "acme", user_id="u-second-ann"), batch)
    assert not can_read(Caller("ann", "acme"), Ownership("ann", "acme"))  # batchq's own: none
