"""The one error tree of batchq: what went wrong, in the domain's words.

No class here knows HTTP. ``api/errors.py`` maps each class to a status code,
headers and the JSON error body; the CLI and the workers read the same classes.
"""

from __future__ import annotations

from typing import Any


class BatchqError(Exception):
    """Base of every error batchq raises on purpose: a message for a person, details for code."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class ConfigurationError(BatchqError):
    """The settings or a batch type module are wrong; raised at start-up."""


# -- the request is wrong ---------------------------------------------------------------


class InvalidRequest(BatchqError):
    """The request is malformed or breaks a rule; sending it again will not help."""


class InvalidBatch(InvalidRequest):
    """The request to create or change a batch is malformed or breaks a rule."""


class TooManyItems(InvalidBatch):
    """The batch exceeds the configured maximum number of items."""


class UploadTooLarge(InvalidRequest):
    """A request body is larger than its configured byte cap."""


class InvalidUser(InvalidRequest):
    """The request to create a user breaks a rule (a taken name, an unknown function)."""


class InvalidIdempotencyKey(InvalidRequest):
    """The ``Idempotency-Key`` is empty, too long or holds control characters."""


class IdempotencyKeyReused(InvalidRequest):
    """The idempotency key was first used with a different request."""


# -- who is asking ----------------------------------------------------------------------


class Unauthenticated(BatchqError):
    """No credential, or one that matches no user."""


class Forbidden(BatchqError):
    """The caller may see the thing but not do this to it."""


# -- what is asked for ------------------------------------------------------------------


class NotFound(BatchqError):
    """The thing asked for does not exist, or the caller may not see it."""


class BatchNotFound(NotFound):
    """No batch with that id exists (or the caller may not see it)."""


class UnknownBatchType(NotFound):
    """No batch type is registered under the code (codes are case-sensitive).

    Named in a request body (``POST /batches``), the unknown code makes the
    request invalid instead: creation raises ``InvalidBatch`` from this.
    """


class UnknownUser(NotFound):
    """No user has that name."""


class AmbiguousId(InvalidRequest):
    """A short id (an id's first characters) matches more than one batch."""


class ResultFileNotFound(NotFound):
    """The batch has no result file (yet, or at all)."""


# -- the state does not allow it ----------------------------------------------------------


class Conflict(BatchqError):
    """The batch (or process, or key) is in a state that does not allow the request."""


class ProcessAlreadyRunning(Conflict):
    """A batch process was started while a run of it is still active."""


class IdempotencyKeyInProgress(Conflict):
    """Another request with the same idempotency key is still running."""


class QuotaExceeded(BatchqError):
    """The caller already has the configured maximum of active batches; retry later."""

    def __init__(self, message: str, details: dict[str, Any] | None = None, *,
                 retry_after_seconds: int) -> None:
        super().__init__(message, details)
        self.retry_after_seconds = retry_after_seconds


# -- storage ----------------------------------------------------------------------------


class StorageUnavailable(BatchqError):
    """The database cannot be reached (down, restarting, or out of connections); retry later."""


class Unstorable(BatchqError):
    """The database refused to store a value (too large for its column, or malformed)."""


class UniqueViolation(BatchqError):
    """A row would repeat a unique value; ``constraint`` names the rule it broke."""

    def __init__(self, message: str, constraint: str | None) -> None:
        super().__init__(message, {"constraint": constraint})
        self.constraint = constraint
