"""Users and their tokens: creating them, and finding the user a credential belongs to.

A token is a random secret shown once; only its sha256 is stored, so a leaked
database gives no usable credential. A token may expire (``expires_in``) and
can be revoked at once (``revoke_token``); a new one is issued by
``rotate_token``. Each user has a stable id, which the batches it creates are
owned by: a user removed and added again under the same name owns none of the
old ones.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
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
    #: How long the token works; None: until rotated or revoked.
    expires_in: timedelta | None = None


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
    now = utcnow()
    row = {"name": user.name, "id": str(uuid.uuid4()), "tenant_id": user.tenant_id,
           "is_system": user.is_system, "functions": [f.value for f in user.functions],
           "token_hash": hash_token(token), "created_at": now,
           "token_expires_at": _expiry(now, user.expires_in)}
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
    token_expires_at: datetime | None = None
    token_revoked: bool = False


def list_users(users: UserRepository) -> list[UserSummary]:
    """Every user, by name."""
    return [UserSummary(row["name"], row["tenant_id"], tuple(row["functions"]),
                        bool(row["is_system"]), row["created_at"], row["token_expires_at"],
                        bool(row["token_revoked"])) for row in users.listed()]


def remove_user(users: UserRepository, name: str) -> None:
    """Delete the user ``name``: its token stops working at once; its batches stay.

    ``UnknownUser`` when there is none.
    """
    if not users.remove(name):
        raise UnknownUser(f"No user named {name!r}", {"user": name})


def rotate_token(users: UserRepository, name: str,
                 expires_in: timedelta | None = None) -> str:
    """Give ``name`` a new token and return it (shown once); the old one stops working at
    once, as only the new one's hash is stored. ``UnknownUser`` when there is none."""
    token = new_token()
    if not users.replace_token_hash(name, hash_token(token), _expiry(utcnow(), expires_in)):
        raise UnknownUser(f"No user named {name!r}", {"user": name})
    return token


def revoke_token(users: UserRepository, name: str) -> None:
    """Make ``name``'s token stop working at once; the user and its batches stay, and
    ``rotate_token`` issues a new token. ``UnknownUser`` when there is none."""
    if not users.replace_token_hash(name, None):
        raise UnknownUser(f"No user named {name!r}", {"user": name})


def user_by_token(users: UserRepository, token: str) -> Caller | None:
    """The user holding ``token`` (a Bearer credential), or None (also once it expired)."""
    wanted = hash_token(token)
    row = users.by_token_hash(wanted)
    if row is None or not hmac.compare_digest(row["token_hash"], wanted) or _expired(row):
        return None
    return caller_from_row(row)


def user_by_name_and_token(users: UserRepository, name: str, token: str) -> Caller | None:
    """The user ``name`` if ``token`` is its token (a Basic credential), or None (also
    once the token expired or was revoked)."""
    row = users.by_name(name)
    # Compare even for an unknown name or a revoked token, so the answer takes the same time.
    stored = (row["token_hash"] if row is not None else None) or "0" * 64
    if not hmac.compare_digest(stored, hash_token(token)) or row is None or _expired(row):
        return None
    return caller_from_row(row)


def _expiry(now: datetime, expires_in: timedelta | None) -> datetime | None:
    if expires_in is None:
        return None
    if expires_in <= timedelta(0):
        raise InvalidUser("A token's lifetime must be positive")
    return now + expires_in


def _expired(row: Mapping[str, Any]) -> bool:
    expires_at = row.get("token_expires_at")
    return expires_at is not None and expires_at <= utcnow()


def known_tenants(users: UserRepository, tenant_ids: Sequence[str]) -> set[str]:
    """The tenants of ``tenant_ids`` batchq knows: those at least one user belongs to."""
    return users.known_tenants(tenant_ids) if tenant_ids else set()


def caller_from_row(row: Mapping[str, Any]) -> Caller:
    """The ``Caller`` a users row stands for."""
    known = {f.value for f in Function}
    functions = frozenset(Function(name) for name in row["functions"] if name in known)
    return Caller(name=row["name"], tenant_id=row["tenant_id"], functions=functions,
                  is_system=bool(row["is_system"]), user_id=row["id"])
