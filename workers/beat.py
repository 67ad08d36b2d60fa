"""Beat's scheduler: Celery's persistent one, which creates the folder of its state file.

Its state is when each entry last ran (a shelve file, ``beat_schedule_filename``,
in ``BATCHQ_DATA_DIR``); on a fresh clone nothing has created that folder yet.
Losing the file costs nothing: interval entries run at start, and a scheduled
type's crontab fires at its next time (docs/operations.md "Running beat").
"""

from __future__ import annotations

from pathlib import Path

from celery.beat import PersistentScheduler


class Scheduler(PersistentScheduler):
    """``PersistentScheduler`` that makes the folder of its schedule file first."""

    def setup_schedule(self) -> None:
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()
