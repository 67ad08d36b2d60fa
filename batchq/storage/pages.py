"""The pages of batches: the hot path (claiming, committing outcomes, leases), seeding, repairs.

Lock order, which keeps these transactions free of deadlocks:

- a worker's transaction (claim, finish) changes page rows first and the batch
  row last, in one ``UPDATE ... RETURNING`` that applies the counter
  increments and reads the batch's flags; so the batch row, which every worker
  of the batch shares, is held only for that statement and the commit;
- every other transaction (cancel, suspend, queueing, the monitor) locks the
  batch row first and touches pages only with ``SKIP LOCKED``.

A page a worker claimed while a cancel or suspend was committing is handed
back in the same transaction once the batch row shows the flag, so it never
visibly starts: no page starts after a cancel or suspend committed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from batchq.domain.lifecycle import (
    batch_threshold_reached,
    cancellable,
    runnable,
    threshold_reason,
)
from batchq.domain.page_runs import ClaimRequest, FinishResult, PageClaim, PageOutcome
from batchq.domain.paging import page_specs
from batchq.domain.progress import WorkQueueStatus
from batchq.domain.secret_params import run_params
from batchq.domain.statuses import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    IN_FLIGHT_PAGES,
    BatchStatus,
    PageStatus,
    StopReason,
)
from batchq.storage.common import (
    Row,
    count_pages,
    current_stage,
    insert_pages,
    lock_batch,
    rows,
    skip_locked,
    unqueue_pages,
)
from batchq.storage.finalizing import finalize_with_last_page
from batchq.storage.retries import (
    clear_counted_retries,
    ready,
    retry_increments,
    retry_page_items,
    schedule_retries,
)
from batchq.storage.tables import batches, item_errors, items, pages, worker_heartbeats
from batchq.storage.throttling import StartGate


class PageRepository:
    """The pages of batches: seeding, queueing, claiming, finishing, and the monitor's repairs."""

    def __init__(self, engine: sa.Engine, gate: StartGate | None = None) -> None:
        self.engine = engine
        #: Run windows and concurrency limits, asked whenever pages are queued or claimed.
        self.gate = gate or StartGate()

    def seed(self, batch_id: str, now: datetime) -> tuple[int, bool]:
        """Create the next ``jobs_per_seed`` pages; returns (created, more to create)."""
        with self.engine.begin() as conn:
            batch = lock_batch(conn, batch_id)
            if batch is None or batch["status"] in FINAL_STATUSES or batch["stop_reason"]:
                return 0, False
            if batch["source_exhausted"] is not None:
                return 0, False  # a source batch's pages come with its chunks (add_source_chunk)
            return _seed_in(conn, batch, now)

    def queue(self, batch_id: str, max_queued: int, now: datetime) -> list[int]:
        """Move created pages to queued until ``max_queued`` wait; returns their numbers.

        The caller sends one execute message per returned page. If it dies before
        sending, the monitor re-sends pages that stayed queued too long.
        """
        with self.engine.begin() as conn:
            batch = lock_batch(conn, batch_id)
            if batch is None:
                return []
            return self._queue_in(conn, batch, max_queued, now)

    def start_in_creation(self, conn: sa.Connection, batch_id: str, max_queued: int,
                          now: datetime) -> tuple[list[int], bool]:
        """In the transaction creating a batch: its first seed step, and its first pages
        queued; returns (the queued page numbers, more pages to seed).

        The caller sends their execute messages once that transaction committed, and a
        seed message only when more remain: a small batch needs no seed hop. A message
        lost here is re-sent by the monitor, as a queued page's always is.
        """
        batch = lock_batch(conn, batch_id)
        if batch is None:
            return [], False
        _, more = _seed_in(conn, batch, now)
        return self._queue_in(conn, batch, max_queued, now), more

    def _queue_in(self, conn: sa.Connection, batch: Mapping[str, Any], max_queued: int,
                  now: datetime) -> list[int]:
        batch_id = batch["id"]
        if not runnable(batch):
            return []
        if not self.gate.window_open(batch):
            unqueue_pages(conn, batch_id)  # closed: pages queued before it closed wait
            return []
        room = max_queued - count_pages(conn, batch_id, (PageStatus.QUEUED,))
        room = self.gate.queue_room(conn, batch, room)
        if room <= 0:
            return []
        candidates = sa.select(pages.c.page_no).where(
            pages.c.batch_id == batch_id, pages.c.status == PageStatus.CREATED, ready(now))
        if len(batch["stage_sizes"]) > 1:
            candidates = candidates.where(pages.c.stage == current_stage(batch_id))
        candidates = skip_locked(conn, candidates.order_by(pages.c.page_no).limit(room))
        statement = (
            sa.update(pages)
            .where(pages.c.batch_id == batch_id, pages.c.page_no.in_(candidates))
            .where(pages.c.status == PageStatus.CREATED)
            .values(status=PageStatus.QUEUED, queued_at=now)
            .returning(pages.c.page_no)
        )
        return sorted(conn.execute(statement).scalars())

    def expired(self, batch_id: str, now: datetime,
                lost_before: datetime | None = None) -> list[Row]:
        """Running pages whose worker died or hangs: their lease ran out, or their worker's
        heartbeat is older than ``lost_before`` (``abandoned``)."""
        query = (
            sa.select(pages)
            .where(pages.c.batch_id == batch_id, pages.c.status == PageStatus.RUNNING)
            .where(abandoned(now, lost_before))
            .order_by(pages.c.page_no)
        )
        with self.engine.connect() as conn:
            return rows(conn.execute(query))

    def release_expired(self, batch_id: str, page_no: int, now: datetime,
                        lost_before: datetime | None = None) -> str | None:
        """Put a page whose lease expired back: queued if the batch runs, else created.

        Returns the new page status, or None when the page was finished meanwhile.
        """
        with self.engine.begin() as conn:
            batch = lock_batch(conn, batch_id)
            if batch is None:
                return None
            status = PageStatus.QUEUED if runnable(batch) else PageStatus.CREATED
            expired = skip_locked(
                conn,
                sa.select(pages.c.page_no)
                .where(pages.c.batch_id == batch_id, pages.c.page_no == page_no)
                .where(pages.c.status == PageStatus.RUNNING, abandoned(now, lost_before))
            )
            result = conn.execute(
                sa.update(pages)
                .where(pages.c.batch_id == batch_id, pages.c.page_no.in_(expired))
                .values(status=status, queued_at=now, lease_until=None, worker=None)
            )
            return status.value if result.rowcount == 1 else None

    def release_unfinished(self, batch_id: str, page_nos: Sequence[int], worker: str,
                           now: datetime) -> list[int]:
        """Hand back pages ``worker`` claimed but could not commit (the database went away
        mid-page), as the monitor would once their lease ran out; returns those queued."""
        with self.engine.begin() as conn:
            batch = lock_batch(conn, batch_id)
            if batch is None:
                return []
            status = PageStatus.QUEUED if runnable(batch) else PageStatus.CREATED
            mine = skip_locked(
                conn,
                sa.select(pages.c.page_no)
                .where(pages.c.batch_id == batch_id, pages.c.page_no.in_(list(page_nos)))
                .where(pages.c.status == PageStatus.RUNNING, pages.c.worker == worker)
            )
            released = conn.execute(
                sa.update(pages)
                .where(pages.c.batch_id == batch_id, pages.c.page_no.in_(mine))
                .values(status=status, queued_at=now, lease_until=None, worker=None)
                .returning(pages.c.page_no)
            ).scalars()
            return sorted(released) if status == PageStatus.QUEUED else []

    def requeue_stale(
        self, batch_id: str, queued_before: datetime, now: datetime
    ) -> list[int]:
        """Pages queued before ``queued_before`` whose message the broker may have lost.

        Their ``queued_at`` is refreshed; the caller sends their messages again.
        A duplicate message is harmless: only one claim of a queued page succeeds.
        """
        with self.engine.begin() as conn:
            batch = lock_batch(conn, batch_id)
            if batch is None or not runnable(batch):
                return []
            stale = skip_locked(
                conn,
                sa.select(pages.c.page_no)
                .where(pages.c.batch_id == batch_id, pages.c.status == PageStatus.QUEUED)
                .where(pages.c.queued_at < queued_before)
            )
            statement = (
                sa.update(pages)
                .where(pages.c.batch_id == batch_id, pages.c.page_no.in_(stale))
                .values(queued_at=now)
                .returning(pages.c.page_no)
            )
            return sorted(conn.execute(statement).scalars())

    def needing_monitor(self, now: datetime, stale_before: datetime,
                        lost_before: datetime | None = None) -> list[str]:
        """Ids of the active batches a monitor round would change anything of, in one query.

        A batch whose pages are all done, or queued since ``stale_before`` at most, or
        running under a live lease by a live worker (heartbeat since ``lost_before``),
        with at least one in flight and no seed step overdue, is left out:
        ``monitor_batch`` would find nothing to do for it (no lease to recover, no
        message to re-send, no created page to queue, nothing to finalise), and
        thousands of small batches in flight would cost a round of queries each.
        """
        page = pages.alias("page")
        of_batch = page.c.batch_id == batches.c.id
        to_repair = sa.exists().where(of_batch, sa.or_(
            page.c.status == PageStatus.CREATED,
            sa.and_(page.c.status == PageStatus.RUNNING, abandoned(now, lost_before, page)),
            sa.and_(page.c.status == PageStatus.QUEUED, page.c.queued_at < stale_before)))
        in_flight = sa.exists().where(of_batch, page.c.status.in_(IN_FLIGHT_PAGES))
        unseeded = sa.or_(batches.c.jobs_created < batches.c.total_jobs,
                          batches.c.source_exhausted.is_(False))
        seed_overdue = sa.and_(unseeded, sa.func.coalesce(batches.c.seeded_at,
                                                          batches.c.created_at) < stale_before)
        query = (sa.select(batches.c.id)
                 .where(batches.c.status.in_([s.value for s in ACTIVE_STATUSES]))
                 .where(sa.or_(to_repair, sa.not_(in_flight), seed_overdue)))
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())
    def count_queued_before(self, queued_before: datetime) -> int:
        """Pages of every batch queued before ``queued_before`` and not yet claimed."""
        query = (sa.select(sa.func.count()).select_from(pages)
                 .where(pages.c.status == PageStatus.QUEUED, pages.c.queued_at < queued_before))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def count_in_flight(self, batch_id: str) -> int:
        """Pages of the batch that are queued or running."""
        with self.engine.connect() as conn:
            return count_pages(conn, batch_id, IN_FLIGHT_PAGES)

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

    def of_batch(self, batch_id: str) -> list[Row]:
        """Every page of a batch (tests and diagnostics; not on any hot path)."""
        query = sa.select(pages).where(pages.c.batch_id == batch_id).order_by(pages.c.page_no)
        with self.engine.connect() as conn:
            return rows(conn.execute(query))

    def last_worker(self, batch_id: str) -> str | None:
        """The worker that ran the batch's last finished page, or None if none ran yet."""
        query = (sa.select(pages.c.worker)
                 .where(pages.c.batch_id == batch_id, pages.c.status == PageStatus.DONE)
                 .where(pages.c.worker.is_not(None))
                 .order_by(pages.c.page_no.desc()).limit(1))
        with self.engine.connect() as conn:
            worker = conn.execute(query).scalar()
        return str(worker) if worker else None

    def claim_queued(
        self, batch_id: str, page_no: int, worker: str, now: datetime, lease_until: datetime
    ) -> PageClaim | None:
        """Claim a queued page, with its items; None if the batch may not run it or it is taken."""
        with self.engine.begin() as conn:
            claimed = conn.execute(
                _claim_pages(batch_id, [page_no], PageStatus.QUEUED, worker, now, lease_until)
            ).first()
            if claimed is None:
                return None
            batch = _update_batch(conn, batch_id, [], now)
            if batch is None or not runnable(batch) or not self.gate.claimable(conn, batch, 1):
                _hand_back(conn, batch_id, [page_no])
                return None
            claim = _claim(batch, claimed)
            return _with_items(conn, [claim])[0]

    def renew_leases(self, claims: Sequence[PageClaim], worker: str,
                     lease_until: datetime) -> int:
        """Extend the leases of pages this worker still runs; returns how many."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(pages)
                .where(pages.c.batch_id == claims[0].batch_id)
                .where(pages.c.page_no.in_([claim.page_no for claim in claims]))
                .where(pages.c.status == PageStatus.RUNNING, pages.c.worker == worker)
                .values(lease_until=lease_until)
            )
            return int(result.rowcount)

    def mark_hung(self, batch_id: str, page_no: int, pos: int) -> None:
        """The item at ``pos`` of the page ignored its deadline: its next run fails it."""
        page = (pages.c.batch_id == batch_id, pages.c.page_no == page_no)
        with self.engine.begin() as conn:
            marked = conn.execute(
                sa.select(pages.c.hung_positions).where(*page).with_for_update()).scalar()
            if marked is None or pos not in marked:
                conn.execute(sa.update(pages).where(*page)
                             .values(hung_positions=[*(marked or ()), pos]))

    def finish_one(self, outcome: PageOutcome, now: datetime, *,
                   only_if_lease_expired: bool = False,
                   lost_before: datetime | None = None) -> FinishResult:
        """Commit one page's outcome with the batch's counters, once.

        With ``only_if_lease_expired``, only if the page is still ``abandoned``."""
        return self.finish([outcome], now, only_if_lease_expired=only_if_lease_expired,
                           lost_before=lost_before)

    def finish(
        self,
        outcomes: Sequence[PageOutcome],
        now: datetime,
        *,
        claim: ClaimRequest | None = None,
        only_if_lease_expired: bool = False,
        finalize: bool = False,
        has_post_batch: bool = True,
        lost_before: datetime | None = None,
    ) -> FinishResult:
        """Commit pages' outcomes with the batch's counters, and claim the next pages.

        Each page's end, its item errors and its counter increments are in this
        one transaction; a page already done is never counted again. With
        ``claim``, further pages are claimed (and their items read) in the same
        transaction, so a page costs a handful of statements and one commit.
        With ``finalize``, the transaction that commits the batch's last page
        also gives it its final status and records its webhooks
        (``finalize_with_last_page``), unless the type ``has_post_batch``.
        """
        batch_id = outcomes[0].batch_id if outcomes else claim.like.batch_id  # type: ignore[union-attr]
        with self.engine.begin() as conn:
            abandoned_only = abandoned(now, lost_before) if only_if_lease_expired else None
            counted = _end_pages(conn, batch_id, outcomes, now, abandoned_only)
            _insert_errors(conn, batch_id, counted, now)
            clear_counted_retries(conn, batch_id, counted)
            claims = _claim_created(conn, claim, now) if claim else []
            if not counted and not claims:
                return FinishResult(counted=False)
            claims = _with_items(conn, claims)
            batch = _update_batch(conn, batch_id, counted, now)
            if batch is None:
                return FinishResult(counted=False)
            new_retry_pages = retry_increments(counted)["new_pages"]
            schedule_retries(conn, batch_id, counted, batch["total_jobs"] - new_retry_pages, now)
            if counted and cancellable(batch) and batch_threshold_reached(batch):
                reason = threshold_reason(batch)
                _abort(conn, batch_id, reason)
                # As the row now is, for finalize_with_last_page below.
                batch.update(stop_reason=StopReason.ABORT.value, failure_reason=reason)
            allowed = self.gate.claimable(conn, batch, len(claims)) if runnable(batch) else 0
            if len(claims) > allowed:
                _hand_back(conn, batch_id, [c.page_no for c in claims[allowed:]])
            claims = [_refreshed(claim, batch) for claim in claims[:allowed]]
            finished = batch["jobs_completed"] >= batch["total_jobs"]
            stopping = batch["stop_reason"] is not None
            final = None
            if finalize and counted and not claims and (finished or stopping):
                final = finalize_with_last_page(conn, batch, now, has_post_batch)
            return FinishResult(counted=bool(counted), finalized=final,
                                webhooks_recorded=final is not None
                                and bool(batch["callback_url"]),
                                needs_monitor=bool(counted) and (finished or stopping)
                                and final is None,
                                next_claims=claims,
                                unseeded=batch["jobs_created"] < batch["total_jobs"])


# -- statements, each run inside the caller's transaction ------------------------


def _seed_in(conn: sa.Connection, batch: Mapping[str, Any], now: datetime) -> tuple[int, bool]:
    """One seed step of the locked ``batch``; returns (pages created, more to create)."""
    own_pages = batch["jobs_created"] - batch["retry_jobs"]  # retry pages aside
    specs = page_specs(batch["stage_sizes"], batch["page_size"], own_pages,
                       batch["jobs_per_seed"])
    insert_pages(conn, batch["id"], specs)
    created = batch["jobs_created"] + len(specs)
    conn.execute(sa.update(batches).where(batches.c.id == batch["id"])
                 .values(jobs_created=created, seeded_at=now))
    return len(specs), created < batch["total_jobs"]
def abandoned(now: datetime, lost_before: datetime | None,
              page: sa.FromClause = pages) -> sa.ColumnElement[bool]:
    """A running page nobody runs any more: its lease ran out (its worker died, or hangs on
    one item past ``item_timeout_seconds``), or its worker process's heartbeat row was last
    renewed before ``lost_before`` (it died: found within seconds, not one lease).

    A worker without a heartbeat row is judged by its lease alone. ``page`` is the pages
    table or an alias of it.
    """
    expired = page.c.lease_until < now
    if lost_before is None:
        return expired
    lost = sa.select(worker_heartbeats.c.worker).where(
        worker_heartbeats.c.worker == page.c.worker, worker_heartbeats.c.beat_at < lost_before)
    return sa.or_(expired, sa.exists(lost))


_CLAIMED = (pages.c.page_no, pages.c.stage, pages.c.first_pos, pages.c.item_count,
            pages.c.attempts, pages.c.item_attempt, pages.c.hung_positions)


def _claim_pages(batch_id: str, page_nos: Sequence[int] | sa.Select[Any],
                 from_status: PageStatus, worker: str, now: datetime,
                 lease_until: datetime) -> sa.Update:
    return (
        sa.update(pages)
        .where(pages.c.batch_id == batch_id, pages.c.page_no.in_(page_nos))
        .where(pages.c.status == from_status)
        .values(status=PageStatus.RUNNING, attempts=pages.c.attempts + 1, worker=worker,
                started_at=now, lease_until=lease_until)
        .returning(*_CLAIMED)
    )


def _claim_created(conn: sa.Connection, request: ClaimRequest, now: datetime) -> list[PageClaim]:
    """Claim the next created pages; pages another worker is claiming are skipped."""
    like = request.like
    candidates = sa.select(pages.c.page_no).where(
        pages.c.batch_id == like.batch_id, pages.c.status == PageStatus.CREATED, ready(now))
    if like.staged:
        candidates = candidates.where(pages.c.stage == current_stage(like.batch_id))
    candidates = skip_locked(conn, candidates.order_by(pages.c.page_no).limit(request.max_pages))
    statement = _claim_pages(like.batch_id, candidates, PageStatus.CREATED, request.worker,
                             now, request.lease_until)
    claimed = sorted(conn.execute(statement), key=lambda row: row.page_no)
    return [replace(like, page_no=row.page_no, stage=row.stage, first_pos=row.first_pos,
                    item_count=row.item_count, attempt=row.attempts,
                    item_attempt=row.item_attempt, hung_positions=_hung(row), items=())
            for row in claimed]


def _claim(batch: Mapping[str, Any], claimed: sa.Row[Any]) -> PageClaim:
    return PageClaim(
        batch_id=batch["id"], page_no=claimed.page_no, stage=claimed.stage,
        first_pos=claimed.first_pos, item_count=claimed.item_count, attempt=claimed.attempts,
        type=batch["type"], params=run_params(batch),
        staged=len(batch["stage_sizes"]) > 1, item_attempt=claimed.item_attempt,
        retry_policy=batch["retry_policy"], max_items_per_second=batch["max_items_per_second"],
        hung_positions=_hung(claimed),
    )


def _hung(claimed: sa.Row[Any]) -> frozenset[int]:
    return frozenset(int(pos) for pos in claimed.hung_positions or ())


def _refreshed(claim: PageClaim, batch: Mapping[str, Any]) -> PageClaim:
    """A next claim with the batch's throttle and retry policy as the batch row has them now."""
    return replace(claim, retry_policy=batch["retry_policy"],
                   max_items_per_second=batch["max_items_per_second"])


def _hand_back(conn: sa.Connection, batch_id: str, page_nos: Sequence[int]) -> None:
    """Undo claims made in this transaction: the pages never started."""
    conn.execute(
        sa.update(pages)
        .where(pages.c.batch_id == batch_id, pages.c.page_no.in_(page_nos))
        .values(status=PageStatus.CREATED, attempts=pages.c.attempts - 1, worker=None,
                started_at=None, lease_until=None)
    )


def _with_items(conn: sa.Connection, claims: list[PageClaim]) -> list[PageClaim]:
    """The claims with their items, read in one statement (and one for retry pages)."""
    retried = [claim.page_no for claim in claims if claim.item_attempt > 1]
    retry_items = retry_page_items(conn, claims[0].batch_id, retried) if retried else {}
    own = [claim for claim in claims if claim.item_attempt == 1]
    grouped = {**_own_page_items(conn, own), **retry_items}
    return [replace(claim, items=grouped[claim.page_no]) for claim in claims]


def _own_page_items(conn: sa.Connection, claims: list[PageClaim]) -> dict[int, list[Row]]:
    """The items of pages of the batch's own ranges, by page, read in one statement."""
    if not claims:
        return {}
    ordered = sorted(claims, key=lambda c: (c.stage, c.first_pos))
    ranges = sa.or_(*(
        sa.and_(items.c.stage == stage, items.c.pos >= first, items.c.pos < end)
        for stage, first, end in _merged_ranges(ordered)
    ))
    query = (
        sa.select(items.c.stage, items.c.pos, items.c.seq, items.c.key, items.c.payload)
        .where(items.c.batch_id == claims[0].batch_id, ranges)
        .order_by(items.c.stage, items.c.pos)
    )
    grouped: dict[int, list[Row]] = {claim.page_no: [] for claim in claims}
    index = 0
    for row in rows(conn.execute(query)):
        while (row["stage"], row["pos"]) >= (ordered[index].stage,
                                             ordered[index].first_pos + ordered[index].item_count):
            index += 1
        grouped[ordered[index].page_no].append(row)
    return grouped


def _merged_ranges(ordered: Sequence[PageClaim]) -> list[tuple[int, int, int]]:
    """(stage, first pos, end pos) ranges covering the pages, adjacent ones merged."""
    merged: list[tuple[int, int, int]] = []
    for claim in ordered:
        end = claim.first_pos + claim.item_count
        if merged and merged[-1][0] == claim.stage and merged[-1][2] == claim.first_pos:
            merged[-1] = (claim.stage, merged[-1][1], end)
        else:
            merged.append((claim.stage, claim.first_pos, end))
    return merged


def _end_pages(conn: sa.Connection, batch_id: str, outcomes: Sequence[PageOutcome],
               now: datetime, abandoned_only: sa.ColumnElement[bool] | None
               ) -> list[PageOutcome]:
    """Mark the pages done, unless they already are; returns the outcomes to count."""
    if not outcomes:
        return []
    by_page = {outcome.page_no: outcome for outcome in outcomes}
    succeeded = sa.case({o.page_no: o.succeeded for o in outcomes}, value=pages.c.page_no)
    failed = sa.case({o.page_no: len(o.failures) for o in outcomes}, value=pages.c.page_no)
    statement = (
        sa.update(pages)
        .where(pages.c.batch_id == batch_id, pages.c.page_no.in_(list(by_page)))
        .where(pages.c.status != PageStatus.DONE)
        .values(status=PageStatus.DONE, finished_at=now, lease_until=None,
                succeeded=succeeded, failed=failed)
        .returning(pages.c.page_no, pages.c.item_attempt)
    )
    if abandoned_only is not None:
        statement = statement.where(pages.c.status == PageStatus.RUNNING, abandoned_only)
    ended = sorted(conn.execute(statement).all())
    return [replace(by_page[page_no], item_attempt=item_attempt) for page_no, item_attempt in ended]


def _insert_errors(conn: sa.Connection, batch_id: str, counted: Sequence[PageOutcome],
                   now: datetime) -> None:
    errors = [
        {"batch_id": batch_id, "stage": f.stage, "pos": f.pos, "seq": f.seq, "key": f.key,
         "message": f.message, "failed_at": now, "attempts": f.attempts}
        for outcome in counted for f in outcome.failures
    ]
    if errors:
        conn.execute(sa.insert(item_errors), errors)


_WAITING_AND_RUNNABLE = sa.and_(
    batches.c.status == BatchStatus.WAITING, sa.not_(batches.c.suspended),
    batches.c.stop_reason.is_(None), batches.c.finalizer.is_(None),
)


def _update_batch(conn: sa.Connection, batch_id: str, counted: Sequence[PageOutcome],
                  now: datetime) -> dict[str, Any] | None:
    """Add the counted pages to the counters; a runnable Waiting batch becomes Processing.

    The last progress description the counted pages carry replaces the batch's.

    This is the only statement of a worker's transaction that locks the batch
    row; it returns the row as it is after the change.
    """
    processed = sum(o.succeeded + len(o.failures) for o in counted)
    failed = sum(len(o.failures) for o in counted)
    described = [o.progress_description for o in counted if o.progress_description is not None]
    retried = retry_increments(counted)
    statement = (
        sa.update(batches)
        .where(batches.c.id == batch_id)
        .values(
            processed_items=batches.c.processed_items + processed,
            failed_items=batches.c.failed_items + failed,
            jobs_completed=batches.c.jobs_completed + len(counted),
            total_jobs=batches.c.total_jobs + retried["new_pages"],
            jobs_created=batches.c.jobs_created + retried["new_pages"],
            retry_jobs=batches.c.retry_jobs + retried["new_pages"],
            retry_jobs_completed=batches.c.retry_jobs_completed + retried["completed"],
            status=sa.case((_WAITING_AND_RUNNABLE, BatchStatus.PROCESSING.value),
                           else_=batches.c.status),
            started_at=sa.case((_WAITING_AND_RUNNABLE, now), else_=batches.c.started_at),
        )
        .returning(*batches.c)
    )
    if described:  # the last page committed wins
        statement = statement.values(progress_description=described[-1])
    row = conn.execute(statement).mappings().first()
    return None if row is None else dict(row)


def _abort(conn: sa.Connection, batch_id: str, reason: str) -> None:
    """Too many items failed: drain the batch like a cancel, saying why."""
    conn.execute(
        sa.update(batches).where(batches.c.id == batch_id)
        .values(stop_reason=StopReason.ABORT.value, failure_reason=reason)
    )
    unqueue_pages(conn, batch_id)
