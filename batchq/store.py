"""Every query batchq makes, named after what it does.

Each state change runs in one transaction that first locks the batch row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises
writers anyway) and then changes pages with conditional updates. Because every
writer takes the batch lock first, a cancel or suspend that committed is seen by
every later claim: no page starts after it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa

from batchq.db import is_postgres
from batchq.paging import PageSpec, page_specs
from batchq.statuses import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    IN_FLIGHT_PAGES,
    BatchStatus,
    PageStatus,
    StopReason,
)
from batchq.tables import batches, item_errors, items, pages

#: A row as a read-only mapping of column name to value.
Row = Mapping[str, Any]


def utcnow() -> datetime:
    """Naive UTC, the one clock every table uses."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class PageClaim:
    """A page a worker holds under a lease, with what it needs to run it."""

    batch_id: str
    page_no: int
    stage: int
    first_pos: int
    item_count: int
    attempt: int
    type: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class ItemFailure:
    """One failed item of a page."""

    stage: int
    pos: int
    seq: int
    key: str
    message: str


@dataclass(frozen=True)
class PageOutcome:
    """The result of running one page: how many succeeded and which failed."""

    batch_id: str
    page_no: int
    succeeded: int
    failures: Sequence[ItemFailure] = ()


@dataclass
class FinishResult:
    """What committing a page changed."""

    counted: bool
    needs_monitor: bool = False
    next_claim: PageClaim | None = None


@dataclass(frozen=True)
class WorkQueueStatus:
    """Pages of a batch waiting in the broker or running, and the workers running them."""

    queued: int
    running: int
    workers: list[str] = field(default_factory=list)


def threshold_reached(
    threshold: float | None, processed: int, failed: int, total: int
) -> bool:
    """The failure-threshold rule of DESIGN.md: ratio reached once enough items ran."""
    if threshold is None or processed <= 0 or processed < min(100, total):
        return False
    return failed / processed >= threshold


class Store:
    """The storage of batches, pages, items and item errors."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- creation -------------------------------------------------------------

    def create_batch(self, row: Mapping[str, Any], item_chunks: Iterable[list[dict[str, Any]]],
                     finish: Any) -> dict[str, Any]:
        """Insert the items chunk by chunk, then the batch row, in one transaction.

        ``finish()`` is called after the last chunk and returns the batch row's
        remaining columns (totals only known once every item was read).
        """
        with self.engine.begin() as conn:
            for chunk in item_chunks:
                self._insert_items(conn, chunk)
            full = {**row, **finish()}
            conn.execute(sa.insert(batches).values(**full))
        return full

    def _insert_items(self, conn: sa.Connection, chunk: list[dict[str, Any]]) -> None:
        if not chunk:
            return
        if is_postgres(conn):
            _copy_items(conn, chunk)
        else:
            conn.execute(sa.insert(items), chunk)

    # -- reading --------------------------------------------------------------

    def get_batch(self, batch_id: str) -> Row | None:
        """The batch row, or None."""
        with self.engine.connect() as conn:
            query = sa.select(batches).where(batches.c.id == batch_id)
            row = conn.execute(query).mappings().first()
            return None if row is None else dict(row)

    def active_batch_ids(self) -> list[str]:
        """Ids of batches that can still make progress."""
        query = sa.select(batches.c.id).where(batches.c.status.in_(_values(ACTIVE_STATUSES)))
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def read_page_items(self, batch_id: str, stage: int, first_pos: int, count: int) -> list[Row]:
        """The items of one page, in order: pos, seq, key, payload."""
        query = (
            sa.select(items.c.pos, items.c.seq, items.c.key, items.c.payload)
            .where(items.c.batch_id == batch_id, items.c.stage == stage)
            .where(items.c.pos >= first_pos, items.c.pos < first_pos + count)
            .order_by(items.c.pos)
        )
        with self.engine.connect() as conn:
            return _rows(conn.execute(query))

    def item_errors(self, batch_id: str, limit: int) -> list[Row]:
        """The first ``limit`` item errors of a batch, in page order.

        Ordered by the primary key, so the read stops after ``limit`` rows
        however many items failed.
        """
        query = (
            sa.select(item_errors.c.seq, item_errors.c.key, item_errors.c.message)
            .where(item_errors.c.batch_id == batch_id)
            .order_by(item_errors.c.stage, item_errors.c.pos)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return _rows(conn.execute(query))

    def work_queue_status(self, batch_id: str) -> WorkQueueStatus:
        """How many pages wait in the broker or run, and on which workers."""
        query = (
            sa.select(pages.c.status, pages.c.worker, sa.func.count())
            .where(pages.c.batch_id == batch_id, pages.c.status.in_(IN_FLIGHT_PAGES))
            .group_by(pages.c.status, pages.c.worker)
        )
        queued = running = 0
        workers: set[str] = set()
        with self.engine.connect() as conn:
            for status, worker, count in conn.execute(query):
                if status == PageStatus.QUEUED:
                    queued += count
                else:
                    running += count
                    if worker:
                        workers.add(worker)
        return WorkQueueStatus(queued, running, sorted(workers))

    def pages_of(self, batch_id: str) -> list[Row]:
        """Every page of a batch (tests and diagnostics; not on any hot path)."""
        query = sa.select(pages).where(pages.c.batch_id == batch_id).order_by(pages.c.page_no)
        with self.engine.connect() as conn:
            return _rows(conn.execute(query))

    # -- seeding and queueing -------------------------------------------------

    def seed_pages(self, batch_id: str, now: datetime) -> tuple[int, bool]:
        """Create the next ``jobs_per_seed`` pages; returns (created, more to create)."""
        with self.engine.begin() as conn:
            batch = _lock_batch(conn, batch_id)
            if batch is None or batch["status"] in FINAL_STATUSES or batch["stop_reason"]:
                return 0, False
            specs = page_specs(batch["stage_sizes"], batch["page_size"],
                               batch["jobs_created"], batch["jobs_per_seed"])
            if specs:
                conn.execute(sa.insert(pages), [_page_row(batch_id, spec) for spec in specs])
            created = batch["jobs_created"] + len(specs)
            conn.execute(
                sa.update(batches).where(batches.c.id == batch_id)
                .values(jobs_created=created, seeded_at=now)
            )
            return len(specs), created < batch["total_jobs"]

    def queue_pages(self, batch_id: str, max_queued: int, now: datetime) -> list[int]:
        """Move created pages to queued until ``max_queued`` wait; returns their numbers.

        The caller sends one execute message per returned page. If it dies before
        sending, the monitor re-sends pages that stayed queued too long.
        """
        with self.engine.begin() as conn:
            batch = _lock_batch(conn, batch_id)
            if batch is None or not _runnable(batch):
                return []
            room = max_queued - _count_pages(conn, batch_id, (PageStatus.QUEUED,))
            if room <= 0:
                return []
            query = (
                sa.select(pages.c.page_no, pages.c.stage)
                .where(pages.c.batch_id == batch_id, pages.c.status == PageStatus.CREATED)
                .order_by(pages.c.page_no).limit(room)
            )
            candidates = list(conn.execute(query))
            if len(batch["stage_sizes"]) > 1 and candidates:
                stage = _current_stage(conn, batch_id)
                candidates = [c for c in candidates if c.stage == stage]
            page_nos = [c.page_no for c in candidates]
            if page_nos:
                conn.execute(
                    sa.update(pages)
                    .where(pages.c.batch_id == batch_id, pages.c.page_no.in_(page_nos))
                    .values(status=PageStatus.QUEUED, queued_at=now)
                )
            return page_nos

    # -- execution ------------------------------------------------------------

    def claim_queued_page(
        self, batch_id: str, page_no: int, worker: str, now: datetime, lease_until: datetime
    ) -> PageClaim | None:
        """Claim a queued page for ``worker``; None if the batch may not run it or it is taken."""
        with self.engine.begin() as conn:
            batch = _lock_batch(conn, batch_id)
            if batch is None or not _runnable(batch):
                return None
            claimed = conn.execute(
                _claim_statement(batch_id, page_no, PageStatus.QUEUED, worker, now, lease_until)
            ).first()
            if claimed is None:
                return None
            _mark_processing(conn, batch, now)
            return _claim(batch, page_no, claimed)

    def renew_lease(self, claim: PageClaim, worker: str, lease_until: datetime) -> bool:
        """Extend the lease of a page this worker still runs."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(pages)
                .where(pages.c.batch_id == claim.batch_id, pages.c.page_no == claim.page_no)
                .where(pages.c.status == PageStatus.RUNNING, pages.c.worker == worker)
                .where(pages.c.attempts == claim.attempt)
                .values(lease_until=lease_until)
            )
            return result.rowcount == 1

    def finish_page(
        self,
        outcome: PageOutcome,
        now: datetime,
        *,
        claim_next_for: tuple[str, datetime] | None = None,
        only_if_lease_expired: bool = False,
    ) -> FinishResult:
        """Commit a page's outcome with the batch's counters, once.

        The page's end, its item errors and the counter increments are one
        transaction; a page already done is never counted again. When
        ``claim_next_for`` is (worker, lease_until), the next created page is
        claimed in the same transaction, saving a round trip per page.
        """
        with self.engine.begin() as conn:
            batch = _lock_batch(conn, outcome.batch_id)
            if batch is None:
                return FinishResult(counted=False)
            counted = _end_page(conn, outcome, now, only_if_lease_expired)
            if counted:
                batch = _count_page(conn, batch, outcome, now)
            result = FinishResult(counted=counted)
            done = batch["jobs_completed"] >= batch["total_jobs"]
            result.needs_monitor = counted and (done or batch["stop_reason"] is not None)
            if claim_next_for is not None and _runnable(batch):
                worker, lease_until = claim_next_for
                result.next_claim = _claim_next_created(conn, batch, worker, now, lease_until)
            return result

    # -- control --------------------------------------------------------------

    def request_cancel(self, batch_id: str, now: datetime) -> Row | None:
        """Start a drain-style cancel; returns the batch as it was, None if it does not exist.

        The caller decides from the returned row whether the cancel was allowed;
        it only takes effect when the batch is active and not finishing.
        """
        with self.engine.begin() as conn:
            batch = _lock_batch(conn, batch_id)
            if batch is None:
                return None
            if _cancellable(batch):
                conn.execute(
                    sa.update(batches).where(batches.c.id == batch_id)
                    .values(status=BatchStatus.CANCELLING, stop_reason=StopReason.CANCEL)
                )
                _unqueue_pages(conn, batch_id)
            return batch

    def set_suspended(self, batch_id: str, suspended: bool) -> Row | None:
        """Set the suspended flag of an active batch; returns the batch as it was."""
        with self.engine.begin() as conn:
            batch = _lock_batch(conn, batch_id)
            if batch is None or batch["status"] in FINAL_STATUSES:
                return batch
            conn.execute(
                sa.update(batches).where(batches.c.id == batch_id).values(suspended=suspended)
            )
            if suspended:
                _unqueue_pages(conn, batch_id)
            return batch

    def set_description(self, batch_id: str, description: str | None) -> bool:
        """Change a batch's description."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(batches).where(batches.c.id == batch_id)
                .values(description=description)
            )
            return result.rowcount == 1

    # -- monitoring -----------------------------------------------------------

    def expired_pages(self, batch_id: str, now: datetime) -> list[Row]:
        """Running pages whose lease ran out: their worker died or hangs."""
        query = (
            sa.select(pages)
            .where(pages.c.batch_id == batch_id, pages.c.status == PageStatus.RUNNING)
            .where(pages.c.lease_until < now)
            .order_by(pages.c.page_no)
        )
        with self.engine.connect() as conn:
            return _rows(conn.execute(query))

    def release_expired_page(self, batch_id: str, page_no: int, now: datetime) -> str | None:
        """Put a page whose lease expired back: queued if the batch runs, else created.

        Returns the new page status, or None when the page was finished meanwhile.
        """
        with self.engine.begin() as conn:
            batch = _lock_batch(conn, batch_id)
            if batch is None:
                return None
            status = PageStatus.QUEUED if _runnable(batch) else PageStatus.CREATED
            result = conn.execute(
                sa.update(pages)
                .where(pages.c.batch_id == batch_id, pages.c.page_no == page_no)
                .where(pages.c.status == PageStatus.RUNNING, pages.c.lease_until < now)
                .values(status=status, queued_at=now, lease_until=None, worker=None)
            )
            return status.value if result.rowcount == 1 else None

    def requeue_stale_pages(
        self, batch_id: str, queued_before: datetime, now: datetime
    ) -> list[int]:
        """Pages queued before ``queued_before`` whose message the broker may have lost.

        Their ``queued_at`` is refreshed; the caller sends their messages again.
        A duplicate message is harmless: only one claim of a queued page succeeds.
        """
        with self.engine.begin() as conn:
            batch = _lock_batch(conn, batch_id)
            if batch is None or not _runnable(batch):
                return []
            statement = (
                sa.update(pages)
                .where(pages.c.batch_id == batch_id, pages.c.status == PageStatus.QUEUED)
                .where(pages.c.queued_at < queued_before)
                .values(queued_at=now)
                .returning(pages.c.page_no)
            )
            return sorted(conn.execute(statement).scalars())

    def count_in_flight(self, batch_id: str) -> int:
        """Pages of the batch that are queued or running."""
        with self.engine.connect() as conn:
            return _count_pages(conn, batch_id, IN_FLIGHT_PAGES)

    def claim_finalizer(self, batch_id: str, token: str, now: datetime) -> bool:
        """Win the right to run the post-batch step; only one caller ever wins."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(batches)
                .where(batches.c.id == batch_id, batches.c.finalizer.is_(None))
                .where(batches.c.status.in_(_values({BatchStatus.WAITING, BatchStatus.PROCESSING})))
                .where(batches.c.stop_reason.is_(None))
                .values(finalizer=token, finalizing_since=now)
            )
            return result.rowcount == 1

    def complete_batch(
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
        """Move an active batch to its final ``status``, once (a conditional update).

        With ``finalizer``, only the holder of that token may finish the batch;
        with ``finalizing_before``, only a finaliser that started before then
        (and so is presumed dead) is overruled.
        """
        statement = (
            sa.update(batches)
            .where(batches.c.id == batch_id, batches.c.status.in_(_values(ACTIVE_STATUSES)))
            .values(status=status, finished_at=now, failure_reason=failure_reason)
        )
        if finalizer is not None:
            statement = statement.where(batches.c.finalizer == finalizer)
        elif finalizing_before is not None:
            statement = statement.where(batches.c.finalizing_since < finalizing_before)
        else:
            statement = statement.where(batches.c.finalizer.is_(None))
        if result is not None:
            statement = statement.values(result=result)
        with self.engine.begin() as conn:
            batch = _lock_batch(conn, batch_id)
            if batch is None:
                return False
            expires_at = now + timedelta(days=batch["retention_days"])
            return conn.execute(statement.values(expires_at=expires_at)).rowcount == 1

    # -- cleanup --------------------------------------------------------------

    def delete_expired_batches(self, now: datetime, limit: int = 100) -> list[str]:
        """Delete finished batches past their retention, with their pages, items and errors."""
        with self.engine.begin() as conn:
            ids = list(conn.execute(
                sa.select(batches.c.id)
                .where(batches.c.expires_at < now, batches.c.status.in_(_values(FINAL_STATUSES)))
                .order_by(batches.c.expires_at).limit(limit)
            ).scalars())
            for table in (items, item_errors, pages):
                conn.execute(sa.delete(table).where(table.c.batch_id.in_(ids)))
            conn.execute(sa.delete(batches).where(batches.c.id.in_(ids)))
            return ids


# -- helpers: each runs inside the caller's transaction ---------------------------


def _rows(result: sa.CursorResult[Any]) -> list[Row]:
    return cast(list[Row], list(result.mappings()))


def _values(statuses: Iterable[BatchStatus]) -> list[str]:
    return sorted(status.value for status in statuses)


def _lock_batch(conn: sa.Connection, batch_id: str) -> dict[str, Any] | None:
    query = sa.select(batches).where(batches.c.id == batch_id).with_for_update()
    row = conn.execute(query).mappings().first()
    return None if row is None else dict(row)


def _runnable(batch: Mapping[str, Any]) -> bool:
    """May a new page of this batch start?"""
    return (
        batch["status"] in (BatchStatus.WAITING, BatchStatus.PROCESSING)
        and not batch["suspended"]
        and batch["stop_reason"] is None
        and batch["finalizer"] is None
    )


def _cancellable(batch: Mapping[str, Any]) -> bool:
    return (
        batch["status"] in (BatchStatus.WAITING, BatchStatus.PROCESSING)
        and batch["stop_reason"] is None
        and batch["finalizer"] is None
    )


def _page_row(batch_id: str, spec: PageSpec) -> dict[str, Any]:
    return {
        "batch_id": batch_id, "page_no": spec.page_no, "stage": spec.stage,
        "first_pos": spec.first_pos, "item_count": spec.item_count,
        "status": PageStatus.CREATED.value, "attempts": 0, "succeeded": 0, "failed": 0,
    }


def _count_pages(conn: sa.Connection, batch_id: str, statuses: Iterable[str]) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(pages)
        .where(pages.c.batch_id == batch_id, pages.c.status.in_([str(s) for s in statuses]))
    )
    return int(conn.execute(query).scalar_one())


def _current_stage(conn: sa.Connection, batch_id: str) -> int | None:
    """The lowest stage with an unfinished page: only its pages may start."""
    query = sa.select(sa.func.min(pages.c.stage)).where(
        pages.c.batch_id == batch_id, pages.c.status != PageStatus.DONE
    )
    return conn.execute(query).scalar()


def _unqueue_pages(conn: sa.Connection, batch_id: str) -> None:
    """Take queued pages back to created, so their pending messages become no-ops."""
    conn.execute(
        sa.update(pages)
        .where(pages.c.batch_id == batch_id, pages.c.status == PageStatus.QUEUED)
        .values(status=PageStatus.CREATED, queued_at=None)
    )


def _claim_statement(
    batch_id: str, page_no: int, from_status: PageStatus, worker: str,
    now: datetime, lease_until: datetime,
) -> sa.Update:
    return (
        sa.update(pages)
        .where(pages.c.batch_id == batch_id, pages.c.page_no == page_no)
        .where(pages.c.status == from_status)
        .values(status=PageStatus.RUNNING, attempts=pages.c.attempts + 1, worker=worker,
                started_at=now, lease_until=lease_until)
        .returning(pages.c.stage, pages.c.first_pos, pages.c.item_count, pages.c.attempts)
    )


def _claim(batch: Mapping[str, Any], page_no: int, claimed: sa.Row[Any]) -> PageClaim:
    return PageClaim(
        batch_id=batch["id"], page_no=page_no, stage=claimed.stage, first_pos=claimed.first_pos,
        item_count=claimed.item_count, attempt=claimed.attempts, type=batch["type"],
        params=batch["params"] or {},
    )


def _mark_processing(conn: sa.Connection, batch: Mapping[str, Any], now: datetime) -> None:
    if batch["status"] == BatchStatus.WAITING:
        conn.execute(
            sa.update(batches)
            .where(batches.c.id == batch["id"], batches.c.status == BatchStatus.WAITING)
            .values(status=BatchStatus.PROCESSING, started_at=now)
        )


def _claim_next_created(
    conn: sa.Connection, batch: Mapping[str, Any], worker: str,
    now: datetime, lease_until: datetime,
) -> PageClaim | None:
    batch_id = batch["id"]
    candidate = conn.execute(
        sa.select(pages.c.page_no, pages.c.stage)
        .where(pages.c.batch_id == batch_id, pages.c.status == PageStatus.CREATED)
        .order_by(pages.c.page_no).limit(1)
    ).first()
    if candidate is None:
        return None
    if len(batch["stage_sizes"]) > 1 and _current_stage(conn, batch_id) != candidate.stage:
        return None
    claimed = conn.execute(
        _claim_statement(batch_id, candidate.page_no, PageStatus.CREATED, worker, now, lease_until)
    ).first()
    return None if claimed is None else _claim(batch, candidate.page_no, claimed)


def _end_page(conn: sa.Connection, outcome: PageOutcome, now: datetime,
              only_if_lease_expired: bool) -> bool:
    statement = (
        sa.update(pages)
        .where(pages.c.batch_id == outcome.batch_id, pages.c.page_no == outcome.page_no)
        .where(pages.c.status != PageStatus.DONE)
        .values(status=PageStatus.DONE, finished_at=now, lease_until=None,
                succeeded=outcome.succeeded, failed=len(outcome.failures))
    )
    if only_if_lease_expired:
        statement = statement.where(
            pages.c.status == PageStatus.RUNNING, pages.c.lease_until < now
        )
    return conn.execute(statement).rowcount == 1


def _count_page(conn: sa.Connection, batch: Mapping[str, Any], outcome: PageOutcome,
                now: datetime) -> dict[str, Any]:
    """Record the page's failures and add it to the batch's counters; returns the new batch."""
    if outcome.failures:
        conn.execute(sa.insert(item_errors), [
            {"batch_id": outcome.batch_id, "stage": f.stage, "pos": f.pos, "seq": f.seq,
             "key": f.key, "message": f.message, "failed_at": now}
            for f in outcome.failures
        ])
    failed = batch["failed_items"] + len(outcome.failures)
    processed = batch["processed_items"] + outcome.succeeded + len(outcome.failures)
    changes: dict[str, Any] = {
        "processed_items": processed, "failed_items": failed,
        "jobs_completed": batch["jobs_completed"] + 1,
    }
    if batch["status"] == BatchStatus.WAITING:
        changes.update(status=BatchStatus.PROCESSING.value, started_at=now)
    if _cancellable(batch) and threshold_reached(
        batch["failure_threshold"], processed, failed, batch["total_items"]
    ):
        changes["stop_reason"] = StopReason.ABORT.value
        _unqueue_pages(conn, outcome.batch_id)
    conn.execute(sa.update(batches).where(batches.c.id == outcome.batch_id).values(**changes))
    return {**batch, **changes}


def _copy_items(conn: sa.Connection, chunk: list[dict[str, Any]]) -> None:
    """PostgreSQL's COPY: about three times the rate of a multi-row insert."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for item in chunk:
        writer.writerow((item["batch_id"], item["stage"], item["pos"], item["seq"],
                         item["key"], json.dumps(item["payload"], separators=(",", ":"))))
    buffer.seek(0)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.copy_expert(
            "COPY items (batch_id, stage, pos, seq, key, payload) FROM STDIN WITH (FORMAT csv)",
            buffer,
        )
    finally:
        cursor.close()
