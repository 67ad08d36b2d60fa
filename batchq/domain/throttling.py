"""Throttling rules: a batch's items per second and pages at once, and each tenant's share.

A batch may be limited to ``maxItemsPerSecond`` (across every worker) and
``maxConcurrentJobs`` (pages running at once), set when it is created, by its
type, or by a tenant default, and changed while it runs (``PATCH
/batches/{id}``). ``BATCHQ_TENANT_LIMITS`` gives each tenant defaults for
those two and caps: ``maxConcurrentJobs`` bounds the pages of all of a
tenant's batches together (so one tenant never fills every worker: the
workers' other slots stay free for the other tenants' pages), and
``maxItemsPerSecond`` bounds what any one of its batches may be given.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batchq.errors import InvalidBatch

MAX_ITEMS_PER_SECOND = 100_000.0
#: A slower rate would hold a worker asleep for longer than a page should take per item.
MIN_ITEMS_PER_SECOND = 0.1
MAX_CONCURRENT_JOBS = 10_000
#: The ``BATCHQ_TENANT_LIMITS`` key whose limits apply to every tenant not listed (and to
#: batches without a tenant).
EVERY_OTHER_TENANT = "*"
_LIMIT_FIELDS = {"maxConcurrentJobs": "max_concurrent_jobs",
                 "maxItemsPerSecond": "max_items_per_second",
                 "defaultMaxConcurrentJobs": "default_max_concurrent_jobs",
                 "defaultMaxItemsPerSecond": "default_max_items_per_second"}


@dataclass(frozen=True)
class TenantLimit:
    """One tenant's caps and the defaults of its new batches; None means none."""

    max_concurrent_jobs: int | None = None
    max_items_per_second: float | None = None
    default_max_concurrent_jobs: int | None = None
    default_max_items_per_second: float | None = None


@dataclass(frozen=True)
class TenantLimits:
    """The limits of every tenant: those listed, and ``fallback`` for the rest."""

    by_tenant: Mapping[str, TenantLimit] = field(default_factory=dict)
    fallback: TenantLimit = TenantLimit()

    def of(self, tenant_id: str | None) -> TenantLimit:
        """The limits of ``tenant_id`` (None: batches without a tenant)."""
        if tenant_id is not None and tenant_id in self.by_tenant:
            return self.by_tenant[tenant_id]
        return self.fallback

    @property
    def caps_concurrency(self) -> bool:
        """Does any tenant have a cap on its running pages (so claims must count them)?"""
        limits = [*self.by_tenant.values(), self.fallback]
        return any(limit.max_concurrent_jobs is not None for limit in limits)


def parse_tenant_limits(text: str) -> TenantLimits:
    """``BATCHQ_TENANT_LIMITS``: a JSON object of tenant id (or ``*``) to its limits.

    ``{"*": {"maxConcurrentJobs": 8}, "acme": {"maxConcurrentJobs": 2,
    "defaultMaxItemsPerSecond": 100, "maxItemsPerSecond": 500}}``. Raises
    ``ValueError`` naming what is wrong.
    """
    if not text.strip():
        return TenantLimits()
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError('must be a JSON object like {"*": {"maxConcurrentJobs": 8}}')
    limits = {tenant: _parse_limit(tenant, value) for tenant, value in raw.items()}
    fallback = limits.pop(EVERY_OTHER_TENANT, TenantLimit())
    return TenantLimits(limits, fallback)


def _parse_limit(tenant: str, raw: Any) -> TenantLimit:
    if not isinstance(raw, dict) or set(raw) - set(_LIMIT_FIELDS):
        raise ValueError(f"the limits of {tenant!r} must be an object of "
                         f"{', '.join(_LIMIT_FIELDS)}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        problem = (concurrency_problem(value) if "ConcurrentJobs" in name
                   else rate_problem(value))
        if problem is not None:
            raise ValueError(f"{tenant}.{name} {problem}")
        values[_LIMIT_FIELDS[name]] = value
    return TenantLimit(**values)


def rate_problem(value: Any) -> str | None:
    """Why ``value`` is no ``maxItemsPerSecond``, or None (None itself means no limit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not MIN_ITEMS_PER_SECOND <= value <= MAX_ITEMS_PER_SECOND:
        return (f"must be a number from {MIN_ITEMS_PER_SECOND:g} to {MAX_ITEMS_PER_SECOND:g} "
                f"(or null: no limit), not {value!r}")
    return None


def concurrency_problem(value: Any) -> str | None:
    """Why ``value`` is no ``maxConcurrentJobs``, or None (None itself means no limit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) \
            or not 1 <= value <= MAX_CONCURRENT_JOBS:
        return (f"must be an integer from 1 to {MAX_CONCURRENT_JOBS} (or null: no limit), "
                f"not {value!r}")
    return None


def checked_throttle(limit: TenantLimit, tenant_id: str | None, *,
                     rate: float | None, concurrency: int | None) -> None:
    """Raise ``InvalidBatch`` unless ``rate`` and ``concurrency`` are valid within ``limit``."""
    for name, problem in (("maxItemsPerSecond", rate_problem(rate)),
                          ("maxConcurrentJobs", concurrency_problem(concurrency))):
        if problem is not None:
            raise InvalidBatch(f"{name} {problem}", {"field": name})
    tenant = "batches without a tenant" if tenant_id is None else f"tenant {tenant_id!r}"
    cap_rate, cap_jobs = limit.max_items_per_second, limit.max_concurrent_jobs
    if cap_rate is not None and (rate is None or rate > cap_rate):
        raise InvalidBatch(f"maxItemsPerSecond may be at most {cap_rate:g} for {tenant} "
                           f"(BATCHQ_TENANT_LIMITS), not {_shown(rate)}",
                           {"field": "maxItemsPerSecond", "cap": cap_rate})
    if cap_jobs is not None and concurrency is not None and concurrency > cap_jobs:
        raise InvalidBatch(f"maxConcurrentJobs may be at most {cap_jobs} for {tenant} "
                           f"(BATCHQ_TENANT_LIMITS), not {concurrency}",
                           {"field": "maxConcurrentJobs", "cap": cap_jobs})


def _shown(rate: float | None) -> str:
    return "unlimited" if rate is None else f"{rate:g}"


def claimable(claimed: int, running: int, cap: int | None) -> int:
    """How many of ``claimed`` pages may run when ``running`` (they included) run under ``cap``."""
    if cap is None:
        return claimed
    return max(0, min(claimed, cap - (running - claimed)))
