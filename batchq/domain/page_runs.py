"""A page's run: the claim a worker holds while it runs a page, and the outcome it commits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from batchq.domain.statuses import BatchStatus


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
    staged: bool = False
    #: The page's items in order (pos, seq, key, payload), read with the claim.
    items: Sequence[Mapping[str, Any]] = ()
    #: Which run of its items this page is: 1, or n > 1 on a retry page.
    item_attempt: int = 1
    #: The batch's item retry policy numbers (``ItemRetryPolicy.numbers()``), if it has one.
    retry_policy: Mapping[str, Any] | None = None
    #: The batch's ``maxItemsPerSecond`` when the page was claimed.
    max_items_per_second: float | None = None
    #: Positions of items that ignored their deadline in an earlier run: failed, not run.
    hung_positions: frozenset[int] = frozenset()


@dataclass(frozen=True)
class ClaimRequest:
    """Claim up to ``max_pages`` further pages of the batch ``like`` belongs to."""

    worker: str
    lease_until: datetime
    max_pages: int
    like: PageClaim


@dataclass(frozen=True)
class ItemFailure:
    """One failed item of a page."""

    stage: int
    pos: int
    seq: int
    key: str
    message: str
    #: How many times the item ran, this last failing run included.
    attempts: int = 1


@dataclass(frozen=True)
class ItemRetry:
    """An item that failed transiently and runs again on a retry page, ``delay`` seconds on."""

    stage: int
    pos: int
    seq: int
    key: str
    message: str
    delay: float


@dataclass(frozen=True)
class PageOutcome:
    """The result of running one page: how many succeeded and which failed."""

    batch_id: str
    page_no: int
    succeeded: int
    failures: Sequence[ItemFailure] = ()
    #: What the page's handler last passed to ``ItemContext.set_progress``, if anything.
    progress_description: str | None = None
    #: Items that neither succeeded nor failed for good: they go to a retry page.
    retries: Sequence[ItemRetry] = ()
    #: The page's ``item_attempt``, as storage read it when it counted the page.
    item_attempt: int = 1


@dataclass
class FinishResult:
    """What committing pages changed."""

    counted: bool
    needs_monitor: bool = False
    #: The final status this commit gave the batch (its last page), if any.
    finalized: BatchStatus | None = None
    #: That commit recorded webhook deliveries too (the batch has a callback URL).
    webhooks_recorded: bool = False
    next_claims: list[PageClaim] = field(default_factory=list)
    #: The seed has not created every page yet (known when the batch row was read).
    unseeded: bool = False
