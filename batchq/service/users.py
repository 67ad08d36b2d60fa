"""Users and their tokens: creating them, and finding the user a credential belongs to.

A token is a random secret shown once; only its sha256 is stored, so a leaked
database gives no usable credential.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from batchq.domain.permissions import Caller, Function
from batchq.errors import InvalidUser, UniqueViolation, UnknownUser
from batchq.storage.common import utcnow
from batchq.storage.users import UserRepository

TOKEN_PREFIX = "bq_"


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


def new_token() -> str:
    """A fresh random token (``bq_`` and 43 URL-safe characters)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_user(users: UserRepository, user: NewUser) -> str:
    """Store ``user`` and return its token, the only time the token is known."""
    if not user.name or len(user.name) > 200 or ":" in user.name:
        raise InvalidUser("A user name must be 1 to 200 characters, without ':' "
                          "(Basic authentication separates name and token with it)")
    token = new_token()
    row = {"name": user.name, "tenant_id": user.tenant_id, "is_system": user.is_system,
           "functions": [f.value for f in user.functions], "token_hash": hash_token(token),
           "created_at": utcnow()}
    try:
        users.add(row)
    except UniqueViolation as exc:
        raise InvalidUser(f"A user named {user.name!r} already exists") from exc
    return token


@dataclass(frozen=True)
class UserSummary:
    """A user as ``batchq user ls`` lists it; never its token or the token's hash."""

    name: str
    tenant_id: str | None
    functions: tuple[str, ...]
    is_system: bool
    created_at: datetime


def list_users(users: UserRepository) -> list[UserSummary]:
    """Every user, by name."""
    return [UserSummary(row["name"], row["tenant_id"], tuple(row["functions"]),
                        bool(row["is_system"]), row["created_at"]) for row in users.listed()]


def remove_user(users: UserRepository, name: str) -> None:
    """Delete the user ``name``: its token stops working at once; its batches stay.

    ``UnknownUser`` when there is none.
    """
    if not users.remove(name):
        raise UnknownUser(f"No user named {name!r}", {"user": name})


def rotate_token(users: UserRepository, name: str) -> str:
    """Give ``name`` a new token and return it (shown once); the old one stops working at
    once, as only the new one's hash is stored. ``UnknownUser`` when there is none."""
    token = new_token()
    if not users.replace_token_hash(name, hash_token(token)):
        raise UnknownUser(f"No user named {name!r}", {"user": name})
    return token


def user_by_token(users: UserRepository, token: str) -> Caller | None:
    """The user holding ``token`` (a Bearer credential), or None."""
    wanted = hash_token(token)
    row = users.by_token_hash(wanted)
    if row is None or not hmac.compare_digest(row["token_hash"], wanted):
        return None
    return _caller(row)


def user_by_name_and_token(users: UserRepository, name: str, token: str) -> Caller | None:
    """The user ``name`` if ``token`` is its token (a Basic credential), or None."""
    row = users.by_name(name)
    # Compare even for an unknown name, so the answer takes the same time.
    stored = row["token_hash"] if row is not None else "0" * 64
    if not hmac.compare_digest(stored, hash_token(token)) or row is None:
        return None
    return _caller(row)


def known_tenants(users: UserRepository, tenant_ids: Sequence[str]) -> set[str]:
    """The tenants of ``tenant_ids`` batchq knows: those at least one user belongs to."""
    return users.known_tenants(tenant_ids) if tenant_ids else set()


def _caller(row: Mapping[str, Any]) -> Caller:
    known = {f.value for f in Function}
    functions = frozenset(Function(name) for name in row["functions"] if name in known)
    return Caller(name=row["name"], tenant_id=row["tenant_id"], functions=functions,
                  is_system=bool(row["is_system"]))
