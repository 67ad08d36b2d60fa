"""The batches table: creating a batch, reading and listing batches, and changing their state.

Transactions here lock the batch row first (``SELECT ... FOR UPDATE`` on
PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises writers anyway) and touch
pages only with ``SKIP LOCKED``, the lock order that keeps them free of
deadlocks with the workers' transactions (see ``batchq.storage.pages``).
Every state change is a conditional update, so two monitors at once do no harm.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from batchq.domain.admission import check_quota
from batchq.domain.items import DuplicateKeys
from batchq.domain.lifecycle import cancellable
from batchq.domain.lists import BatchFilter, BatchOrder, Window
from batchq.domain.live_events import SNAPSHOT_COLUMNS
from batchq.domain.permissions import Ownership, ReadScope
from batchq.domain.statuses import ACTIVE_STATUSES, FINAL_STATUSES, BatchStatus, StopReason
from batchq.errors import UniqueViolation
from batchq.storage.common import Row, first_row, lock_batch, rows, status_values, unqueue_pages
from batchq.storage.deliveries import delete_of_batches
from batchq.storage.engine import is_postgres
from batchq.storage.finalizing import complete_in
from batchq.storage.idempotency import CreationClaim, mark_created
from batchq.storage.items import duplicate_keys, insert_items
from batchq.storage.retry_selection import copy_retried_items
from batchq.storage.tables import (
    batches,
    item_errors,
    item_retries,
    items,
    pages,
    result_files,
    users,
)

_STARTABLE = status_values({BatchStatus.WAITING, BatchStatus.PROCESSING})
_ACTIVE = status_values(ACTIVE_STATUSES)
#: The name of the index that allows one active run per batch process.
ACTIVE_PROCESS_INDEX = "uq_batches_active_process"
SORT_COLUMNS = {"batchId": batches.c.id, "tenantId": batches.c.tenant_id,
                "type": batches.c.type, "status": batches.c.status,
                "createdAt": batches.c.created_at, "finishedAt": batches.c.finished_at,
                "expiresAt": batches.c.expires_at}

#: What a listed batch shows; no JSON columns, nothing that needs a second query.
LIST_COLUMNS = (
    batches.c.id, batches.c.type, batches.c.status, batches.c.suspended, batches.c.tenant_id,
    batches.c.create_user_id, batches.c.description, batches.c.total_items,
    batches.c.processed_items, batches.c.failed_items, batches.c.total_jobs,
    batches.c.jobs_created, batches.c.jobs_completed, batches.c.created_at,
    batches.c.started_at, batches.c.finished_at, batches.c.failure_reason, batches.c.retry_of,
    batches.c.expires_at, batches.c.page_size, batches.c.jobs_per_seed, batches.c.number,
)

#: Called once every item is in, with the batch's repeated keys; returns the batch row's
#: remaining columns (totals only known then) or raises to refuse the batch.
FinishCreation = Callable[[DuplicateKeys], Mapping[str, Any]]
#: Run inside the creating transaction once the batch row is in.
AfterInsert = Callable[[sa.Connection, Mapping[str, Any]], None]
#: Called with the original batch's row (locked); raises to refuse retrying it.
CheckOriginal = Callable[[Row], None]
#: Called with a retry batch's stage sizes once its items are in; returns its remaining columns.
FinishRetry = Callable[[list[list[int]]], Mapping[str, Any]]


#: Rows of one table one cleanup transaction deletes, at most.
DELETE_CHUNK_ROWS = 10_000


class BatchRepository:
    """Batches as a whole (their pages and items have repositories of their own)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- creation -------------------------------------------------------------

    def create(self, row: Mapping[str, Any], item_chunks: Iterable[list[dict[str, Any]]],
               finish: FinishCreation, max_active: int = 0,
               then: AfterInsert | None = None,
               claim: CreationClaim | None = None) -> dict[str, Any]:
        """Insert the items chunk by chunk, then the batch row, in one transaction.

        ``max_active`` is the creator's quota of active batches (0: none),
        twice: before the items, without a lock, so a caller over its quota is
        refused before its body is read; and once every item is in, under a lock
        on the creator (``_count_active_of``), held only from there to the
        commit. No lock is held while a (possibly slow) body streams in, so one
        slow upload cannot hold up its user's other requests.
        A second active run of one batch process raises ``UniqueViolation``.
        ``then`` runs in the same transaction, with the new row (a small
        batch's first pages, ``PageRepository.start_in_creation``), and
        ``claim``'s idempotency key is marked with the batch in it too.
        """
        creator = row["create_user_id"]
        owner = row.get("owner_id") if max_active > 0 else None  # the quota applies to it
        try:
            with self.engine.begin() as conn:
                if owner is not None:
                    check_quota(creator, _count_active_of(conn, owner, lock=False), max_active)
                insert_items(conn, item_chunks)
                if owner is not None:
                    check_quota(creator, _count_active_of(conn, owner), max_active)
                full = _insert_batch(conn, {**row, **finish(duplicate_keys(conn, row["id"]))})
                if then is not None:
                    then(conn, full)
                if claim is not None:
                    mark_created(conn, claim, row["id"])
        except sa.exc.IntegrityError as exc:
            raise UniqueViolation(f"batch {row['id']} repeats a unique value",
                                  _constraint_of(exc)) from exc
        return full

    def create_retry(self, row: Mapping[str, Any], selection: Sequence[str],
                     check: CheckOriginal, finish: FinishRetry, max_active: int = 0,
                     claim: CreationClaim | None = None) -> dict[str, Any] | None:
        """Create the retry batch ``row`` of ``row["retry_of"]``; None if that batch is gone.

        The original's items in ``selection`` (``failed``, ``unprocessed``) are
        copied by the database in one ``INSERT ... SELECT``, in input order,
        with their keys, stages and payloads: none passes through this process,
        however many there are. ``check`` sees the original, locked, first.
        """
        with self.engine.begin() as conn:
            original = lock_batch(conn, row["retry_of"])
            if original is None:
                return None
            check(original)
            creator, owner = row["create_user_id"], row.get("owner_id")
            if max_active > 0 and owner is not None:
                check_quota(creator, _count_active_of(conn, owner), max_active)
            copy_retried_items(conn, original, row["id"], selection)
            sizes = conn.execute(
                sa.select(items.c.stage, sa.func.count()).where(items.c.batch_id == row["id"])
                .group_by(items.c.stage).order_by(items.c.stage)).all()
            created = _insert_batch(
                conn, {**row, **finish([[int(stage), int(count)] for stage, count in sizes])})
            if claim is not None:
                mark_created(conn, claim, row["id"])
            return created

    # -- reading --------------------------------------------------------------

    def get(self, batch_id: str) -> Row | None:
        """The batch row, or None."""
        with self.engine.connect() as conn:
            return first_row(conn.execute(sa.select(batches).where(batches.c.id == batch_id)))

    def snapshots(self, batch_ids: Sequence[str]) -> dict[str, Row]:
        """The live-progress columns of those of ``batch_ids`` that exist, by id: one query
        on the primary key per 500 ids (the progress hub's tick, ``batchq.service.live``)."""
        columns = [batches.c[name] for name in SNAPSHOT_COLUMNS]
        found: dict[str, Row] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(batch_ids), 500):
                chunk = list(batch_ids[start:start + 500])
                for row in rows(conn.execute(sa.select(*columns).where(batches.c.id.in_(chunk)))):
                    found[row["id"]] = row
        return found

    def retries_of(self, batch_id: str) -> list[str]:
        """The ids of the batch's retry batches, oldest first (on the ``retry_of`` index)."""
        query = (sa.select(batches.c.id).where(batches.c.retry_of == batch_id)
                 .order_by(batches.c.created_at, batches.c.id))
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def throttle_of(self, batch_id: str) -> tuple[float | None, int | None]:
        """The batch's ``maxItemsPerSecond`` and ``maxConcurrentJobs`` now (a primary-key read)."""
        query = (sa.select(batches.c.max_items_per_second, batches.c.max_concurrent_jobs)
                 .where(batches.c.id == batch_id))
        with self.engine.connect() as conn:
            found = conn.execute(query).first()
        return (None, None) if found is None else (found[0], found[1])

    def id_of_number(self, number: int) -> str | None:
        """The id of the batch whose integer alias is ``number``, or None."""
        query = sa.select(batches.c.id).where(batches.c.number == number)
        with self.engine.connect() as conn:
            found = conn.execute(query).scalar_one_or_none()
        return None if found is None else str(found)

    def failed_job_counts(self, batch_ids: Sequence[str]) -> dict[str, int]:
        """{batch id: pages done with at least one failed item} of ``batch_ids`` (0s left out)."""
        if not batch_ids:
            return {}
        query = (sa.select(pages.c.batch_id, sa.func.count())
                 .where(pages.c.batch_id.in_(list(batch_ids)), pages.c.failed > 0)
                 .group_by(pages.c.batch_id))
        with self.engine.connect() as conn:
            return {str(batch_id): int(count) for batch_id, count in conn.execute(query)}

    def active_ids(self) -> list[str]:
        """Ids of batches that can still make progress."""
        query = sa.select(batches.c.id).where(batches.c.status.in_(status_values(ACTIVE_STATUSES)))
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def count_awaiting_seed(self, seeded_before: datetime) -> int:
        """Runnable batches with pages still to create (or a source to read) whose last
        seed step was before ``seeded_before``: each one's seed message is in the broker,
        or lost."""
        last_seed = sa.func.coalesce(batches.c.seeded_at, batches.c.created_at)
        query = (
            sa.select(sa.func.count()).select_from(batches)
            .where(batches.c.status.in_([BatchStatus.WAITING.value,
                                         BatchStatus.PROCESSING.value]))
            .where(sa.not_(batches.c.suspended), batches.c.stop_reason.is_(None),
                   batches.c.finalizer.is_(None), last_seed < seeded_before)
            .where(sa.or_(batches.c.jobs_created < batches.c.total_jobs,
                          batches.c.source_exhausted.is_(False)))
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def get_with_ownership(self, batch_id: str) -> tuple[dict[str, Any], Ownership] | None:
        """The batch row and what the permission rules need to know of it, or None.

        The whole row is read with the ownership, so a view that shows the
        batch needs no second read of it.
        """
        query = (sa.select(batches, _system_wide().label("system_wide"))
                 .where(batches.c.id == batch_id))
        with self.engine.connect() as conn:
            row = first_row(conn.execute(query))
        if row is None:
            return None
        system_wide = bool(row.pop("system_wide"))
        return row, Ownership(row["create_user_id"], row["tenant_id"], system_wide,
                              owner_id=row["owner_id"])

    def find(self, scope: ReadScope, wanted: BatchFilter, order: BatchOrder,
             window: Window) -> list[Row]:
        """The batches ``scope`` covers that match ``wanted``, sorted, in ``window``."""
        with self.engine.connect() as conn:
            return rows(conn.execute(list_query(scope, wanted, order, window)))

    def count(self, scope: ReadScope, wanted: BatchFilter) -> int:
        """How many batches ``scope`` covers match ``wanted``."""
        query = (sa.select(sa.func.count()).select_from(batches)
                 .where(scope_clause(scope), *filter_clauses(wanted)))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def last_of_type(self, code: str) -> Row | None:
        """The newest batch of type ``code``, read on the (type, created_at) index; or None."""
        query = (sa.select(batches).where(batches.c.type == code)
                 .order_by(batches.c.created_at.desc(), batches.c.id.desc()).limit(1))
        with self.engine.connect() as conn:
            return first_row(conn.execute(query))

    def active_process_run(self, type_code: str) -> Row | None:
        """The active run of a batch process (at most one: ``uq_batches_active_process``)."""
        return self._process_runs(type_code, status_values(ACTIVE_STATUSES))

    def last_process_run(self, type_code: str) -> Row | None:
        """The most recently created run of a batch process, active or finished."""
        return self._process_runs(type_code, None)

    def _process_runs(self, type_code: str, statuses: Sequence[str] | None) -> Row | None:
        query = (
            sa.select(batches)
            .where(batches.c.type == type_code, batches.c.process_run.is_(True))
            .order_by(batches.c.created_at.desc(), batches.c.id.desc())
            .limit(1)
        )
        if statuses is not None:
            query = query.where(batches.c.status.in_(statuses))
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
            return None if row is None else dict(row)

    # -- control --------------------------------------------------------------

    def request_cancel(self, batch_id: str, now: datetime) -> Row | None:
        """Start a drain-style cancel; returns the batch as it was, None if it does not exist.

        The caller decides from the returned row whether the cancel was allowed;
        it only takes effect when the batch is active and not finishing.
        """
        with self.engine.begin() as conn:
            batch = lock_batch(conn, batch_id)
            if batch is None:
                return None
            if cancellable(batch):
                conn.execute(
                    sa.update(batches).where(batches.c.id == batch_id)
                    .values(status=BatchStatus.CANCELLING, stop_reason=StopReason.CANCEL)
                )
                unqueue_pages(conn, batch_id)
            return batch

    def set_suspended(self, batch_id: str, suspended: bool) -> Row | None:
        """Set the suspended flag of an active batch; returns the batch as it was."""
        with self.engine.begin() as conn:
            batch = lock_batch(conn, batch_id)
            if batch is None or batch["status"] in FINAL_STATUSES:
                return batch
            conn.execute(
                sa.update(batches).where(batches.c.id == batch_id).values(suspended=suspended)
            )
            if suspended:
                unqueue_pages(conn, batch_id)
            return batch

    def set_run_limits(self, batch_id: str, changes: Mapping[str, Any]) -> Row | None:
        """Change an active batch's ``max_items_per_second``, ``max_concurrent_jobs`` and
        ``run_windows`` (the keys of ``changes``); returns the batch as it was."""
        with self.engine.begin() as conn:
            batch = lock_batch(conn, batch_id)
            if batch is None or batch["status"] in FINAL_STATUSES:
                return batch
            conn.execute(sa.update(batches).where(batches.c.id == batch_id).values(**changes))
            return batch

    def set_description(self, batch_id: str, description: str | None) -> bool:
        """Change a batch's description."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(batches).where(batches.c.id == batch_id)
                .values(description=description)
            )
            return result.rowcount == 1

    def claim_finalizer(self, batch_id: str, token: str, now: datetime) -> bool:
        """Win the right to run the post-batch step; only one caller ever wins."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(batches)
                .where(batches.c.id == batch_id, batches.c.finalizer.is_(None))
                .where(batches.c.status.in_(_STARTABLE))
                .where(batches.c.stop_reason.is_(None))
                .values(finalizer=token, finalizing_since=now)
            )
            return result.rowcount == 1

    def complete(
        self,
        batch_id: str,
        status: BatchStatus,
        now: datetime,
        *,
        finalizer: str | None = None,
        result: Any = None,
        failure_reason: str | None = None,
        finalizing_before: datetime | None = None,
    ) -> bool:
        """Move an active batch to its final ``status``, once (a conditional update), and
        record its completion webhooks in the same transaction.

        With ``finalizer``, only the holder of that token may finish the batch;
        with ``finalizing_before``, only a finaliser that started before then
        (and so is presumed dead) is overruled.
        """
        if finalizer is not None:
            condition = batches.c.finalizer == finalizer
        elif finalizing_before is not None:
            condition = batches.c.finalizing_since < finalizing_before
        else:
            condition = batches.c.finalizer.is_(None)
        with self.engine.begin() as conn:
            batch = lock_batch(conn, batch_id)
            if batch is None:
                return False
            return complete_in(conn, batch, status, now, condition, result=result,
                               failure_reason=failure_reason)

    def delete_expired(self, now: datetime, limit: int = 100,
                       chunk_rows: int = DELETE_CHUNK_ROWS) -> list[str]:
        """Delete up to ``limit`` finished batches past their retention, with their pages,
        items, errors, result files and webhook deliveries; returns their ids.

        No transaction deletes more than about ``chunk_rows`` rows of a table, so a
        10-million-item batch goes in a thousand short transactions rather than one
        that holds locks and bloats the log for minutes. The batch row goes last: a
        cleanup that dies half-way leaves an expired batch the next run finishes.
        """
        with self.engine.connect() as conn:
            ids = list(conn.execute(
                sa.select(batches.c.id)
                .where(batches.c.expires_at < now)
                .where(batches.c.status.in_(status_values(FINAL_STATUSES)))
                .order_by(batches.c.expires_at).limit(limit)
            ).scalars())
        for batch_id in ids:
            for table in (items, item_errors, item_retries, pages):
                while self._delete_chunk(table, batch_id, chunk_rows):
                    pass
            with self.engine.begin() as conn:
                conn.execute(sa.delete(result_files).where(result_files.c.batch_id == batch_id))
                delete_of_batches(conn, [batch_id])
                conn.execute(sa.delete(batches).where(batches.c.id == batch_id))
        return ids

    def _delete_chunk(self, table: sa.Table, batch_id: str, chunk_rows: int) -> int:
        """Delete up to ``chunk_rows`` of the batch's rows of ``table``, found by its key."""
        key = [column for column in table.primary_key.columns if column.name != "batch_id"]
        chunk = sa.select(*key).where(table.c.batch_id == batch_id).limit(chunk_rows)
        with self.engine.begin() as conn:
            result = conn.execute(sa.delete(table).where(
                table.c.batch_id == batch_id, sa.tuple_(*key).in_(chunk)))
            return int(result.rowcount)


# -- helpers: each runs inside the caller's transaction, or builds a query ---------


def _count_active_of(conn: sa.Connection, user: str, lock: bool = True) -> int:
    """The active batches owned by ``user`` (a user id), counted under a lock on the user
    until the transaction ends (unless ``lock`` is false: a first, cheap look).

    So concurrent creates of one user cannot all see room for one more: on
    PostgreSQL a transaction-scoped advisory lock on the user's id is taken
    before counting; SQLite's write transactions (``BEGIN IMMEDIATE``) are
    serialised anyway. Whoever counts next sees the batches committed before it.
    """
    if lock and is_postgres(conn):
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(user))))
    return int(conn.execute(
        sa.select(sa.func.count()).select_from(batches)
        .where(batches.c.owner_id == user, batches.c.status.in_(_ACTIVE))
    ).scalar_one())


def _insert_batch(conn: sa.Connection, row: Mapping[str, Any]) -> dict[str, Any]:
    """Insert the batch row and return it with its integer alias ``number``.

    PostgreSQL numbers batches from a sequence; on SQLite, whose writers are
    serialised, the next number is the highest plus one.
    """
    full = dict(row)
    if not is_postgres(conn):
        full["number"] = _next_number(conn)
    number = conn.execute(sa.insert(batches).values(**full).returning(batches.c.number))
    full["number"] = number.scalar_one()
    return full


def _next_number(conn: sa.Connection) -> int:
    """The next integer alias on SQLite, whose write transactions run one at a time."""
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(batches.c.number), 0) + 1))
               .scalar_one())


def _lock_key(user: str) -> int:
    """A stable signed 64-bit advisory-lock key for the user (Python's hash() is salted)."""
    digest = hashlib.sha256(b"batchq:active-batches:" + user.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _constraint_of(exc: sa.exc.IntegrityError) -> str | None:
    """The name of the constraint or index ``exc`` broke, when the driver says."""
    diag = getattr(exc.orig, "diag", None)  # psycopg2
    name = getattr(diag, "constraint_name", None)
    if name:
        return str(name)
    text = str(exc.orig)  # SQLite names the columns: "UNIQUE constraint failed: batches.type"
    return ACTIVE_PROCESS_INDEX if "batches.type" in text else None


def _system_user_ids() -> sa.Select[Any]:
    return sa.select(users.c.id).where(users.c.is_system.is_(True))


#: The creators batchq itself uses (``system:schedule``); no user name holds a ':'.
BATCHQ_CREATOR_PREFIX = "system:"


def _system_wide() -> sa.ColumnElement[bool]:
    """A batch without a tenant created by a system user, by batchq itself (no creator, or a
    ``system:`` one, as scheduled runs have) or as a batch-process run."""
    return sa.and_(batches.c.tenant_id.is_(None),
                   sa.or_(batches.c.create_user_id.is_(None),
                          batches.c.create_user_id.startswith(BATCHQ_CREATOR_PREFIX,
                                                              autoescape=True),
                          batches.c.process_run.is_(True),
                          batches.c.owner_id.in_(_system_user_ids())))


def scope_clause(scope: ReadScope) -> sa.ColumnElement[bool]:
    """The WHERE clause of the batches ``scope`` covers."""
    if scope.everything:
        return sa.true()
    reach: list[sa.ColumnElement[bool]] = [
        sa.false() if scope.user_id is None else batches.c.owner_id == scope.user_id]
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
    clauses += _time_and_outcome_clauses(wanted)
    tenants: list[sa.ColumnElement[bool]] = []
    if wanted.tenant_ids is not None:
        tenants.append(batches.c.tenant_id.in_(list(wanted.tenant_ids)))
    if wanted.without_tenant:
        tenants.append(batches.c.tenant_id.is_(None))
    if tenants:
        clauses.append(sa.or_(*tenants))
    if wanted.id_prefix is not None:
        clauses.append(id_prefix_clause(wanted.id_prefix))
    return clauses


def id_prefix_clause(prefix: str) -> sa.ColumnElement[bool]:
    """Ids starting with ``prefix`` (hex digits and ``-``, as batch ids are UUIDs), as a range
    on the primary key index.

    The range runs over the hex digits before the first ``-`` only, as a
    linguistic collation may weigh ``-`` otherwise than byte order while it
    orders hex digits as bytes do; ``LIKE`` then keeps the ids with the whole
    prefix. Anything else matches no batch id.
    """
    prefix = prefix.lower()
    if not prefix or set(prefix) - set(_HEX + "-"):
        return sa.false()
    head = prefix.split("-", 1)[0]
    clauses: list[sa.ColumnElement[bool]] = [batches.c.id.like(prefix + "%")]
    if head:
        clauses.append(batches.c.id >= head)
        upper = _hex_successor(head)
        if upper is not None:
            clauses.append(batches.c.id < upper)
    return sa.and_(*clauses)


_HEX = "0123456789abcdef"


def _hex_successor(digits: str) -> str | None:
    """The least hex string above every string starting with ``digits``; None past ``ff…f``."""
    kept = digits.rstrip("f")
    if not kept:
        return None
    return kept[:-1] + _HEX[_HEX.index(kept[-1]) + 1]


def _time_and_outcome_clauses(wanted: BatchFilter) -> list[sa.ColumnElement[bool]]:
    clauses: list[sa.ColumnElement[bool]] = []
    if wanted.finished is not None:
        final = batches.c.status.in_(status_values(FINAL_STATUSES))
        clauses.append(final if wanted.finished else sa.not_(final))
    if wanted.created_from is not None:
        clauses.append(batches.c.created_at >= wanted.created_from)
    if wanted.created_before is not None:
        clauses.append(batches.c.created_at < wanted.created_before)
    if wanted.created_after is not None:
        clauses.append(batches.c.created_at > wanted.created_after)
    if wanted.with_failures is not None:
        clauses.append(batches.c.failed_items > 0 if wanted.with_failures
                       else batches.c.failed_items == 0)
    return clauses


def list_query(scope: ReadScope, wanted: BatchFilter, order: BatchOrder,
               window: Window) -> sa.Select[Any]:
    """The query of ``BatchRepository.find`` (also for EXPLAIN in bench/api.py).

    Without ``sort_by``, newest first; ties are broken by id, so paging is stable.
    """
    column = SORT_COLUMNS[order.sort_by] if order.sort_by else batches.c.created_at
    descending = order.descending if order.sort_by else True
    first = column.desc() if descending else column.asc()
    if column is batches.c.tenant_id:  # the one nullable sort: NULL last ascending, everywhere
        first = first.nulls_first() if descending else first.nulls_last()
    ordering = [first]
    if column is not batches.c.id:
        ordering.append(batches.c.id.desc() if descending else batches.c.id.asc())
    query = sa.select(*LIST_COLUMNS).where(scope_clause(scope), *filter_clauses(wanted))
    if window.after_key is not None:
        query = query.where(after_batch(column, descending, window.after_key))
    return query.order_by(*ordering).offset(window.first_result).limit(window.max_results)


def after_batch(column: sa.Column[Any], descending: bool,
                after_id: str) -> sa.ColumnElement[bool]:
    """The batches after ``after_id`` in the order (``column``, id), ``descending`` or not.

    Keyset paging: the cursor batch's sort value is read by its primary key (an
    InitPlan), and the list resumes there on the sort's index, however deep.
    Written as ``column <= v AND (column < v OR id < after)`` so that the first
    half is a range on the index; ``tenant_id``, the one nullable sort, keeps
    NULLs last ascending and first descending.
    """
    further: Callable[[Any, Any], sa.ColumnElement[bool]] = (
        operator.lt if descending else operator.gt)
    id_further = further(batches.c.id, after_id)
    if column is batches.c.id:
        return id_further
    value = sa.select(column).where(batches.c.id == after_id).scalar_subquery()
    at_most = (column <= value) if descending else (column >= value)
    non_null = sa.and_(at_most, sa.or_(further(column, value), id_further))
    if column is not batches.c.tenant_id:
        return non_null
    if descending:  # NULLs first: after a NULL come the other NULLs, then every value
        return sa.or_(sa.and_(value.is_(None), sa.or_(sa.and_(column.is_(None), id_further),
                                                         column.is_not(None))),
                      sa.and_(value.is_not(None), non_null))
    return sa.or_(sa.and_(value.is_(None), column.is_(None), id_further),
                  sa.and_(value.is_not(None), sa.or_(non_null, column.is_(None))))


