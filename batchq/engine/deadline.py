"""The hard wall-clock deadline of one item, whatever its handler does.

Two layers, like Celery's soft and hard time limits:

- **Soft**, ``item_deadlines``: a ``SIGALRM`` timer ticking through the page raises
  ``ItemDeadlineExceeded`` in the handler once the item has run its deadline.
  Signals interrupt a Python loop and a call blocked in C that waits
  (``time.sleep``, a socket read, a lock), so the item fails with a clear
  error, within a tick of its deadline, and the worker runs on. It derives from
  ``BaseException``, so a handler's ``except Exception`` does not swallow it.
  Signals reach only the main thread, where Celery's prefork pool runs tasks;
  elsewhere only the hard layer applies.
- **Hard**, in ``batchq.engine.heartbeat``: a handler that survives the alarm (it
  catches ``BaseException``, or computes in C without releasing the GIL, where
  no signal handler runs) stops its page's lease from being renewed at the
  deadline, and once ``HARD_GRACE_SECONDS`` more have passed the heartbeat ends
  the process (``on_hung``; the Celery pool starts a fresh one), so the page
  is re-run elsewhere (invariant 3). Before that, the heartbeat records the
  item's position on its page, and the page's next run fails that item at once
  with ``hung_message`` instead of running it, and hanging, again.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchq.runtime import Runtime

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


def item_deadline_of(rt: Runtime, code: str) -> float:
    """The longest one item of type ``code`` may run (the setting, for a type not loaded)."""
    default = rt.settings.item_timeout_seconds
    return rt.registry.get(code).deadline(default) if code in rt.registry else default


def hung_message(seconds: float) -> str:
    """The error of an item that ignored its deadline, so that its worker process was ended."""
    return (f"The item ran past its deadline of {seconds:g} s and did not stop, so its worker "
            "process was ended; it is not run again (the batch type's item_deadline_seconds, "
            "or BATCHQ_ITEM_TIMEOUT_SECONDS)")


def soft_deadline_available() -> bool:
    """True where the alarm can interrupt a handler: the main thread of a process with
    ``SIGALRM`` (a POSIX system)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


class ItemWatch:
    """The item running now under a page's alarm: ``start()`` before, ``stop()`` after.

    Arming a timer per item would cost ~9 us an item (two syscalls and two
    handler swaps), more than a ``noop`` item itself; so the alarm ticks for
    the whole page, and each tick checks the running item's age, for the cost
    of one clock read an item.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._since: float | None = None

    def start(self) -> None:
        """An item starts now."""
        self._since = time.monotonic()

    def stop(self) -> None:
        """The item ended; a tick from now on raises nothing."""
        self._since = None

    def tick(self, _signum: int = 0, _frame: FrameType | None = None) -> None:
        """The alarm's handler: raise into an item past its deadline (at every tick,
        until it ends, in case the handler caught the first one)."""
        since = self._since
        if since is not None and time.monotonic() - since >= self.seconds:
            raise ItemDeadlineExceeded(self.seconds)


@contextlib.contextmanager
def item_deadlines(seconds: float) -> Iterator[ItemWatch]:
    """Run a page's items under an alarm that ticks every ``min(1 s, seconds / 4)``, so an
    item is stopped within a tick of its deadline; no tick outlives the block."""
    watch = ItemWatch(seconds)
    if not soft_deadline_available():
        yield watch
        return
    tick = min(1.0, seconds / 4)
    previous = signal.signal(signal.SIGALRM, watch.tick)
    signal.setitimer(signal.ITIMER_REAL, tick, tick)
    try:
        yield watch
    finally:
        watch.stop()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
