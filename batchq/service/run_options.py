"""How a batch runs, beyond its items: its item retry policy, run windows and throttle.

Each is set when the batch is created, from the request, else its type, else
(throttle only) its tenant's defaults; run windows and the throttle may be
changed while it runs (``PATCH /batches/{id}``). Tenant caps bound the
throttle (``BATCHQ_TENANT_LIMITS``): a batch without a rate gets its tenant's
cap as its rate. See docs/features.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchq.batch_types.registry import BatchType
from batchq.domain.retry_policy import DEFAULT_POLICY, checked_overrides
from batchq.domain.run_windows import normalised
from batchq.domain.throttling import checked_throttle
from batchq.runtime import Runtime

#: An option the request did not name (distinct from an explicit null).
UNSET: Any = object()
#: The REST names of what a PATCH may change while the batch runs, and their columns.
RUN_LIMIT_FIELDS = {"max_items_per_second": "max_items_per_second",
                    "max_concurrent_jobs": "max_concurrent_jobs",
                    "run_windows": "run_windows"}


def retry_policy_numbers(batch_type: BatchType,
                         overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The numbers of the batch's item retry policy: the type's, with the request's."""
    base = batch_type.retry or DEFAULT_POLICY
    return checked_overrides(base, overrides or {}).numbers()


def run_windows_of(batch_type: BatchType, requested: Any) -> list[dict[str, str]] | None:
    """The batch's run windows: the request's (``[]`` or null: none), else its type's."""
    if requested is UNSET:
        return normalised(batch_type.run_windows, "run_windows of the type")
    return normalised(requested)


def throttle_of(rt: Runtime, batch_type: BatchType | None, tenant_id: str | None,
                rate: Any = UNSET, concurrency: Any = UNSET) -> dict[str, Any]:
    """The batch's ``max_items_per_second`` and ``max_concurrent_jobs``, checked against its
    tenant's caps: the request's, else its type's, else the tenant's default.

    ``batch_type`` None means the throttle of an existing batch being changed:
    unnamed values are not filled in then (the caller keeps the batch's own).
    """
    limit = rt.settings.tenant_limit_rules.of(tenant_id)
    if batch_type is not None:
        if rate is UNSET:
            rate = (batch_type.max_items_per_second if batch_type.max_items_per_second
                    is not None else limit.default_max_items_per_second)
        if concurrency is UNSET:
            concurrency = (batch_type.max_concurrent_jobs if batch_type.max_concurrent_jobs
                           is not None else limit.default_max_concurrent_jobs)
    if rate is None and limit.max_items_per_second is not None:
        rate = limit.max_items_per_second  # "no limit" is as much as the tenant may have
    checked_throttle(limit, tenant_id, rate=None if rate is UNSET else rate,
                     concurrency=None if concurrency is UNSET else concurrency)
    throttle = {"max_items_per_second": rate, "max_concurrent_jobs": concurrency}
    return {name: value for name, value in throttle.items() if value is not UNSET}


def changed_run_limits(rt: Runtime, batch: Mapping[str, Any],
                       changes: Mapping[str, Any]) -> dict[str, Any]:
    """The columns a PATCH changes of what limits the running ``batch``, checked."""
    columns: dict[str, Any] = {}
    if "run_windows" in changes:
        columns["run_windows"] = normalised(changes["run_windows"])
    if changes.keys() & {"max_items_per_second", "max_concurrent_jobs"}:
        columns.update(throttle_of(
            rt, None, batch["tenant_id"],
            changes.get("max_items_per_second", batch["max_items_per_second"]),
            changes.get("max_concurrent_jobs", batch["max_concurrent_jobs"])))
    return columns
