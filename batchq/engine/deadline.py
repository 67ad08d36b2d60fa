"""The hard wall-clock deadline of one item, whatever its handler does.

Two layers, like Celery's soft and hard time limits:

- **Soft**, ``item_deadline``: a ``SIGALRM`` timer raises ``ItemDeadlineExceeded``
  in the handler when the deadline passes. Signals interrupt a Python loop and a
  call blocked in C that waits (``time.sleep``, a socket read, a lock), so the
  item fails with a clear error and the worker runs on. It derives from
  ``BaseException``, so a handler's ``except Exception`` does not swallow it.
  Signals reach only the main thread, where Celery's prefork pool runs tasks;
  elsewhere only the hard layer applies.
- **Hard**, in ``batchq.engine.heartbeat``: a handler that survives the alarm (it
  catches ``BaseException``, or computes in C without releasing the GIL, where
  no signal handler runs) stops its page's lease from being renewed at the
  deadline, and once ``HARD_GRACE_SECONDS`` more have passed the heartbeat ends
  the process (``on_hung``; the Celery pool starts a fresh one), so the page
  is re-run elsewhere and counted as a lost worker (invariant 3).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

#: How long after the deadline a handler that ignored the alarm is left before its
#: process is ended.
HARD_GRACE_SECONDS = 5.0


class ItemDeadlineExceeded(BaseException):
    """The item ran past its deadline; raised into the handler by the alarm."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds

    @property
    def message(self) -> str:
        """The item's error."""
        return (f"The item was stopped after its deadline of {self.seconds:g} s (the batch "
                "type's item_deadline_seconds, or BATCHQ_ITEM_TIMEOUT_SECONDS)")


def soft_deadline_available() -> bool:
    """True where the alarm can interrupt a handler: the main thread of a process with
    ``SIGALRM`` (a POSIX system)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def item_deadline(seconds: float) -> Iterator[None]:
    """Run the block under the alarm; ``ItemDeadlineExceeded`` once ``seconds`` have passed.

    The alarm fires once: were it to repeat, one firing just as the block ends
    could leave it firing into the code after it. A handler that catches it is
    the hard layer's to end.
    """
    if not soft_deadline_available():
        yield
        return

    def alarm(_signum: int, _frame: FrameType | None) -> None:
        raise ItemDeadlineExceeded(seconds)

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
