"""Beat's scheduler: Celery's persistent one, made safe to start on a fresh clone and twice.

Its state is when each entry last ran, in a shelve file (``beat_schedule_filename``,
in ``BATCHQ_DATA_DIR``). On a fresh clone nothing has created that folder yet, so
the scheduler makes it. Two beats sharing the file would corrupt it (the shelve
has no locking), so the first one takes an exclusive lock on ``<file>.lock`` and
a second one keeps its state in memory instead. Losing the state costs little:
interval entries run at start, and a scheduled type's crontab fires at its next
time (docs/operations.md "Running beat").
"""

from __future__ import annotations

import fcntl
import logging
import shelve
from pathlib import Path
from typing import IO, Any

from celery.beat import PersistentScheduler

log = logging.getLogger(__name__)


class Scheduler(PersistentScheduler):
    """``PersistentScheduler`` that creates its folder and never shares its file."""

    _lock: IO[bytes] | None = None

    def _open_schedule(self) -> Any:
        path = Path(self.schedule_filename)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self._lock is None and not self._take_lock(path):
            log.warning("Another beat uses the schedule file %s; this one keeps its schedule "
                        "in memory. One beat is enough: batchq's periodic runs take a "
                        "single-runner lock anyway.", path)
            return shelve.Shelf({}, writeback=True)
        return super()._open_schedule()

    def _take_lock(self, path: Path) -> bool:
        lock = (path.parent / f"{path.name}.lock").open("ab")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            return False
        self._lock = lock  # held until the process ends
        return True
