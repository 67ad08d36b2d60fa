"""Asking for a list: which batches (a filter), in which order, and which window of it.

A *window* is the slice of a list one answer holds: skip ``first_result``
rows, then at most ``max_results``. (A *page* is something else: the
execution unit, docs/design.md "Words".)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

DEFAULT_MAX_RESULTS = 100
#: The largest window any list answers.
MAX_RESULTS = 1000
#: What a list of batches may be sorted by (the names of the REST API and the CLI).
SORT_KEYS = ("batchId", "tenantId", "type", "status", "createdAt")
#: The storage also sorts by "finishedAt" and "expiresAt" (the Camunda 7 history's endTime
#: and removalTime), which only the vendor APIs offer.


@dataclass(frozen=True)
class Window:
    """A slice of a list: skip ``first_result`` rows, return at most ``max_results``.

    A cursor starts the slice after a row instead, at the cost of a look-up on
    an index however deep the row is (keyset paging): ``after_index`` after
    the item at that 0-based input position (item and error lists),
    ``after_key`` after the batch with that id, in the list's sort order.
    """

    first_result: int = 0
    max_results: int = DEFAULT_MAX_RESULTS
    after_index: int | None = None
    after_key: str | None = None


@dataclass(frozen=True)
class BatchFilter:
    """The filters of a batch list; None means "any"."""

    batch_id: str | None = None
    type: str | None = None
    status: str | None = None
    tenant_ids: Sequence[str] | None = None
    without_tenant: bool = False
    suspended: bool | None = None
    created_by: str | None = None
    #: Created at or after ``created_from``, strictly before ``created_before``, strictly
    #: after ``created_after`` (naive UTC).
    created_from: datetime | None = None
    created_before: datetime | None = None
    created_after: datetime | None = None
    #: Batches whose id starts with this (the CLI's short ids), found on the primary key.
    id_prefix: str | None = None
    #: True: only finished batches (a final status); False: only unfinished ones.
    finished: bool | None = None
    #: True: only batches with at least one failed item; False: only those without.
    with_failures: bool | None = None


@dataclass(frozen=True)
class BatchOrder:
    """How a batch list is sorted; without ``sort_by``, newest first."""

    sort_by: str | None = None
    descending: bool = False
