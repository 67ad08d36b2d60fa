"""Item retry policies: how often a transiently failing item runs, and how long it waits between.

A batch type declares its policy (``@batch_type(..., retry=ItemRetryPolicy(...))``);
a batch may override the numbers (``POST /batches`` ``retryPolicy``). Which
failures are transient is the type's business: its ``transient`` exception
classes, and the marker exception ``RetryItem`` a handler raises. Everything
else fails the item at once. The arithmetic here is pure; the engine applies it
(``batchq.engine.retries``) and storage puts the item on a retry page that runs
later (``batchq.storage.retries``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from batchq.errors import ConfigurationError, InvalidBatch

BACKOFFS = ("fixed", "exponential")
MAX_ATTEMPTS = 100
#: The longest wait before a retry, whatever the back-off or ``RetryItem(after=...)`` asks.
MAX_DELAY_SECONDS = 86_400.0
#: The REST names of a policy's numbers, and the attribute each sets.
FIELDS = {"maxAttempts": "max_attempts", "backoff": "backoff", "delaySeconds": "delay_seconds",
          "maxDelaySeconds": "max_delay_seconds", "jitter": "jitter"}


@dataclass(frozen=True)
class ItemRetryPolicy:
    """How an item that fails transiently is retried.

    ``max_attempts`` counts every run of the item, the first included (1: never
    retried). The wait before attempt n + 1 is ``delay_seconds`` (``fixed``) or
    ``delay_seconds * 2 ** (n - 1)`` (``exponential``), at most
    ``max_delay_seconds``; with ``jitter`` it is drawn from the upper half of
    that, so items failing together spread out. ``transient`` lists the
    exception classes that count as transient besides ``RetryItem``.
    """

    max_attempts: int = 3
    backoff: str = "exponential"
    delay_seconds: float = 1.0
    max_delay_seconds: float = 300.0
    jitter: bool = True
    transient: tuple[type[BaseException], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        problem = policy_problem(self)
        if problem is not None:
            raise ConfigurationError(f"Item retry policy: {problem}")

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after attempt number ``attempt`` (1 is the first run) failed."""
        ceiling = self.delay_seconds
        if self.backoff == "exponential":
            ceiling *= 2.0 ** min(max(attempt - 1, 0), 60)
        ceiling = min(ceiling, self.max_delay_seconds)
        return ceiling / 2 + rng() * ceiling / 2 if self.jitter else ceiling

    def numbers(self) -> dict[str, Any]:
        """The policy as stored on a batch and shown over REST (its exception classes aside)."""
        return {name: getattr(self, attribute) for name, attribute in FIELDS.items()}

    def overridden(self, stored: Mapping[str, Any] | None) -> ItemRetryPolicy:
        """This policy with the numbers a batch stored (``numbers()``) in place of its own."""
        if not stored:
            return self
        return replace(self, **{FIELDS[name]: value for name, value in stored.items()
                                if name in FIELDS})


def policy_problem(policy: ItemRetryPolicy) -> str | None:
    """What is wrong with ``policy``'s numbers, in the REST names; None when nothing is."""
    attempts = policy.max_attempts
    if isinstance(attempts, bool) or not isinstance(attempts, int) \
            or not 1 <= attempts <= MAX_ATTEMPTS:
        return f"maxAttempts must be an integer from 1 to {MAX_ATTEMPTS}, not {attempts!r}"
    if policy.backoff not in BACKOFFS:
        return f"backoff must be one of {', '.join(BACKOFFS)}, not {policy.backoff!r}"
    for name in ("delay_seconds", "max_delay_seconds"):
        value = getattr(policy, name)
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or not 0 <= value <= MAX_DELAY_SECONDS:
            rest = "delaySeconds" if name == "delay_seconds" else "maxDelaySeconds"
            return f"{rest} must be a number from 0 to {MAX_DELAY_SECONDS:g}, not {value!r}"
    if policy.max_delay_seconds < policy.delay_seconds:
        return "maxDelaySeconds must be at least delaySeconds"
    if not isinstance(policy.jitter, bool):
        return f"jitter must be true or false, not {policy.jitter!r}"
    if not all(isinstance(cls, type) and issubclass(cls, BaseException)
               for cls in policy.transient):
        return "transient must be a tuple of exception classes"
    return None


#: The policy of a type that declares none: only ``RetryItem`` is transient.
DEFAULT_POLICY = ItemRetryPolicy()


def checked_overrides(base: ItemRetryPolicy, overrides: Mapping[str, Any]) -> ItemRetryPolicy:
    """``base`` with a request's ``retryPolicy`` applied; ``InvalidBatch`` names what is wrong."""
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise InvalidBatch(f"retryPolicy has unknown fields {', '.join(unknown)}; known: "
                           f"{', '.join(FIELDS)}", {"field": "retryPolicy"})
    try:
        return base.overridden(overrides)
    except ConfigurationError as exc:
        problem = exc.message.removeprefix("Item retry policy: ")
        raise InvalidBatch(f"retryPolicy: {problem}", {"field": "retryPolicy"}) from None


def retry_delay(policy: ItemRetryPolicy, attempt: int, transient: bool,
                requested_after: float | None = None,
                rng: Callable[[], float] = random.random) -> float | None:
    """Seconds until a failed item runs again, or None when this failure is its last.

    A failure is retried when it is ``transient`` and the item has attempts
    left; ``requested_after`` (a handler's ``RetryItem(after=...)``) replaces
    the back-off, within ``MAX_DELAY_SECONDS``.
    """
    if not transient or attempt >= policy.max_attempts:
        return None
    if requested_after is not None and math.isfinite(requested_after):
        return min(max(float(requested_after), 0.0), MAX_DELAY_SECONDS)
    return policy.delay(attempt, rng)
