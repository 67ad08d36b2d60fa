"""Authorization as a matrix: every endpoint x role x tenant of tests/authorization_matrix.py,
and docs/authorization.md shows exactly that table."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from api import create_app
from batchq.batch_types.context import SourceChunk
from batchq.domain.permissions import Function
from batchq.runtime import Runtime
from batchq.service.processes import start_process
from batchq.service.users import NewUser, caller_from_row, create_user
from tests.authorization_matrix import MATRIX, ROLES, TARGETS, render

from .support import MakeRuntime, NewType, create, deliver_seed, start_slow_page

ROOT = Path(__file__).resolve().parents[2]
METRICS_TOKEN = "scrape-secret"
WORKER = "host-1:4242"
#: What a refusal may answer: no credential, not allowed, or not within reach.
DENIED = frozenset({401, 403, 404})


def two_items(params: Mapping[str, Any], cursor: Any, limit: int) -> SourceChunk:
    return SourceChunk([{"key": f"a{n}", "payload": {"n": n}} for n in range(2)])


@dataclass
class World:
    """One tenant's view of batchq: the role's client, the batches, the types."""

    rt: Runtime
    client: FlaskClient
    batches: dict[str, str]
    types: dict[str, str]


def build_world(make_runtime: MakeRuntime, new_type: NewType, role: str) -> World:
    rt = make_runtime(metrics_token=METRICS_TOKEN)
    types = {"plain": new_type()[0],
             "restricted": new_type(post_requires=(Function.ADMIN_BACKEND_SERVICES,))[0],
             "scheduled": new_type(source=two_items)[0],
             "nightly": new_type(source=two_items)[0],
             "tenant-run": new_type(source=two_items,
                                    start_requires=(Function.ADMIN_BATCHES,))[0]}
    users = rt.storage.users
    client = create_app(runtime=rt).test_client()
    caller_name = "colleague" if role in ("public", "scraper") else "caller"
    if role == "scraper":
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {METRICS_TOKEN}"
    elif role != "public":
        functions = tuple(Function(f) for f in ROLES[role] if f != "system")
        token = create_user(users, NewUser("caller", "acme", functions, "system" in ROLES[role]))
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    for name, tenant in (("colleague", "acme"), ("stranger", "globex")):
        create_user(users, NewUser(name, tenant))

    def by(name: str) -> Any:
        return caller_from_row(users.by_name(name))  # type: ignore[arg-type]

    batches = {
        "own": create(rt, types["plain"], [{"n": 1}], tenant_id="acme", creator=by(caller_name)),
        "same tenant": create(rt, types["plain"], [{"n": 1}], tenant_id="acme",
                              creator=by("colleague")),
        "other tenant": create(rt, types["plain"], [{"n": 1}], tenant_id="globex",
                               creator=by("stranger")),
        "system-wide": start_process(rt, types["scheduled"], by=None)["id"],
    }
    deliver_seed(rt)
    start_slow_page(rt, batches["own"], 0, worker=WORKER)
    return World(rt, client, batches, types)


def answered(response: Any, allowed_status: int, refused: frozenset[int] = DENIED) -> bool:
    """True for the allowed answer, False for a refusal; anything else is a bug."""
    if response.status_code == allowed_status:
        return True
    assert response.status_code in refused, (response.status_code, response.get_data(True))
    return False


def listed(world: World, batch_id: str) -> bool:
    response = world.client.get("/batches?maxResults=100")
    return answered(response, 200) and batch_id in {b["id"] for b in response.get_json()}


def counted(world: World, batch_id: str) -> bool:
    response = world.client.get(f"/batches/count?batchId={batch_id}")
    return answered(response, 200) and response.get_json() == {"count": 1}


def workers_shown(world: World) -> bool:
    response = world.client.get(f"/batches/{world.batches['own']}")
    if not answered(response, 200):
        return False
    shown = response.get_json()["workQueueStatus"]["workers"]
    assert shown in ([WORKER], [])
    return shown == [WORKER]


def post(world: World, type_key: str, refused: frozenset[int] = DENIED) -> bool:
    body = {"type": world.types[type_key], "items": [{"n": 1}], "tenantId": "acme"}
    return answered(world.client.post("/batches", json=body), 201, refused)


def healthz(world: World) -> bool:
    response = world.client.get("/healthz")
    return answered(response, 200) and response.get_json() == {"status": "ok", "database": "ok"}


CHECKS: dict[str, Callable[[World, str], bool]] = {
    "GET /batches/{id}": lambda w, b: answered(w.client.get(f"/batches/{b}"), 200),
    "GET /batches (listed)": listed,
    "GET /batches/count (counted)": counted,
    "GET /batches/{id}/items": lambda w, b: answered(w.client.get(f"/batches/{b}/items"), 200),
    "GET /batches/{id}/errors": lambda w, b: answered(w.client.get(f"/batches/{b}/errors"), 200),
    "GET /batches/{id}/errors/summary":
        lambda w, b: answered(w.client.get(f"/batches/{b}/errors/summary"), 200),
    "GET /batches/{id}/deliveries":
        lambda w, b: answered(w.client.get(f"/batches/{b}/deliveries"), 200),
    "PATCH /batches/{id}": lambda w, b: answered(
        w.client.patch(f"/batches/{b}", json={"description": "checked"}), 200),
    "DELETE /batches/{id}": lambda w, b: answered(w.client.delete(f"/batches/{b}"), 202),
}
OTHER_CHECKS: dict[tuple[str, str], Callable[[World], bool]] = {
    ("POST /batches", "a type anyone may post to"): lambda w: post(w, "plain"),
    ("POST /batches", "a type with post_requires ADMIN_BACKEND_SERVICES"):
        lambda w: post(w, "restricted"),
    # A source type refuses posted items from anyone: 400, whoever asks.
    ("POST /batches", "a type with a source"):
        lambda w: post(w, "nightly", DENIED | {400}),
    ("GET /batch-types", "the registered types"):
        lambda w: answered(w.client.get("/batch-types"), 200),
    ("POST /batch-types/{code}/start", "a type with a source"):
        lambda w: answered(w.client.post(f"/batch-types/{w.types['nightly']}/start"), 201),
    ("POST /batch-types/{code}/start", "a type with start_requires ADMIN_BATCHES"):
        lambda w: answered(w.client.post(f"/batch-types/{w.types['tenant-run']}/start"), 201),
    ("workQueueStatus.workers", "worker ids (host:pid) of an own batch"): workers_shown,
    ("GET /healthz", "up or down, never the error"): healthz,
    ("GET /metrics", "with BATCHQ_METRICS_TOKEN set"):
        lambda w: answered(w.client.get("/metrics"), 200),
}


@pytest.mark.parametrize("role", list(ROLES))
def test_each_role_may_do_exactly_what_the_matrix_says(
    make_runtime: MakeRuntime, new_type: NewType, role: str
) -> None:
    world = build_world(make_runtime, new_type, role)
    allowed: set[tuple[str, str]] = set()
    for (endpoint, target) in MATRIX:
        if target in TARGETS:
            passed = CHECKS[endpoint](world, world.batches[target])
        else:
            passed = OTHER_CHECKS[(endpoint, target)](world)
        if passed:
            allowed.add((endpoint, target))
    expected = {row for row, roles in MATRIX.items() if role in roles}
    assert sorted(allowed) == sorted(expected)


def test_every_row_of_the_matrix_is_checked() -> None:
    rows = {(e, t) for e in CHECKS for t in TARGETS} | set(OTHER_CHECKS)
    assert rows == set(MATRIX)


def test_docs_authorization_shows_the_tested_matrix() -> None:
    page = (ROOT / "docs" / "authorization.md").read_text()
    assert render() in page, "regenerate the table: python -m tests.authorization_matrix"
