"""The users table: a user's name, stable id, tenant, functions and its token's hash."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from batchq.errors import UniqueViolation
from batchq.storage.common import Row, first_row, rows
from batchq.storage.tables import users


class UserRepository:
    """Users, found by name or by the hash of their token."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add(self, row: Mapping[str, Any]) -> None:
        """Insert a user; ``UniqueViolation`` when the name (or the token hash) is taken."""
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(users).values(**row))
        except sa.exc.IntegrityError as exc:
            raise UniqueViolation(f"A user named {row['name']!r} already exists",
                                  "users.name") from exc

    def any(self) -> bool:
        """True once at least one user exists."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(users.c.name).limit(1)).first() is not None

    def by_token_hash(self, token_hash: str) -> dict[str, Any] | None:
        """The user whose token hashes to ``token_hash``, or None."""
        with self.engine.connect() as conn:
            return first_row(conn.execute(sa.select(users).where(users.c.token_hash == token_hash)))

    def by_name(self, name: str) -> dict[str, Any] | None:
        """The user called ``name``, or None."""
        with self.engine.connect() as conn:
            return first_row(conn.execute(sa.select(users).where(users.c.name == name)))

    def listed(self) -> list[Row]:
        """Every user by name: name, id, tenant_id, functions, is_system, created_at,
        token_expires_at and whether its token was revoked (never the hash)."""
        query = (sa.select(users.c.name, users.c.id, users.c.tenant_id, users.c.functions,
                           users.c.is_system, users.c.created_at, users.c.token_expires_at,
                           users.c.token_hash.is_(None).label("token_revoked"))
                 .order_by(users.c.name))
        with self.engine.connect() as conn:
            return rows(conn.execute(query))

    def remove(self, name: str) -> bool:
        """Delete the user called ``name``; False when there is none."""
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(users).where(users.c.name == name)).rowcount == 1

    def replace_token_hash(self, name: str, token_hash: str | None,
                           expires_at: datetime | None = None) -> bool:
        """Give ``name`` a new token hash (None: no token, revoked) expiring at
        ``expires_at``, so the old token stops working when this commits."""
        with self.engine.begin() as conn:
            result = conn.execute(sa.update(users).where(users.c.name == name)
                                  .values(token_hash=token_hash, token_expires_at=expires_at))
            return result.rowcount == 1
    def known_tenants(self, tenant_ids: Sequence[str]) -> set[str]:
        """Those of ``tenant_ids`` that at least one user belongs to."""
        query = (sa.select(users.c.tenant_id).distinct()
                 .where(users.c.tenant_id.in_(list(tenant_ids))))
        with self.engine.connect() as conn:
            return {str(tenant) for tenant in conn.execute(query).scalars()}
