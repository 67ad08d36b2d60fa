"""A worker whose run windows read a fake clock (``celery -A`` this module).

The clock is the time written in ``<BATCHQ_DATA_DIR>/fake-clock`` (naive UTC,
ISO 8601), which the test moves; everything else (leases, retries) keeps the
real clock. See ``FileClock``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import workers.tasks
from batchq.runtime import Runtime
from workers.app import app

_build_runtime = workers.tasks.build_runtime


class FileClock:
    """Now is what the file says: a test sets the time of run windows across processes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self) -> datetime:
        return datetime.fromisoformat(self.path.read_text().strip())

    def set(self, when: str) -> None:
        """Write ``when`` (ISO, naive UTC) in one step, so no reader sees half of it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        partial.write_text(when)
        partial.replace(self.path)


def clock_of(data_dir: Path) -> FileClock:
    """The fake clock of the installation whose data folder is ``data_dir``."""
    return FileClock(data_dir / "fake-clock")


def _with_fake_clock(*args: Any, **kwargs: Any) -> Runtime:
    rt = _build_runtime(*args, **kwargs)
    rt.storage.pages.gate.clock = clock_of(rt.settings.data_dir)
    return rt


workers.tasks.build_runtime = _with_fake_clock

__all__ = ["app"]
