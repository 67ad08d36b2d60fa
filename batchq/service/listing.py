"""Finding batches: ``GET /batches`` and ``/batches/count``, and a batch's ownership.

Every query carries the caller's read scope (``batchq.permissions.read_scope``)
as a WHERE clause, so a result never holds a batch the caller may not read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from batchq.domain.permissions import (
    Caller,
    Ownership,
    ReadScope,
    can_read,
    check_change,
    read_scope,
)
from batchq.errors import BatchNotFound
from batchq.storage.common import Row, rows
from batchq.storage.tables import batches, users

MAX_RESULTS = 1000
SORT_COLUMNS = {"batchId": batches.c.id, "tenantId": batches.c.tenant_id,
                "type": batches.c.type, "status": batches.c.status,
                "createdAt": batches.c.created_at}

#: What a listed batch shows; no JSON columns, nothing that needs a second query.
LIST_COLUMNS = (
    batches.c.id, batches.c.type, batches.c.status, batches.c.suspended, batches.c.tenant_id,
    batches.c.create_user_id, batches.c.description, batches.c.total_items,
    batches.c.processed_items, batches.c.failed_items, batches.c.total_jobs,
    batches.c.jobs_created, batches.c.jobs_completed, batches.c.created_at,
    batches.c.started_at, batches.c.finished_at, batches.c.failure_reason,
)


@dataclass(frozen=True)
class BatchFilter:
    """The filters of ``GET /batches``; None means "any"."""

    batch_id: str | None = None
    type: str | None = None
    status: str | None = None
    tenant_ids: Sequence[str] | None = None
    without_tenant: bool = False
    suspended: bool | None = None
    created_by: str | None = None


@dataclass(frozen=True)
class Page:
    """Sorting and paging of ``GET /batches``."""

    sort_by: str | None = None
    descending: bool = False
    first_result: int = 0
    max_results: int = 100


def _system_users() -> sa.Select[Any]:
    return sa.select(users.c.name).where(users.c.is_system.is_(True))


def _system_wide() -> sa.ColumnElement[bool]:
    """A batch without a tenant created by a system user or by batchq itself."""
    return sa.and_(batches.c.tenant_id.is_(None),
                   sa.or_(batches.c.create_user_id.is_(None),
                          batches.c.create_user_id.in_(_system_users())))


def scope_clause(scope: ReadScope) -> sa.ColumnElement[bool]:
    """The WHERE clause of the batches ``scope`` covers."""
    if scope.everything:
        return sa.true()
    reach: list[sa.ColumnElement[bool]] = [batches.c.create_user_id == scope.user]
    if scope.tenant_batches:
        same_tenant = (batches.c.tenant_id.is_(None) if scope.tenant_id is None
                       else batches.c.tenant_id == scope.tenant_id)
        reach += [same_tenant, _system_wide()]
    return sa.or_(*reach)


def filter_clauses(wanted: BatchFilter) -> list[sa.ColumnElement[bool]]:
    """The WHERE clauses of ``wanted``; tenantIdIn and withoutTenantId together mean either."""
    clauses: list[sa.ColumnElement[bool]] = []
    for column, value in ((batches.c.id, wanted.batch_id), (batches.c.type, wanted.type),
                          (batches.c.status, wanted.status),
                          (batches.c.suspended, wanted.suspended),
                          (batches.c.create_user_id, wanted.created_by)):
        if value is not None:
            clauses.append(column == value)
    tenants: list[sa.ColumnElement[bool]] = []
    if wanted.tenant_ids is not None:
        tenants.append(batches.c.tenant_id.in_(list(wanted.tenant_ids)))
    if wanted.without_tenant:
        tenants.append(batches.c.tenant_id.is_(None))
    if tenants:
        clauses.append(sa.or_(*tenants))
    return clauses


def list_batches(engine: sa.Engine, caller: Caller, wanted: BatchFilter, page: Page) -> list[Row]:
    """The batches ``caller`` may read that match ``wanted``, sorted and paged."""
    with engine.connect() as conn:
        return rows(conn.execute(list_query(caller, wanted, page)))


def list_query(caller: Caller, wanted: BatchFilter, page: Page) -> sa.Select[Any]:
    """The query of ``list_batches`` (also for EXPLAIN in bench/api.py).

    Without ``sort_by``, newest first; ties are broken by id, so paging is stable.
    """
    column = SORT_COLUMNS[page.sort_by] if page.sort_by else batches.c.created_at
    descending = page.descending if page.sort_by else True
    order = [column.desc() if descending else column.asc()]
    if column is not batches.c.id:
        order.append(batches.c.id.desc() if descending else batches.c.id.asc())
    return (sa.select(*LIST_COLUMNS)
            .where(scope_clause(read_scope(caller)), *filter_clauses(wanted))
            .order_by(*order).offset(page.first_result).limit(page.max_results))


def count_batches(engine: sa.Engine, caller: Caller, wanted: BatchFilter) -> int:
    """How many batches ``caller`` may read match ``wanted``."""
    query = (sa.select(sa.func.count()).select_from(batches)
             .where(scope_clause(read_scope(caller)), *filter_clauses(wanted)))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def check_access(engine: sa.Engine, caller: Caller, batch_id: str, change: bool = False) -> Row:
    """The batch row, if ``caller`` may read it: ``BatchNotFound`` otherwise, and
    ``Forbidden`` when ``change`` is asked for and the caller may only read it.

    The whole row is read with the ownership, so a view that shows the batch
    needs no second read of it.
    """
    query = (sa.select(batches, _system_wide().label("system_wide"))
             .where(batches.c.id == batch_id))
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    owner = None if row is None else Ownership(row["create_user_id"], row["tenant_id"],
                                               bool(row["system_wide"]))
    if owner is None or not can_read(caller, owner):
        raise BatchNotFound(f"No batch with id {batch_id!r}", {"batchId": batch_id})
    if change:
        check_change(caller, owner, batch_id)
    return dict(row)  # type: ignore[arg-type]
