"""A worker whose machine's clock is five minutes behind (``celery -A`` this module).

Everything batchq writes and compares (leases, heartbeats, queue times) is the
database's clock corrected for this offset (``batchq.storage.clock``); this app
moves the machine's clock, the one a process would otherwise read.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import batchq.storage.clock
from workers.app import app

SKEW = timedelta(minutes=-5)
_real_local_utc = batchq.storage.clock.local_utc


def _skewed_local_utc() -> datetime:
    return _real_local_utc() + SKEW


batchq.storage.clock.local_utc = _skewed_local_utc

__all__ = ["app"]
