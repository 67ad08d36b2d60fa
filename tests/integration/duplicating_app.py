"""A worker whose every execute message is sent twice (``celery -A`` this module).

It proves that a redelivered message never changes a count.
"""

from __future__ import annotations

import workers.tasks
from workers.app import CeleryDispatcher, app


class DuplicatingDispatcher(CeleryDispatcher):
    def send_execute(self, batch_id: str, page_no: int) -> None:
        super().send_execute(batch_id, page_no)
        super().send_execute(batch_id, page_no)


workers.tasks.CeleryDispatcher = DuplicatingDispatcher  # type: ignore[misc]

__all__ = ["app"]
