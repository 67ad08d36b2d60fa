"""Who may read, change and create which batch: docs/design.md's permission table, with no I/O.

| action | own batches | own tenant | other tenants |
|---|---|---|---|
| read | any user | ADMIN_BATCHES | ADMIN_BATCHES + ADMIN_VIEW_ALL_ORGANISATIONS |
| change, cancel | ADMIN_BACKEND_SERVICES | + ADMIN_BATCHES |
|  |  |  | + ADMIN_BATCHES + ADMIN_EDIT_ALL_ORGANISATIONS |

Interpretations (docs/integrator-guide.md "Users, tokens and permissions"):
- A user without a tenant belongs to the "no tenant" group: batches without a
  tenant are its own tenant's.
- A batch without a tenant that a system user (or batchq itself: no creator)
  created runs across all tenants: it counts as every tenant's own for reading,
  and as another tenant's for changing, since a change affects every tenant.
- Whoever may change a batch may also read it (PATCH and DELETE answer with it).
- A system user may do everything.
- A new batch belongs to the caller's tenant unless the request names another;
  creating for another tenant (or for none, when the caller has one) needs the
  right to change other tenants' batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from batchq.errors import Forbidden


class Function(StrEnum):
    """The functions (rights) a user may hold."""

    ADMIN_BATCHES = "ADMIN_BATCHES"
    ADMIN_VIEW_ALL_ORGANISATIONS = "ADMIN_VIEW_ALL_ORGANISATIONS"
    ADMIN_BACKEND_SERVICES = "ADMIN_BACKEND_SERVICES"
    ADMIN_EDIT_ALL_ORGANISATIONS = "ADMIN_EDIT_ALL_ORGANISATIONS"
    MULTI_TENANT = "MULTI_TENANT"


@dataclass(frozen=True)
class Caller:
    """An authenticated user, as the permission rules see it."""

    name: str
    tenant_id: str | None = None
    functions: frozenset[Function] = frozenset()
    is_system: bool = False

    def holds(self, *functions: Function) -> bool:
        """True when the caller holds every one of ``functions`` (a system user holds all)."""
        return self.is_system or all(f in self.functions for f in functions)


@dataclass(frozen=True)
class Ownership:
    """What the rules need to know about a batch."""

    create_user_id: str | None
    tenant_id: str | None
    #: No tenant, created by a system user or by batchq itself: runs across all tenants.
    system_wide: bool = False


@dataclass(frozen=True)
class ReadScope:
    """Which batches a caller may read, in a shape a query can filter on.

    ``everything``, or the union of: batches ``user`` created; with
    ``tenant_batches``, batches whose tenant equals ``tenant_id`` (None meaning
    no tenant) and the system-wide ones.
    """

    everything: bool
    user: str
    tenant_batches: bool
    tenant_id: str | None


_ADMIN = Function.ADMIN_BATCHES
_VIEW_ALL = Function.ADMIN_VIEW_ALL_ORGANISATIONS
_BACKEND = Function.ADMIN_BACKEND_SERVICES
_EDIT_ALL = Function.ADMIN_EDIT_ALL_ORGANISATIONS


def read_scope(caller: Caller) -> ReadScope:
    """The batches ``caller`` may read."""
    everything = caller.holds(_ADMIN, _VIEW_ALL) or caller.holds(_BACKEND, _ADMIN, _EDIT_ALL)
    return ReadScope(everything=everything, user=caller.name,
                     tenant_batches=caller.holds(_ADMIN), tenant_id=caller.tenant_id)


def can_read(caller: Caller, batch: Ownership) -> bool:
    """May ``caller`` see ``batch``? Outside this reach a batch answers 404."""
    scope = read_scope(caller)
    if scope.everything or batch.create_user_id == caller.name:
        return True
    return scope.tenant_batches and (batch.system_wide or batch.tenant_id == caller.tenant_id)


def can_change(caller: Caller, batch: Ownership) -> bool:
    """May ``caller`` suspend, resume, describe or cancel ``batch``?"""
    if caller.holds(_BACKEND, _ADMIN, _EDIT_ALL):
        return True
    if batch.create_user_id == caller.name:
        return caller.holds(_BACKEND)
    own_tenant = batch.tenant_id == caller.tenant_id and not batch.system_wide
    return own_tenant and caller.holds(_BACKEND, _ADMIN)


def check_change(caller: Caller, batch: Ownership, batch_id: str) -> None:
    """Raise ``Forbidden`` unless ``caller`` may change the batch (which it can read)."""
    if not can_change(caller, batch):
        raise Forbidden(f"User {caller.name!r} may read batch {batch_id} but not change or "
                        "cancel it", {"batchId": batch_id})


def tenant_of_new_batch(caller: Caller, requested: str | None, named: bool) -> str | None:
    """The tenant of a batch ``caller`` creates; ``named`` says the request set ``tenantId``.

    Raises ``Forbidden`` when the caller may not create batches for that tenant.
    """
    tenant = requested if named else caller.tenant_id
    if tenant != caller.tenant_id and not caller.holds(_BACKEND, _ADMIN, _EDIT_ALL):
        raise Forbidden(
            f"User {caller.name!r} may only create batches for its own tenant "
            f"({caller.tenant_id!r}); other tenants need {_BACKEND}, {_ADMIN} and {_EDIT_ALL}",
            {"field": "tenantId"})
    return tenant


def can_run_processes(caller: Caller) -> bool:
    """May ``caller`` start and stop batch processes (runs across all tenants)?

    A run changes every tenant's data, so it takes the rights to change every
    tenant's batches: ADMIN_BACKEND_SERVICES + ADMIN_BATCHES + ADMIN_EDIT_ALL_ORGANISATIONS
    (a system user holds them all).
    """
    return caller.holds(_BACKEND, _ADMIN, _EDIT_ALL)


def can_read_registry(caller: Caller) -> bool:
    """May ``caller`` read the batch-process registry (``/batch-types``)?

    Each type shows its last run whoever started it, so the registry shows
    runs of every tenant: it takes the right to read every tenant's batches
    (ADMIN_BATCHES + ADMIN_VIEW_ALL_ORGANISATIONS, or the right to change them
    all, which includes reading them; a system user holds both).
    """
    return read_scope(caller).everything


def check_read_registry(caller: Caller) -> None:
    """Raise ``Forbidden`` unless ``caller`` may read the batch-process registry."""
    if not can_read_registry(caller):
        raise Forbidden(f"User {caller.name!r} may not read the batch-process registry: it "
                        f"shows the runs of every tenant, which needs {_ADMIN} and {_VIEW_ALL}",
                        {"needs": [_ADMIN.value, _VIEW_ALL.value]})
