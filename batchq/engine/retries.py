"""Item retries in the engine: is an item's failure transient, and when does it run again?

A failure is transient when the handler raised ``RetryItem`` or one of its
type's ``ItemRetryPolicy.transient`` classes (``ItemFailed`` never is: it is
the handler's final word). A transient failure with attempts left becomes an
``ItemRetry``, which storage puts on a retry page that starts later
(``batchq.storage.retries``); any other failure is the item's error, with the
number of attempts it took. See docs/features.md, "Item retries".
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

from batchq.batch_types.context import ItemFailed, RetryItem
from batchq.batch_types.registry import BatchType
from batchq.domain.page_runs import ItemFailure, ItemRetry, PageClaim
from batchq.domain.retry_policy import DEFAULT_POLICY, ItemRetryPolicy, retry_delay


def policy_of(batch_type: BatchType | None, claim: PageClaim) -> ItemRetryPolicy:
    """The policy a page's items run under: the type's, with the batch's numbers."""
    declared = batch_type.retry if batch_type is not None and batch_type.retry else DEFAULT_POLICY
    return declared.overridden(claim.retry_policy)


def next_attempt_in(policy: ItemRetryPolicy, error: BaseException, attempt: int,
                    rng: Callable[[], float] = random.random) -> float | None:
    """Seconds until the item runs again after ``error`` ended attempt ``attempt``, or None
    when this failure is final."""
    if isinstance(error, ItemFailed):
        return None
    if isinstance(error, RetryItem):
        return retry_delay(policy, attempt, True, error.after, rng)
    transient = bool(policy.transient) and isinstance(error, policy.transient)
    return retry_delay(policy, attempt, transient, rng=rng)


def failed_item(policy: ItemRetryPolicy, claim: PageClaim, row: Mapping[str, Any], message: str,
                error: BaseException | None) -> ItemFailure | ItemRetry:
    """What becomes of an item of ``claim`` that failed with ``message`` (``error`` None: the
    item could not run at all): a retry later, or its final failure."""
    later = None if error is None else next_attempt_in(policy, error, claim.item_attempt)
    if later is not None:
        return ItemRetry(claim.stage, row["pos"], row["seq"], row["key"], message, later)
    return ItemFailure(claim.stage, row["pos"], row["seq"], row["key"], message,
                       claim.item_attempt)
