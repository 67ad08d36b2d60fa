"""Tokens expire and can be revoked; ownership follows the user's stable id, not its name."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from batchq.errors import InvalidUser, UnknownUser
from batchq.service.users import (
    NewUser,
    create_user,
    remove_user,
    revoke_token,
    rotate_token,
    user_by_name_and_token,
    user_by_token,
)
from batchq.storage.tables import users
from batchq.storage.users import UserRepository

from .test_cli_commands import in_folder, one_line_failure, project, users_of

__all__ = ["project"]  # the fixture, used by the CLI tests below


def repository(app: Flask) -> UserRepository:
    return app.extensions["batchq"].storage.users  # type: ignore[no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(name: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{token}".encode()).decode()}


def expire_now(repo: UserRepository, name: str) -> None:
    """What time passing does to a token with a lifetime: its expiry is in the past."""
    with repo.engine.begin() as conn:
        conn.execute(sa.update(users).where(users.c.name == name).values(
            token_expires_at=sa.func.datetime("now", "-1 second")))


def test_a_token_works_until_it_expires_then_neither_scheme_accepts_it(app: Flask) -> None:
    repo = repository(app)
    token = create_user(repo, NewUser("temp", expires_in=timedelta(hours=1)))
    client = app.test_client()
    assert client.get("/batches", headers=bearer(token)).status_code == 200

    expire_now(repo, "temp")

    assert client.get("/batches", headers=bearer(token)).status_code == 401
    assert client.get("/batches", headers=basic("temp", token)).status_code == 401


def test_a_revoked_token_stops_at_once_and_a_rotated_one_works_again(app: Flask) -> None:
    repo = repository(app)
    token = create_user(repo, NewUser("ops"))
    client = app.test_client()

    revoke_token(repo, "ops")

    assert client.get("/batches", headers=bearer(token)).status_code == 401
    assert client.get("/batches", headers=basic("ops", token)).status_code == 401
    fresh = rotate_token(repo, "ops", timedelta(days=1))
    assert client.get("/batches", headers=bearer(fresh)).status_code == 200
    assert user_by_token(repo, token) is None


def test_revoking_or_expiring_an_unknown_user_or_a_bad_lifetime_is_refused(app: Flask) -> None:
    repo = repository(app)
    with pytest.raises(UnknownUser):
        revoke_token(repo, "nobody")
    with pytest.raises(InvalidUser, match="lifetime must be positive"):
        create_user(repo, NewUser("never", expires_in=timedelta(0)))


def test_a_user_re_added_under_the_same_name_owns_none_of_the_old_batches(app: Flask) -> None:
    repo = repository(app)
    old_token = create_user(repo, NewUser("ann", "acme"))
    client = app.test_client()
    created = client.post("/batches", json={"type": "echo", "items": [{"n": 1}]},
                          headers=bearer(old_token))
    assert created.status_code == 201, created.get_data(as_text=True)
    batch_id = created.get_json()["id"]
    remove_user(repo, "ann")

    new_token = create_user(repo, NewUser("ann", "acme"))

    assert client.get(f"/batches/{batch_id}", headers=bearer(new_token)).status_code == 404
    assert client.get("/batches", headers=bearer(new_token)).get_json() == []
    assert user_by_name_and_token(repo, "ann", new_token) is not None  # the new ann is in


def test_batchq_token_revoke_and_expiring_tokens_from_the_cli(project: Path) -> None:
    added = in_folder(project, "user", "add", "ci", "--expires-in", "12h")
    assert added.exit_code == 0, added.output
    token = added.output.splitlines()[-1]
    repo = users_of(project)
    assert user_by_token(repo, token) is not None
    assert "expires " in in_folder(project, "user", "ls").output

    revoked = in_folder(project, "token", "revoke", "ci")

    assert revoked.exit_code == 0, revoked.output
    assert user_by_token(repo, token) is None
    assert "revoked" in in_folder(project, "user", "ls").output
    one_line_failure(in_folder(project, "token", "revoke", "nobody"), "No user named")
    bad = in_folder(project, "user", "rotate-token", "ci", "--expires-in", "soon")
    assert bad.exit_code == 2 and "is not a lifetime" in bad.output
