"""Authentication (Bearer and Basic, 401s) and ``batchq user add``."""

from __future__ import annotations

import base64

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from batchq.cli import main
from batchq.domain.permissions import Function
from batchq.service.users import NewUser, create_user, hash_token, user_by_token
from batchq.storage.engine import create_engine
from batchq.storage.tables import users
from batchq.storage.users import UserRepository


@pytest.fixture
def token(app: Flask) -> str:
    return create_user(app.extensions["batchq"].storage.users, NewUser("ops", "acme"))


def basic(name: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode()


def assert_401(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.get("/batches", headers=headers)
    assert response.status_code == 401
    assert set(response.get_json()) == {"status", "error", "details"}
    challenge = response.headers["WWW-Authenticate"]
    assert "Bearer" in challenge and "Basic" in challenge


def test_bearer_and_basic_both_authenticate(app: Flask, token: str) -> None:
    client = app.test_client()
    assert client.get("/batches", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/batches", headers={"Authorization": basic("ops", token)}).status_code == 200


@pytest.mark.parametrize("header", [
    None, "", "Bearer", "Bearer wrong", "Token {token}", "Basic !!!", "Basic b3Bz",
    "basic:ops:{token}", "Bearer {token}x",
])
def test_no_or_a_wrong_credential_is_a_401_with_both_challenges(
    app: Flask, token: str, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header.format(token=token)}
    assert_401(app.test_client(), headers)


def test_basic_with_another_users_name_is_a_401(app: Flask, token: str) -> None:
    create_user(app.extensions["batchq"].storage.users, NewUser("other"))
    assert_401(app.test_client(), {"Authorization": basic("other", token)})
    assert_401(app.test_client(), {"Authorization": basic("nobody", token)})


@pytest.mark.parametrize("path", ["/batches/count", "/batches/some-id", "/batches"])
def test_every_batch_endpoint_needs_a_credential(app: Flask, path: str) -> None:
    client = app.test_client()
    for method in ("GET", "POST", "PATCH", "DELETE"):
        response = client.open(path, method=method, json={})
        assert response.status_code in (401, 405), (method, path)


def test_health_and_the_documentation_stay_open(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    spec = client.get("/openapi.json").get_json()
    assert set(spec["components"]["securitySchemes"]) == {"bearerAuth", "basicAuth"}
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    assert {"/batches/count"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_only_the_tokens_hash_is_stored(app: Flask, token: str) -> None:
    engine = app.extensions["batchq"].storage.engine
    with engine.connect() as conn:
        stored = conn.execute(sa.select(users.c.token_hash)).scalar_one()
    assert stored == hash_token(token) and token not in stored


def test_user_add_prints_a_token_that_authenticates(database_url: str) -> None:
    result = CliRunner().invoke(
        main, ["user", "add", "ci", "--tenant", "acme", "--function", "ADMIN_BATCHES",
               "--function", "ADMIN_BACKEND_SERVICES"],
        env={"BATCHQ_DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    engine = create_engine(database_url)
    try:
        caller = user_by_token(UserRepository(engine), token)
    finally:
        engine.dispose()
    assert caller is not None
    assert (caller.name, caller.tenant_id, caller.is_system) == ("ci", "acme", False)
    assert caller.functions == {Function.ADMIN_BATCHES, Function.ADMIN_BACKEND_SERVICES}


def test_user_add_system_makes_a_system_user(database_url: str) -> None:
    result = CliRunner().invoke(main, ["user", "add", "root", "--system"],
                                env={"BATCHQ_DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    engine = create_engine(database_url)
    try:
        caller = user_by_token(UserRepository(engine), result.output.strip().splitlines()[-1])
    finally:
        engine.dispose()
    assert caller is not None and caller.is_system


@pytest.mark.parametrize(("args", "message"), [
    (["user", "add", "x", "--function", "ADMIN_EVERYTHING"], "ADMIN_EVERYTHING"),
    (["user", "add", "a:b"], "':'"),
    (["user", "add", "twice"], "already exists"),
])
def test_user_add_refuses_bad_input_with_a_clear_error(
    database_url: str, args: list[str], message: str
) -> None:
    env = {"BATCHQ_DATABASE_URL": database_url}
    CliRunner().invoke(main, ["user", "add", "twice"], env=env)
    result = CliRunner().invoke(main, args, env=env)
    # click's usage errors exit with 2, ClickException with 1.
    assert result.exit_code == (2 if "--function" in args else 1)
    assert message in result.output
    assert "Traceback" not in result.output



def test_the_openapi_document_names_the_401_of_every_batch_endpoint(app: Flask) -> None:
    paths = app.test_client().get("/openapi.json").get_json()["paths"]
    for path, operations in paths.items():
        if path.startswith("/batches"):
            for method, operation in operations.items():
                if method != "parameters":
                    assert "401" in operation["responses"], (method, path)
