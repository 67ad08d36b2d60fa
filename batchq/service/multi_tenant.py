"""Multi-tenant posting: one request creates the same batch for each of several tenants.

Each batch is created as if the caller had posted it with that ``tenantId``,
so every per-tenant rule applies per tenant: a tenant the caller may not
create batches for (``Forbidden``), or the caller's quota of active batches
running out (``QuotaExceeded``), is that tenant's problem and the others still
get their batch. What is wrong with the request itself (its type, params, options or items, the same
for every tenant) refuses the whole request before any batch exists.

Under an ``Idempotency-Key`` each batch marks the key in its creating
transaction (``batchq.service.idempotency``); a retry of a request that failed
midway gets the batches already made back, and only the missing ones created.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from batchq.domain.permissions import Caller, Function, tenant_of_new_batch
from batchq.errors import Forbidden, InvalidBatch, QuotaExceeded
from batchq.runtime import Runtime
from batchq.service import idempotency
from batchq.service.creation import NewBatch, create_batch
from batchq.service.idempotency import CreationClaim

#: Errors that concern one tenant only; any other error concerns the whole request.
_TENANT_PROBLEMS = (Forbidden, QuotaExceeded)


@dataclass
class MultiTenantResult:
    """{tenant: batch id} of the batches created, {tenant: [messages]} of the others."""

    posted_success: dict[str, str] = field(default_factory=dict)
    posted_problems: dict[str, list[str]] = field(default_factory=dict)


def check_multi_tenant(caller: Caller) -> None:
    """Raise ``Forbidden`` unless ``caller`` may post one batch to several tenants."""
    if not caller.holds(Function.MULTI_TENANT):
        raise Forbidden(f"User {caller.name!r} may not post to several tenants: that needs "
                        f"the {Function.MULTI_TENANT} function")


def create_for_tenants(rt: Runtime, caller: Caller, template: NewBatch,
                       items: Sequence[Any], tenant_ids: Sequence[str]) -> MultiTenantResult:
    """Create ``template`` with ``items`` once per tenant, in the order given.

    Raises the first error about the request itself (e.g. ``InvalidBatch``) while
    no batch was created; once one was, such an error is recorded per tenant. A
    tenant that got its batch in an earlier try of this request keeps that batch.
    """
    check_multi_tenant(caller)
    claim = idempotency.take_claim()
    made_before = dict(claim.created) if claim is not None else {}
    result = MultiTenantResult()
    for tenant in tenant_ids:
        if tenant in made_before:
            result.posted_success[tenant] = made_before[tenant]
            continue
        try:
            tenant_of_new_batch(caller, tenant, named=True)
            request = dataclasses.replace(template, tenant_id=tenant, creator=caller)
            with _marking(claim, tenant):
                result.posted_success[tenant] = create_batch(rt, request, items)["id"]
        except _TENANT_PROBLEMS as exc:
            result.posted_problems[tenant] = [exc.message]
        except InvalidBatch as exc:
            if not result.posted_success:
                raise
            result.posted_problems[tenant] = [exc.message]
    return result


@contextlib.contextmanager
def _marking(claim: CreationClaim | None, tenant: str) -> Iterator[None]:
    """Create ``tenant``'s batch under the request's idempotency claim, if it has one."""
    if claim is None:
        yield
        return
    with idempotency.creating_under(claim.for_tenant(tenant)):
        yield
