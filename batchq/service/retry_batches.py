"""Retrying the failed part of a finished batch as a new batch linked to it.

``POST /batches/{id}/retry`` with ``{"items": "failed" | "unprocessed" |
"failed+unprocessed"}`` creates a batch of the same type, params and options
holding exactly those items of the original, in their order, with the same
keys. The new batch's ``retryOf`` names the original; the original lists it in
``retries``. The items are copied by the database in one ``INSERT ... SELECT``
(``batchq.storage.retry_selection``), so a retry of millions of items holds
none in memory. See docs/features.md, "Retrying the failed part".

Rights: reading the original, and creating a batch for its tenant
(``batchq.domain.permissions.tenant_of_new_batch``); the new batch counts
against the caller's quota of active batches.
"""

from __future__ import annotations

import uuid
from typing import Any

from batchq.domain.item_outcomes import ItemStatus
from batchq.domain.paging import count_pages
from batchq.domain.permissions import Caller, check_post, tenant_of_new_batch
from batchq.domain.statuses import FINAL_STATUSES, BatchStatus
from batchq.errors import BatchNotFound, Conflict, InvalidBatch
from batchq.runtime import Runtime
from batchq.service import idempotency
from batchq.service.listing import check_access
from batchq.storage.common import Row, utcnow

#: What ``items`` may name, and the item outcomes each selects.
SELECTIONS: dict[str, tuple[str, ...]] = {
    "failed": (ItemStatus.FAILED.value,),
    "unprocessed": (ItemStatus.UNPROCESSED.value,),
    "failed+unprocessed": (ItemStatus.FAILED.value, ItemStatus.UNPROCESSED.value),
}
#: The original's columns a retry batch takes over as they are.
_KEPT = ("type", "params", "secret_params", "tenant_id", "page_size", "jobs_per_seed",
         "failure_threshold", "retention_days", "retry_policy", "max_items_per_second",
         "max_concurrent_jobs", "run_windows")


def retry_batch(rt: Runtime, caller: Caller, batch_id: str, selection: str,
                description: str | None = None) -> Row:
    """Create the retry batch of ``batch_id``'s ``selection`` of items; returns its row.

    ``BatchNotFound`` outside the caller's reach, ``Forbidden`` when it may not
    create batches for the original's tenant, ``Conflict`` while the original
    is active or when it has no such item, ``QuotaExceeded`` past the quota.
    """
    if selection not in SELECTIONS:
        raise InvalidBatch(f"items must be one of {', '.join(SELECTIONS)}, not {selection!r}",
                           {"field": "items"})
    original = check_access(rt, caller, batch_id)
    tenant_of_new_batch(caller, original["tenant_id"], named=True)
    if original["type"] in rt.registry:  # a retry is a new batch of the type: its rule holds
        batch_type = rt.registry.get(original["type"])
        check_post(caller, batch_type.code, batch_type.post_requires)
    row = _retry_row(original, caller, selection, description)
    created = rt.storage.batches.create_retry(
        row, SELECTIONS[selection], lambda locked: _check_retryable(locked, selection),
        lambda sizes: {"stage_sizes": sizes, "total_items": sum(c for _s, c in sizes),
                       "total_jobs": count_pages(sizes, row["page_size"])},
        max_active=rt.settings.max_active_batches_per_user, claim=idempotency.take_claim())
    if created is None:
        raise BatchNotFound(f"No batch with id {batch_id!r}", {"batchId": batch_id})
    rt.send("seed", created["id"])
    return created


def _retry_row(original: Row, caller: Caller, selection: str,
               description: str | None) -> dict[str, Any]:
    described = description if description is not None else \
        f"Retry of the {selection.replace('+', ' and ')} items of batch {original['id']}"
    return {
        **{name: original[name] for name in _KEPT},
        "id": str(uuid.uuid4()), "status": BatchStatus.WAITING.value, "suspended": False,
        "create_user_id": caller.name, "owner_id": caller.user_id, "description": described,
        "processed_items": 0, "failed_items": 0, "jobs_created": 0, "jobs_completed": 0,
        "created_at": utcnow(), "retry_of": original["id"], "retry_selection": selection,
    }


def _check_retryable(original: Row, selection: str) -> None:
    """Refuse an original that is still active, or has none of the items asked for."""
    batch_id, status = original["id"], original["status"]
    if status not in FINAL_STATUSES:
        raise Conflict(f"Batch {batch_id} is still {status}; retry it once it has finished "
                       f"(cancel it first to retry now)",
                       {"batchId": batch_id, "status": status, "reason": "active"})
    failed = original["failed_items"]
    unprocessed = original["total_items"] - original["processed_items"]
    wanted = {"failed": failed, "unprocessed": unprocessed,
              "failed+unprocessed": failed + unprocessed}[selection]
    if not wanted:
        raise Conflict(f"Batch {batch_id} has no {selection.replace('+', ' or ')} items to "
                       f"retry ({failed} failed, {unprocessed} unprocessed)",
                       {"batchId": batch_id, "reason": "nothing-to-retry",
                        "failedItems": failed, "unprocessedItems": unprocessed})
