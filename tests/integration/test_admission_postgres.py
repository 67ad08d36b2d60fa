"""The quota race and concurrent idempotent re-posts on PostgreSQL, against the real API app."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from api import create_app
from batchq.domain.permissions import Function
from batchq.runtime import Runtime, build_runtime
from batchq.service.creation import NewBatch, create_batch
from batchq.service.users import NewUser, caller_from_row, create_user
from batchq.settings import Settings
from batchq.storage.tables import batches, idempotency_keys
from tests.unit.concurrent_posts import post_at_once
from tests.unit.support import FakeDispatcher

ECHO = {"type": "echo", "items": [{"key": "a", "payload": 1}, {"key": "b", "payload": 2}]}


@pytest.fixture
def app(postgres_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The API on PostgreSQL, with a pool large enough for 50 transactions at once."""
    settings = Settings(data_dir=tmp_path, database_url=postgres_url,
                        max_active_batches_per_user=1)
    runtime = build_runtime(settings, FakeDispatcher(), pool_size=60, max_overflow=0)
    yield create_app(runtime=runtime)
    runtime.storage.engine.dispose()


def count(app: Flask, table: sa.Table) -> int:
    with app.extensions["batchq"].storage.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_fifty_concurrent_creates_against_a_limit_of_one_create_exactly_one(app: Flask) -> None:
    token = create_user(app.extensions["batchq"].storage.users, NewUser("racer"))
    responses = post_at_once(app, token, "/batches", [ECHO] * 50)
    assert Counter(r.status_code for r in responses) == {201: 1, 429: 49}
    assert all(int(r.headers["Retry-After"]) > 0 for r in responses if r.status_code == 429)
    assert count(app, batches) == 1


def test_concurrent_multi_tenant_posts_stay_within_the_quota(app: Flask) -> None:
    users = app.extensions["batchq"].storage.users
    token = create_user(users, NewUser("agency", functions=(Function.MULTI_TENANT,),
                                        is_system=True))
    body = {**ECHO, "tenantIds": ["acme", "globex", "initech"]}
    responses = post_at_once(app, token, "/batches/multi-tenant", [body] * 10)
    successes = [len(r.get_json()["postedSuccess"]) for r in responses]
    assert sum(successes) == 1
    assert count(app, batches) == 1


def test_concurrent_reposts_with_one_key_create_one_batch(app: Flask) -> None:
    token = create_user(app.extensions["batchq"].storage.users, NewUser("retrier"))
    responses = post_at_once(app, token, "/batches", [ECHO] * 20,
                             headers={"Idempotency-Key": "order-7"})
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}
    assert statuses[201] >= 1
    assert len({r.get_json()["id"] for r in responses if r.status_code == 201}) == 1
    assert all("in progress" in r.get_json()["error"] for r in responses if r.status_code == 409)
    assert count(app, batches) == 1
    assert count(app, idempotency_keys) == 1


def test_a_failure_after_the_commit_is_answered_by_the_first_batch_on_postgresql(
    app: Flask, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from batchq.service import idempotency

    def keeping_fails(*_: object) -> None:
        raise RuntimeError("the connection broke after the commit")

    token = create_user(app.extensions["batchq"].storage.users, NewUser("once"))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "exactly-once"}
    monkeypatch.setattr(idempotency, "keep", keeping_fails)
    assert client.post("/batches", json=ECHO, headers=headers).status_code == 500
    monkeypatch.undo()
    again = client.post("/batches", json=ECHO, headers=headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    with app.extensions["batchq"].storage.engine.connect() as conn:
        assert list(conn.execute(sa.select(batches.c.id)).scalars()) == [again.get_json()["id"]]


def test_concurrent_retries_of_a_multi_tenant_post_that_failed_midway_make_each_batch_once(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from batchq.service import multi_tenant

    settings = Settings(data_dir=tmp_path, database_url=postgres_url)
    runtime = build_runtime(settings, FakeDispatcher(), pool_size=30, max_overflow=0)
    app = create_app(runtime=runtime)
    token = create_user(runtime.storage.users, NewUser(
        "agency", functions=(Function.MULTI_TENANT,), is_system=True))
    create = multi_tenant.create_batch

    def globex_fails(rt: Runtime, request: NewBatch, items: Any) -> dict[str, Any]:
        if request.tenant_id == "globex":
            raise RuntimeError("the connection broke")
        return create(rt, request, items)

    body, headers = {**ECHO, "tenantIds": ["acme", "globex"]}, {"Idempotency-Key": "mt"}
    monkeypatch.setattr(multi_tenant, "create_batch", globex_fails)
    [failed] = post_at_once(app, token, "/batches/multi-tenant", [body], headers=headers)
    assert failed.status_code == 500
    monkeypatch.undo()
    responses = post_at_once(app, token, "/batches/multi-tenant", [body] * 10, headers=headers)
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 409} and statuses[200] >= 1, statuses
    answers = {str(r.get_json()["postedSuccess"]) for r in responses if r.status_code == 200}
    assert len(answers) == 1
    with runtime.storage.engine.connect() as conn:
        tenants = sorted(conn.execute(sa.select(batches.c.tenant_id)).scalars())
    assert tenants == ["acme", "globex"]
    runtime.storage.engine.dispose()


def test_a_slow_upload_holds_no_lock_its_users_next_create_waits_for(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=postgres_url,
                        max_active_batches_per_user=5)
    rt = build_runtime(settings, FakeDispatcher(), pool_size=5, max_overflow=0)
    creator = caller_from_row({"id": "u-1", "name": "uploader", "tenant_id": None,
                               "functions": [], "is_system": False})
    body_arrives = threading.Event()

    def slow_items() -> Iterator[dict[str, Any]]:
        yield {"key": "first", "payload": 1}
        body_arrives.wait(60)  # the rest of the body has not come yet
        yield {"key": "last", "payload": 2}

    created: list[dict[str, Any]] = []
    slow = threading.Thread(target=create_batch, args=(
        rt, NewBatch(type="echo", creator=creator), slow_items()))
    quick = threading.Thread(target=lambda: created.append(create_batch(
        rt, NewBatch(type="echo", creator=creator), [{"n": 1}])))
    slow.start()
    try:
        time.sleep(0.5)  # the slow create has counted its quota and streams its items
        quick.start()
        quick.join(timeout=20)  # generous: it waits for no lock, so it is done at once
        assert not quick.is_alive(), "the quick create waited for the slow upload's lock"
        assert slow.is_alive()  # the slow body is still arriving
        assert created[0]["owner_id"] == "u-1"
    finally:
        body_arrives.set()
        slow.join(timeout=60)
        quick.join(timeout=60)
        rt.storage.engine.dispose()
