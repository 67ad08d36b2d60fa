"""Admission of new batches: the active-batch quota, Idempotency-Key and multi-tenant posts."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from batchq.domain.permissions import Function
from batchq.engine.cleanup import delete_expired
from batchq.errors import ConfigurationError, IdempotencyKeyInProgress, QuotaExceeded
from batchq.runtime import Runtime
from batchq.service import idempotency, multi_tenant
from batchq.service.users import NewUser, create_user
from batchq.settings import Settings
from batchq.storage.common import utcnow
from batchq.storage.tables import batches, idempotency_key_batches, idempotency_keys

from .concurrent_posts import post_at_once
from .support import MakeRuntime, authenticated_client, ok_items, run_to_end
from .test_api import assert_error

ECHO = {"type": "echo", "items": ok_items(2)}


@pytest.fixture
def app(make_runtime: MakeRuntime) -> Flask:
    return create_app(runtime=make_runtime(max_active_batches_per_user=2))


@pytest.fixture
def rt(app: Flask) -> Runtime:
    return app.extensions["batchq"]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A plain user of tenant acme."""
    return authenticated_client(app, "shop-sync", tenant_id="acme", is_system=False,
                                functions=(Function.ADMIN_BACKEND_SERVICES,))


def batch_count(rt: Runtime) -> int:
    with rt.storage.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(batches)).scalar_one())


# -- the quota of active batches ----------------------------------------------------------


def test_a_user_at_the_quota_gets_429_with_retry_after_and_nothing_is_created(
    client: FlaskClient, rt: Runtime
) -> None:
    assert [client.post("/batches", json=ECHO).status_code for _ in range(2)] == [201, 201]
    response = client.post("/batches", json=ECHO)
    details = assert_error(response, 429)
    assert int(response.headers["Retry-After"]) > 0
    assert details["maxActiveBatches"] == 2
    assert "BATCHQ_MAX_ACTIVE_BATCHES_PER_USER" in response.get_json()["error"]
    assert batch_count(rt) == 2


def test_a_finished_or_cancelled_batch_frees_its_place(client: FlaskClient, rt: Runtime) -> None:
    first = client.post("/batches", json=ECHO).get_json()["id"]
    second = client.post("/batches", json=ECHO).get_json()["id"]
    assert client.post("/batches", json=ECHO).status_code == 429
    assert client.delete(f"/batches/{first}").status_code == 202
    assert client.post("/batches", json=ECHO).status_code == 429  # Cancelling is still active
    run_to_end(rt, second)
    assert client.post("/batches", json=ECHO).status_code == 201


def test_the_quota_is_per_user(app: Flask, client: FlaskClient) -> None:
    other = authenticated_client(app, "other", tenant_id="acme", is_system=False)
    for _ in range(2):
        assert client.post("/batches", json=ECHO).status_code == 201
    assert other.post("/batches", json=ECHO).status_code == 201


def test_zero_means_no_quota(make_runtime: MakeRuntime) -> None:
    app = create_app(runtime=make_runtime(max_active_batches_per_user=0))
    client = authenticated_client(app, "busy", is_system=False)
    assert {client.post("/batches", json=ECHO).status_code for _ in range(5)} == {201}


def test_fifty_concurrent_creates_against_a_limit_of_one_create_exactly_one(
    make_runtime: MakeRuntime,
) -> None:
    rt = make_runtime(max_active_batches_per_user=1)
    app = create_app(runtime=rt)
    token = create_user(rt.storage.users, NewUser("racer"))
    responses = post_at_once(app, token, "/batches", [ECHO] * 50)
    assert Counter(r.status_code for r in responses) == {201: 1, 429: 49}
    assert batch_count(rt) == 1


# -- Idempotency-Key ---------------------------------------------------------------------


def user_id_of(rt: Runtime, name: str) -> str:
    user = rt.storage.users.by_name(name)
    assert user is not None
    return str(user["id"])


def post_with_key(client: FlaskClient, key: str, body: Any = None, path: str = "/batches",
                  ) -> Any:
    return client.post(path, json=body or ECHO, headers={"Idempotency-Key": key})


def test_a_repost_with_the_same_key_returns_the_first_answer_and_creates_nothing(
    client: FlaskClient, rt: Runtime
) -> None:
    first = post_with_key(client, "order-42")
    again = post_with_key(client, "order-42")
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert batch_count(rt) == 1


def test_the_same_key_with_another_body_or_path_is_a_422(client: FlaskClient) -> None:
    assert post_with_key(client, "k").status_code == 201
    details = assert_error(post_with_key(client, "k", {"type": "echo", "items": [1]}), 422)
    assert details == {"header": "Idempotency-Key"}
    assert_error(client.post("/batches?x=1", json=ECHO, headers={"Idempotency-Key": "k"}), 422)


def test_keys_are_per_user(app: Flask, client: FlaskClient, rt: Runtime) -> None:
    other = authenticated_client(app, "other", tenant_id="acme", is_system=False)
    mine = post_with_key(client, "shared").get_json()["id"]
    theirs = post_with_key(other, "shared").get_json()["id"]
    assert mine != theirs
    assert batch_count(rt) == 2


def test_a_kept_refusal_is_replayed_but_a_429_is_not_kept(
    client: FlaskClient, rt: Runtime
) -> None:
    empty = {"type": "echo", "items": []}
    assert_error(post_with_key(client, "empty", empty), 400)
    replayed = post_with_key(client, "empty", empty)
    assert_error(replayed, 400)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    for key in ("a", "b"):
        assert post_with_key(client, key).status_code == 201
    assert_error(post_with_key(client, "later"), 429)
    run_to_end(rt, post_with_key(client, "a").get_json()["id"])
    assert post_with_key(client, "later").status_code == 201  # the 429 was not kept


def test_a_body_too_large_is_not_kept_under_its_key(make_runtime: MakeRuntime) -> None:
    app = create_app(runtime=make_runtime(max_body_mb=1))
    client = authenticated_client(app, "big", is_system=False)
    huge = {"type": "echo", "items": ["x" * 1000] * 1100}
    assert_error(post_with_key(client, "big-one", huge), 413)
    assert post_with_key(client, "big-one").status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
def test_a_malformed_key_is_a_400(client: FlaskClient, rt: Runtime, key: str) -> None:
    details = assert_error(post_with_key(client, key), 400)
    assert details == {"header": "Idempotency-Key"}
    assert batch_count(rt) == 0


def test_a_key_of_255_characters_is_accepted(client: FlaskClient) -> None:
    assert post_with_key(client, "k" * 255).status_code == 201


def test_a_key_in_progress_answers_409_and_an_expired_key_is_new(
    client: FlaskClient, rt: Runtime
) -> None:
    engine = rt.storage.engine
    day = timedelta(hours=rt.settings.idempotency_key_retention_hours)
    assert idempotency.reserve(rt, user_id_of(rt, "shop-sync"), "busy") is None
    response = post_with_key(client, "busy")
    assert_error(response, 409)
    assert "in progress" in response.get_json()["error"]
    with engine.begin() as conn:
        conn.execute(sa.update(idempotency_keys).values(created_at=utcnow() - 2 * day))
    assert post_with_key(client, "busy").status_code == 201


def test_a_user_added_again_under_an_old_name_does_not_inherit_its_keys(
    app: Flask, client: FlaskClient, rt: Runtime
) -> None:
    first = post_with_key(client, "mine").get_json()["id"]
    assert rt.storage.users.remove("shop-sync")
    newcomer = authenticated_client(app, "shop-sync", tenant_id="acme", is_system=False)
    again = post_with_key(newcomer, "mine")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert again.get_json()["id"] != first


def test_a_view_that_raises_releases_its_key(
    client: FlaskClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr("api.batches.create_batch", broken)
    assert_error(post_with_key(client, "retry-me"), 500)
    monkeypatch.undo()
    assert post_with_key(client, "retry-me").status_code == 201


def keeping_fails(*_: Any) -> None:
    raise RuntimeError("the database went away after the commit")


def batch_ids(rt: Runtime) -> list[str]:
    with rt.storage.engine.connect() as conn:
        return list(conn.execute(sa.select(batches.c.id)).scalars())


def test_a_failure_after_the_commit_never_makes_a_second_batch(
    client: FlaskClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idempotency, "keep", keeping_fails)
    assert_error(post_with_key(client, "once"), 500)
    [first_id] = batch_ids(rt)
    again = post_with_key(client, "once")  # answered from the batch: nothing to keep
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first_id
    assert again.get_json() == client.get(f"/batches/{first_id}").get_json()
    assert batch_ids(rt) == [first_id]
    assert_error(post_with_key(client, "once", {"type": "echo", "items": [2]}), 422)


def test_a_retry_batch_marks_its_key_in_its_creating_transaction(
    client: FlaskClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    posted = {"type": "echo", "items": [{"n": 1}, {"fail": "no"}], "failureThreshold": None}
    original = client.post("/batches", json=posted).get_json()["id"]
    run_to_end(rt, original)
    monkeypatch.setattr(idempotency, "keep", keeping_fails)
    path, body = f"/batches/{original}/retry", {"items": "failed"}
    assert_error(client.post(path, json=body, headers={"Idempotency-Key": "r"}), 500)
    [retry_id] = [batch_id for batch_id in batch_ids(rt) if batch_id != original]
    monkeypatch.undo()
    again = client.post(path, json=body, headers={"Idempotency-Key": "r"})
    assert again.status_code == 201
    assert again.get_json()["id"] == retry_id
    assert again.get_json()["retryOf"] == original
    assert sorted(batch_ids(rt)) == sorted([original, retry_id])


def test_an_answer_over_the_cap_is_kept_cut_and_a_created_batch_shown_whole(
    client: FlaskClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idempotency, "MAX_KEPT_ANSWER_BYTES", 300)
    refused = {"type": "echo", "items": [{"key": "k" * 400, "payload": n} for n in range(3)]}
    first = post_with_key(client, "big-refusal", refused)
    replayed = post_with_key(client, "big-refusal", refused)
    assert (first.status_code, replayed.status_code) == (400, 400)
    assert replayed.get_json()["details"] == {"truncated": True}
    assert replayed.get_json()["error"] == first.get_json()["error"]
    created = post_with_key(client, "big-batch")
    again = post_with_key(client, "big-batch")
    assert again.status_code == 201 and again.get_json()["id"] == created.get_json()["id"]
    assert again.get_json() == client.get(f"/batches/{created.get_json()['id']}").get_json()
    with rt.storage.engine.connect() as conn:
        sizes = [len(json.dumps(answer)) for answer in
                 conn.execute(sa.select(idempotency_keys.c.response)).scalars()]
    assert max(sizes) <= 300


def test_cleanup_deletes_keys_past_their_retention(client: FlaskClient, rt: Runtime) -> None:
    post_with_key(client, "old")
    post_with_key(client, "new")
    with rt.storage.engine.begin() as conn:
        conn.execute(sa.update(idempotency_keys).where(idempotency_keys.c.key == "old")
                     .values(created_at=utcnow() - timedelta(days=2)))
    delete_expired(rt)
    with rt.storage.engine.connect() as conn:
        assert list(conn.execute(sa.select(idempotency_keys.c.key)).scalars()) == ["new"]


def test_the_stored_row_records_the_batch_and_the_response(
    client: FlaskClient, rt: Runtime
) -> None:
    body = post_with_key(client, "stored").get_json()
    with rt.storage.engine.connect() as conn:
        row = conn.execute(sa.select(idempotency_keys)).mappings().one()
    assert (row["user_id"], row["status_code"], row["batch_id"]) == (
        user_id_of(rt, "shop-sync"), 201, body["id"])
    assert row["response"] == json.loads(json.dumps(body))
    assert len(row["request_hash"]) == 64


# -- multi-tenant posting ----------------------------------------------------------------


@pytest.fixture
def agency(app: Flask) -> FlaskClient:
    """May post to several tenants, and create batches for any tenant."""
    return authenticated_client(app, "agency", tenant_id="acme", is_system=False, functions=(
        Function.MULTI_TENANT, Function.ADMIN_BATCHES, Function.ADMIN_BACKEND_SERVICES,
        Function.ADMIN_EDIT_ALL_ORGANISATIONS))


def post_multi(client: FlaskClient, tenants: list[str], **body: Any) -> Any:
    return client.post("/batches/multi-tenant",
                       json={**ECHO, "tenantIds": tenants, "pageSize": 1, **body})


def test_multi_tenant_post_creates_one_batch_per_tenant_and_answers_200(
    agency: FlaskClient, make_runtime: MakeRuntime
) -> None:
    response = post_multi(agency, ["acme", "globex"], description="nightly")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["postedProblems"] == {}
    assert list(body["postedSuccess"]) == ["acme", "globex"]
    for tenant, batch_id in body["postedSuccess"].items():
        batch = agency.get(f"/batches/{batch_id}").get_json()
        assert (batch["tenantId"], batch["createUserId"]) == (tenant, "agency")
        assert (batch["totalItems"], batch["pageSize"], batch["description"]) == (2, 1,
                                                                                  "nightly")


def test_multi_tenant_post_answers_207_with_the_problems_of_some_tenants(
    app: Flask,
) -> None:
    own_tenant_only = authenticated_client(app, "mt", tenant_id="acme", is_system=False,
                                           functions=(Function.MULTI_TENANT,))
    response = post_multi(own_tenant_only, ["globex", "acme", "initech"])
    assert response.status_code == 207
    body = response.get_json()
    assert list(body["postedSuccess"]) == ["acme"]
    assert set(body["postedProblems"]) == {"globex", "initech"}
    assert "may only create batches for its own tenant" in body["postedProblems"]["globex"][0]


def test_multi_tenant_post_reports_the_tenants_over_the_quota(agency: FlaskClient) -> None:
    response = post_multi(agency, ["a", "b", "c"])
    assert response.status_code == 207
    body = response.get_json()
    assert list(body["postedSuccess"]) == ["a", "b"]
    assert "already has 2 active batch(es)" in body["postedProblems"]["c"][0]


def test_multi_tenant_post_needs_the_multi_tenant_function(
    client: FlaskClient, rt: Runtime
) -> None:
    response = post_multi(client, ["acme"])
    assert_error(response, 403)
    assert "MULTI_TENANT" in response.get_json()["error"]
    assert batch_count(rt) == 0


@pytest.mark.parametrize("body, field", [
    ({"tenantIds": []}, "tenantIds"),
    ({"tenantIds": ["a", "a"]}, "tenantIds"),
    ({"tenantIds": ["a"], "tenantId": "a"}, "tenantId"),
    ({"tenantIds": "a"}, "tenantIds"),
])
def test_a_bad_tenant_list_is_a_400(agency: FlaskClient, body: dict[str, Any],
                                    field: str) -> None:
    response = agency.post("/batches/multi-tenant", json={**ECHO, **body})
    assert field in assert_error(response, 400)["fields"]


def test_items_refused_for_one_tenant_refuse_the_whole_request(
    agency: FlaskClient, rt: Runtime
) -> None:
    response = post_multi(agency, ["acme", "globex"], items=[{"key": "a", "payload": 1}] * 2)
    assert "itemErrors" in assert_error(response, 400)
    assert batch_count(rt) == 0


def test_a_multi_tenant_repost_with_the_same_key_creates_nothing(
    agency: FlaskClient, rt: Runtime
) -> None:
    body = {**ECHO, "tenantIds": ["acme", "globex"]}
    first = post_with_key(agency, "mt-1", body, "/batches/multi-tenant")
    again = post_with_key(agency, "mt-1", body, "/batches/multi-tenant")
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert batch_count(rt) == 2


MULTI_PATH = "/batches/multi-tenant"


def failing_for(monkeypatch: pytest.MonkeyPatch, failures: dict[str, Exception]) -> None:
    """Make creating the batch of each tenant in ``failures`` raise its exception."""
    create = multi_tenant.create_batch

    def create_or_fail(rt: Runtime, request: Any, items: Any) -> dict[str, Any]:
        if request.tenant_id in failures:
            raise failures[request.tenant_id]
        return create(rt, request, items)

    monkeypatch.setattr(multi_tenant, "create_batch", create_or_fail)


def tenants_of_batches(rt: Runtime) -> list[str]:
    with rt.storage.engine.connect() as conn:
        return sorted(conn.execute(sa.select(batches.c.tenant_id)).scalars())


def test_a_multi_tenant_failure_after_every_commit_never_makes_second_batches(
    agency: FlaskClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {**ECHO, "tenantIds": ["acme", "globex"]}
    monkeypatch.setattr(idempotency, "keep", keeping_fails)
    assert_error(post_with_key(agency, "mt-lost", body, MULTI_PATH), 500)
    first_ids = sorted(batch_ids(rt))
    monkeypatch.undo()
    again = post_with_key(agency, "mt-lost", body, MULTI_PATH)
    assert again.status_code == 200, again.get_json()
    assert sorted(again.get_json()["postedSuccess"].values()) == first_ids
    assert sorted(batch_ids(rt)) == first_ids
    replayed = post_with_key(agency, "mt-lost", body, MULTI_PATH)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.get_json() == again.get_json()


def test_a_multi_tenant_request_failing_midway_is_resumed_by_its_retry(
    agency: FlaskClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {**ECHO, "tenantIds": ["acme", "globex"]}
    failing_for(monkeypatch, {"globex": RuntimeError("the database went away")})
    assert_error(post_with_key(agency, "mt-half", body, MULTI_PATH), 500)
    [acme_batch] = batch_ids(rt)
    monkeypatch.undo()
    assert_error(post_with_key(agency, "mt-half", {**body, "description": "other"},
                               MULTI_PATH), 422)
    again = post_with_key(agency, "mt-half", body, MULTI_PATH)
    assert again.status_code == 200, again.get_json()
    success = again.get_json()["postedSuccess"]
    assert list(success) == ["acme", "globex"]
    assert success["acme"] == acme_batch
    assert tenants_of_batches(rt) == ["acme", "globex"]


def test_a_resumed_request_keeps_the_earlier_batches_whatever_their_order(
    agency: FlaskClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first try refuses "first" but makes "second"; the retry makes "first" and
    must still name "second"'s batch under the key, should it fail again."""
    body = {**ECHO, "tenantIds": ["first", "second"]}
    failing_for(monkeypatch, {"first": QuotaExceeded("full", retry_after_seconds=1)})
    monkeypatch.setattr(idempotency, "keep", keeping_fails)
    assert_error(post_with_key(agency, "mt-order", body, MULTI_PATH), 500)
    monkeypatch.undo()
    monkeypatch.setattr(idempotency, "keep", keeping_fails)
    assert_error(post_with_key(agency, "mt-order", body, MULTI_PATH), 500)
    monkeypatch.undo()
    again = post_with_key(agency, "mt-order", body, MULTI_PATH)
    assert again.status_code == 200, again.get_json()
    assert set(again.get_json()["postedSuccess"]) == {"first", "second"}
    assert tenants_of_batches(rt) == ["first", "second"]


def test_two_retries_of_a_resumable_request_cannot_both_resume_it(
    agency: FlaskClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {**ECHO, "tenantIds": ["acme", "globex"]}
    failing_for(monkeypatch, {"globex": RuntimeError("the database went away")})
    assert_error(post_with_key(agency, "mt-race", body, MULTI_PATH), 500)
    agency_id = user_id_of(rt, "agency")
    kept = rt.storage.idempotency_keys.get(agency_id, "mt-race")
    assert kept is not None and kept.status_code == idempotency.RESUMABLE
    assert list(idempotency.resume(rt, agency_id, "mt-race", kept)) == ["acme"]
    with pytest.raises(IdempotencyKeyInProgress):
        idempotency.resume(rt, agency_id, "mt-race", kept)
    monkeypatch.undo()
    assert_error(post_with_key(agency, "mt-race", body, MULTI_PATH), 409)
    assert tenants_of_batches(rt) == ["acme"]


def test_a_multi_tenant_failure_before_any_batch_releases_the_key(
    agency: FlaskClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {**ECHO, "tenantIds": ["acme", "globex"]}
    failing_for(monkeypatch, {"acme": RuntimeError("the database went away")})
    assert_error(post_with_key(agency, "mt-none", body, MULTI_PATH), 500)
    assert rt.storage.idempotency_keys.get(user_id_of(rt, "agency"), "mt-none") is None
    monkeypatch.undo()
    assert post_with_key(agency, "mt-none", body, MULTI_PATH).status_code == 200
    assert tenants_of_batches(rt) == ["acme", "globex"]


def test_an_expired_resumable_key_is_new_and_cleanup_deletes_its_batch_rows(
    agency: FlaskClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {**ECHO, "tenantIds": ["acme", "globex"]}
    failing_for(monkeypatch, {"globex": RuntimeError("the database went away")})
    assert_error(post_with_key(agency, "mt-old", body, MULTI_PATH), 500)
    monkeypatch.undo()
    [first] = batch_ids(rt)
    run_to_end(rt, first)  # out of the quota of active batches
    past = utcnow() - timedelta(hours=2 * rt.settings.idempotency_key_retention_hours)
    with rt.storage.engine.begin() as conn:
        conn.execute(sa.update(idempotency_keys).values(created_at=past))
    again = post_with_key(agency, "mt-old", body, MULTI_PATH)  # expired: a new request
    assert again.status_code == 200
    assert tenants_of_batches(rt) == ["acme", "acme", "globex"]
    with rt.storage.engine.begin() as conn:
        conn.execute(sa.update(idempotency_keys).values(created_at=past))
    delete_expired(rt)
    with rt.storage.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(
            idempotency_key_batches)).scalar_one() == 0


def test_a_multi_tenant_answer_over_the_cap_is_answered_again_from_its_batches(
    agency: FlaskClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idempotency, "MAX_KEPT_ANSWER_BYTES", 100)
    body = {**ECHO, "tenantIds": ["acme", "globex"]}
    first = post_with_key(agency, "mt-big", body, MULTI_PATH)
    again = post_with_key(agency, "mt-big", body, MULTI_PATH)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.get_json() == first.get_json()
    assert tenants_of_batches(rt) == ["acme", "globex"]


def test_the_admission_settings_are_read_and_checked() -> None:
    settings = Settings.from_env({"BATCHQ_MAX_ACTIVE_BATCHES_PER_USER": "1",
                                  "BATCHQ_IDEMPOTENCY_KEY_RETENTION_HOURS": "0.5"})
    assert (settings.max_active_batches_per_user, settings.idempotency_key_retention_hours) \
        == (1, 0.5)
    assert Settings().max_active_batches_per_user == 100
    for wrong in ({"max_active_batches_per_user": -1}, {"idempotency_key_retention_hours": 0}):
        with pytest.raises(ConfigurationError, match="BATCHQ_MAX_ACTIVE_BATCHES_PER_USER"):
            Settings(**wrong)  # type: ignore[arg-type]
