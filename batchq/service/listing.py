"""Finding batches: the lists a caller may read, and one batch a caller may read or change.

Every list carries the caller's read scope (``batchq.domain.permissions.read_scope``)
into its query, so an answer never holds a batch the caller may not read; one
batch outside the caller's reach is ``BatchNotFound``, as if it did not exist
(docs/design.md, invariant 9).
"""

from __future__ import annotations

from collections.abc import Sequence

from batchq.domain.lists import BatchFilter, BatchOrder, Window
from batchq.domain.permissions import (
    Caller,
    Ownership,
    can_change,
    can_read,
    check_change,
    read_scope,
)
from batchq.errors import BatchNotFound, InvalidRequest
from batchq.runtime import Runtime
from batchq.storage.common import Row


def list_batches(rt: Runtime, caller: Caller, wanted: BatchFilter, order: BatchOrder,
                 window: Window) -> list[Row]:
    """The batches ``caller`` may read that match ``wanted``, sorted, in ``window``.

    A window ``after_key`` (a batch id) starts after that batch in the list's
    order; it must be a batch the caller may read (``InvalidRequest`` otherwise).
    """
    if window.after_key is not None:
        found = rt.storage.batches.get_with_ownership(window.after_key)
        if found is None or not can_read(caller, found[1]):
            raise InvalidRequest(f"afterKey {window.after_key!r} names no batch you may read; "
                                 "pass the id of the last batch of the previous answer",
                                 {"field": "afterKey"})
    return rt.storage.batches.find(read_scope(caller), wanted, order, window)


def count_batches(rt: Runtime, caller: Caller, wanted: BatchFilter) -> int:
    """How many batches ``caller`` may read match ``wanted``."""
    return rt.storage.batches.count(read_scope(caller), wanted)


def check_access(rt: Runtime, caller: Caller, batch_id: str, change: bool = False) -> Row:
    """The batch row, if ``caller`` may read it: ``BatchNotFound`` otherwise, and
    ``Forbidden`` when ``change`` is asked for and the caller may only read it."""
    batch, owner = _readable(rt, caller, batch_id)
    if change:
        check_change(caller, owner, batch_id)
    return batch


def batch_access(rt: Runtime, caller: Caller, batch_id: str) -> tuple[Row, bool]:
    """The batch row and whether ``caller`` may change it; ``BatchNotFound`` if it may not
    read it (the console shows only the actions the REST API would allow)."""
    batch, owner = _readable(rt, caller, batch_id)
    return batch, can_change(caller, owner)


def _readable(rt: Runtime, caller: Caller, batch_id: str) -> tuple[Row, Ownership]:
    found = rt.storage.batches.get_with_ownership(batch_id)
    if found is None or not can_read(caller, found[1]):
        raise BatchNotFound(f"No batch with id {batch_id!r}", {"batchId": batch_id})
    return found
def check_access_by_number(rt: Runtime, caller: Caller, number: int,
                           change: bool = False) -> Row:
    """``check_access`` for the batch whose integer alias is ``number`` (the CRM BatchTask Id)."""
    # Numbers are int32 (the column's type): any other is no batch's.
    batch_id = rt.storage.batches.id_of_number(number) if 0 < number < 2**31 else None
    if batch_id is None:
        raise BatchNotFound(f"No batch with number {number}", {"number": number})
    return check_access(rt, caller, batch_id, change)


def failed_job_counts(rt: Runtime, batch_ids: Sequence[str]) -> dict[str, int]:
    """{batch id: pages with at least one failed item}, for batches already read (0s omitted)."""
    return rt.storage.batches.failed_job_counts(batch_ids)
