"""Who may read, change and create which batch: docs/design.md's permission table, with no I/O.

| action | own batches | own tenant | other tenants |
|---|---|---|---|
| read | any user | ADMIN_BATCHES | ADMIN_BATCHES + ADMIN_VIEW_ALL_ORGANISATIONS |
| change, cancel | ADMIN_BACKEND_SERVICES | + ADMIN_BATCHES |
|  |  |  | + ADMIN_BATCHES + ADMIN_EDIT_ALL_ORGANISATIONS |

Interpretations (docs/authorization.md, docs/integrator-guide.md "Users, tokens and
permissions"):
- "Own" batches are those whose owner id is the caller's stable user id, not
  its name: a user removed and added again under the same name owns none of
  the old ones.
- A user without a tenant belongs to the "no tenant" group: batches without a
  tenant are its own tenant's.
- A batch without a tenant that a system user, batchq itself (a scheduled run,
  creator ``system:...``, or none) or a batch-process start created runs across
  all tenants (system-wide): every tenant admin may read it, and only the
  edit-all rights change it, since a change affects every tenant. Its starter
  reads it as its own, but does not change it without those rights.
- Whoever may change a batch may also read it (PATCH and DELETE answer with it).
- A system user may do everything.
- A new batch belongs to the caller's tenant unless the request names another;
  creating for another tenant (or for none, when the caller has one) needs the
  right to change other tenants' batches.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    #: The stable id of the user (``users.id``); None for batchq's own callers.
    user_id: str | None = None

    def holds(self, *functions: Function) -> bool:
        """True when the caller holds every one of ``functions`` (a system user holds all)."""
        return self.is_system or all(f in self.functions for f in functions)


@dataclass(frozen=True)
class Ownership:
    """What the rules need to know about a batch."""

    create_user_id: str | None
    tenant_id: str | None
    #: No tenant, and a system user, batchq itself or a batch-process start created it:
    #: runs across all tenants.
    system_wide: bool = False
    #: The stable id of its creator, which ownership follows (None: batchq created it).
    owner_id: str | None = None

    def owned_by(self, caller: Caller) -> bool:
        """Is ``caller`` the user that created the batch (by stable id, never by name)?"""
        return self.owner_id is not None and self.owner_id == caller.user_id


@dataclass(frozen=True)
class ReadScope:
    """Which batches a caller may read, in a shape a query can filter on.

    ``everything``, or the union of: batches owned by ``user_id`` (none when it
    is None); with ``tenant_batches``, batches whose tenant equals ``tenant_id``
    (None meaning no tenant) and the system-wide ones.
    """

    everything: bool
    user_id: str | None
    tenant_batches: bool
    tenant_id: str | None


_ADMIN = Function.ADMIN_BATCHES
_VIEW_ALL = Function.ADMIN_VIEW_ALL_ORGANISATIONS
_BACKEND = Function.ADMIN_BACKEND_SERVICES
_EDIT_ALL = Function.ADMIN_EDIT_ALL_ORGANISATIONS


def read_scope(caller: Caller) -> ReadScope:
    """The batches ``caller`` may read."""
    everything = caller.holds(_ADMIN, _VIEW_ALL) or caller.holds(_BACKEND, _ADMIN, _EDIT_ALL)
    return ReadScope(everything=everything, user_id=caller.user_id,
                     tenant_batches=caller.holds(_ADMIN), tenant_id=caller.tenant_id)


def is_operator(caller: Caller) -> bool:
    """Does ``caller`` see what concerns the whole service: the registered batch types
    and the worker processes (host:pid)? Those who may read every tenant's batches do."""
    return read_scope(caller).everything


def can_read(caller: Caller, batch: Ownership) -> bool:
    """May ``caller`` see ``batch``? Outside this reach a batch answers 404."""
    scope = read_scope(caller)
    if scope.everything or batch.owned_by(caller):
        return True
    return scope.tenant_batches and (batch.system_wide or batch.tenant_id == caller.tenant_id)


def can_change(caller: Caller, batch: Ownership) -> bool:
    """May ``caller`` suspend, resume, describe or cancel ``batch``?

    A system-wide batch affects every tenant: only the edit-all rights change it,
    whoever started it.
    """
    if caller.holds(_BACKEND, _ADMIN, _EDIT_ALL):
        return True
    if batch.system_wide:
        return False
    if batch.owned_by(caller):
        return caller.holds(_BACKEND)
    return batch.tenant_id == caller.tenant_id and caller.holds(_BACKEND, _ADMIN)


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


#: What starting or stopping a batch process takes unless its type says otherwise.
RUN_RIGHTS = (_BACKEND.value, _ADMIN.value, _EDIT_ALL.value)


def can_run_processes(caller: Caller, requires: Sequence[Function] | None = None) -> bool:
    """May ``caller`` start and stop batch processes (runs across all tenants)?

    A run changes every tenant's data, so it takes the rights to change every
    tenant's batches: ADMIN_BACKEND_SERVICES + ADMIN_BATCHES + ADMIN_EDIT_ALL_ORGANISATIONS
    (a system user holds them all), unless the type says who may start it
    (``requires``: the functions its ``start_requires`` names).
    """
    if requires is not None:
        return caller.holds(*requires)
    return caller.holds(_BACKEND, _ADMIN, _EDIT_ALL)


def check_post(caller: Caller, type_code: str, requires: Sequence[Function]) -> None:
    """Raise ``Forbidden`` unless ``caller`` holds the functions a type needs of those who
    post items to it (its ``post_requires``)."""
    if not caller.holds(*requires):
        raise Forbidden(f"User {caller.name!r} may not create batches of type {type_code!r}: "
                        f"it needs {', '.join(requires)}",
                        {"type": type_code, "needs": [f.value for f in requires]})


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
