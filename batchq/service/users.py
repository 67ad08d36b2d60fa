"""Users and their tokens: creating them, and finding the user a credential belongs to.

A token is a random secret shown once; only its sha256 is stored, so a leaked
database gives no usable credential.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from batchq.domain.permissions import Caller, Function
from batchq.errors import BatchqError
from batchq.storage.common import Row, utcnow
from batchq.storage.tables import users

TOKEN_PREFIX = "bq_"


class InvalidUser(BatchqError):
    """The request to create a user breaks a rule (a taken name, an unknown function)."""

    status_code = 400


@dataclass(frozen=True)
class NewUser:
    """A user to create."""

    name: str
    tenant_id: str | None = None
    functions: tuple[Function, ...] = ()
    is_system: bool = False


def hash_token(token: str) -> str:
    """The stored form of a token: its sha256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_functions(names: Iterable[str]) -> tuple[Function, ...]:
    """Function names as ``Function`` values; ``InvalidUser`` names the unknown ones."""
    known = {f.value for f in Function}
    unknown = sorted(set(names) - known)
    if unknown:
        raise InvalidUser(f"Unknown function(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(known))}")
    return tuple(dict.fromkeys(Function(name) for name in names))


def create_user(engine: sa.Engine, user: NewUser) -> str:
    """Store ``user`` and return its token, the only time the token is known."""
    if not user.name or len(user.name) > 200 or ":" in user.name:
        raise InvalidUser("A user name must be 1 to 200 characters, without ':' "
                          "(Basic authentication separates name and token with it)")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = {"name": user.name, "tenant_id": user.tenant_id, "is_system": user.is_system,
           "functions": [f.value for f in user.functions], "token_hash": hash_token(token),
           "created_at": utcnow()}
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(users).values(**row))
    except sa.exc.IntegrityError as exc:
        raise InvalidUser(f"A user named {user.name!r} already exists") from exc
    return token


def has_users(engine: sa.Engine) -> bool:
    """True once at least one user exists."""
    with engine.connect() as conn:
        return conn.execute(sa.select(users.c.name).limit(1)).first() is not None


def user_by_token(engine: sa.Engine, token: str) -> Caller | None:
    """The user holding ``token`` (a Bearer credential), or None."""
    wanted = hash_token(token)
    with engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.token_hash == wanted)).mappings().first()
    if row is None or not hmac.compare_digest(row["token_hash"], wanted):
        return None
    return _caller(dict(row))


def user_by_name_and_token(engine: sa.Engine, name: str, token: str) -> Caller | None:
    """The user ``name`` if ``token`` is its token (a Basic credential), or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.name == name)).mappings().first()
    # Compare even for an unknown name, so the answer takes the same time.
    stored = row["token_hash"] if row is not None else "0" * 64
    if not hmac.compare_digest(stored, hash_token(token)) or row is None:
        return None
    return _caller(dict(row))


def _caller(row: Row) -> Caller:
    known = {f.value for f in Function}
    functions = frozenset(Function(name) for name in row["functions"] if name in known)
    return Caller(name=row["name"], tenant_id=row["tenant_id"], functions=functions,
                  is_system=bool(row["is_system"]))
