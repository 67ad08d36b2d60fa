"""The one error tree of batchq; the API maps each class to an HTTP status."""

from __future__ import annotations

from typing import Any


class BatchqError(Exception):
    """Base of every error batchq raises on purpose."""

    status_code = 500

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class ConfigurationError(BatchqError):
    """The settings or a batch type module are wrong; raised at start-up."""


class InvalidBatch(BatchqError):
    """The request to create or change a batch is malformed or breaks a rule."""

    status_code = 400


class TooManyItems(InvalidBatch):
    """The batch exceeds the configured maximum number of items."""

    status_code = 413


class UnknownBatchType(InvalidBatch):
    """No batch type is registered under the given code."""


class BatchNotFound(BatchqError):
    """No batch with that id exists (or the caller may not see it)."""

    status_code = 404


class Conflict(BatchqError):
    """The batch is in a state that does not allow the request."""

    status_code = 409


class ItemFailed(Exception):
    """Raised by a handler to fail one item with exactly this message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(BatchqError):
    """No credential, or one that matches no user."""

    status_code = 401


class Forbidden(BatchqError):
    """The caller may see the batch but not do this to it."""

    status_code = 403


class BatchTypeNotFound(BatchqError):
    """No batch type is registered under the code in the path (codes are case-sensitive)."""

    status_code = 404


class ProcessAlreadyRunning(Conflict):
    """A batch process was started while a run of it is still active."""


class ResultFileNotFound(BatchqError):
    """The batch has no result file (yet, or at all)."""

    status_code = 404
