"""A page's run: the claim a worker holds while it runs a page, and the outcome it commits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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


@dataclass(frozen=True)
class PageOutcome:
    """The result of running one page: how many succeeded and which failed."""

    batch_id: str
    page_no: int
    succeeded: int
    failures: Sequence[ItemFailure] = ()
    #: What the page's handler last passed to ``ItemContext.set_progress``, if anything.
    progress_description: str | None = None


@dataclass
class FinishResult:
    """What committing pages changed."""

    counted: bool
    needs_monitor: bool = False
    next_claims: list[PageClaim] = field(default_factory=list)
    #: The seed has not created every page yet (known when the batch row was read).
    unseeded: bool = False
