"""The cleanup task: delete what is past its retention.

Finished batches go ``retentionDays`` after they finished, with their pages,
items, item errors and result file; idempotency keys go after
``BATCHQ_IDEMPOTENCY_KEY_RETENTION_HOURS``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from batchq.runtime import Runtime
from batchq.storage.common import utcnow

log = logging.getLogger(__name__)


def delete_expired_batches(rt: Runtime) -> int:
    """Delete every batch past its retention (with its pages, items, errors and result file)."""
    deleted = 0
    while ids := rt.storage.batches.delete_expired(utcnow()):
        deleted += len(ids)
        log.info("Deleted %d batches past their retention.", len(ids))
    return deleted


#: A worker heartbeat this old belongs to a process long gone (its pages were re-run
#: seconds after it died); the row is only clutter.
FORGET_WORKERS_AFTER = timedelta(days=1)


def delete_expired(rt: Runtime) -> int:
    """The cleanup task: expired batches, then expired idempotency keys; returns how many.

    One runner at a time (``single_runner``): a second beat's run, or one sent while
    a long run still deletes, is skipped and returns -1.
    """
    with rt.storage.single_runner("cleanup") as mine:
        if not mine:
            log.info("Another process is deleting expired batches; skipped.")
            return -1
        retention = timedelta(hours=rt.settings.idempotency_key_retention_hours)
        keys = rt.storage.idempotency_keys.delete_expired(utcnow() - retention)
        if keys:
            log.info("Deleted %d idempotency keys past their retention.", keys)
        rt.storage.worker_heartbeats.delete_stale(utcnow() - FORGET_WORKERS_AFTER)
        return delete_expired_batches(rt) + keys
