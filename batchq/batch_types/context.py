"""What a handler, a source and a post-batch step are given and may return.

These are the types a batch type's author writes against; ``batchq`` exports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from batchq.domain.storable import storable_text


class ItemFailed(Exception):
    """Raised by a handler to fail one item with exactly this message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RetryItem(Exception):
    """Raised by a handler: the item failed for a passing reason, run it again later.

    The item goes to a retry page of its batch that starts ``after`` seconds on
    (None: after the back-off of the batch's item retry policy), and its page
    goes on with the next item. Once the policy's ``max_attempts`` are used up,
    the item fails with ``message``.
    """

    def __init__(self, message: str = "the handler asked for a retry", *,
                 after: float | None = None) -> None:
        if after is not None and (isinstance(after, bool) or not isinstance(after, int | float)
                                  or not 0 <= after < float("inf")):
            raise ValueError(f"RetryItem(after=...) takes seconds, a number >= 0, not {after!r}")
        super().__init__(message)
        self.message = message
        self.after = None if after is None else float(after)


#: The longest progress description a batch keeps; a longer one is cut.
MAX_PROGRESS_DESCRIPTION = 1000


class ProgressNote:
    """The latest progress description a handler set while running one page."""

    def __init__(self) -> None:
        self.text: str | None = None

    def set(self, text: str) -> None:
        """Keep ``text``, cleaned of what the database cannot store and cut to length."""
        if not isinstance(text, str):
            raise TypeError(f"a progress description is a str, not {type(text).__name__}")
        self.text = storable_text(text, MAX_PROGRESS_DESCRIPTION)


@dataclass(frozen=True)
class ItemContext:
    """What a handler knows about the item it runs."""

    batch_id: str
    key: str
    stage: int
    params: Mapping[str, Any]
    progress: ProgressNote = field(default_factory=ProgressNote, repr=False, compare=False)
    #: Which run of the item this is: 1, or more once a transient failure is retried.
    attempt: int = 1

    def set_progress(self, text: str) -> None:
        """Show ``text`` as the batch's ``progressDescription`` (e.g. "Escalated 40 of 200").

        It is stored when the page's counters are committed, with no query of
        its own; the description of the last page committed wins.
        """
        self.progress.set(text)


def _no_errors() -> Iterator[tuple[str, str]]:
    return iter(())


@dataclass(frozen=True)
class BatchSummary:
    """What a post-batch step knows about the finished batch."""

    batch_id: str
    type: str
    params: Mapping[str, Any]
    total_items: int
    processed_items: int
    failed_items: int
    read_errors: Callable[[], Iterator[tuple[str, str]]] = field(
        default=_no_errors, repr=False, compare=False)

    def item_errors(self) -> Iterator[tuple[str, str]]:
        """(key, message) of every failed item, in input order, read a chunk at a time."""
        return self.read_errors()


@dataclass(frozen=True)
class SourceChunk:
    """What one call of a source returns: the next items, and where to read on.

    ``items`` take the shapes of posted items (``{"key", "payload"}`` objects or
    bare payloads, keyed by their position in the batch). ``next_cursor`` is
    any JSON value, passed to the next call; None means the source is exhausted.
    """

    items: Sequence[Any]
    next_cursor: Any = None


ItemHandler = Callable[[Any, ItemContext], Any]
#: Returns a JSON value (the ``result``), a ``PostBatchResult``, or None.
PostBatchStep = Callable[[BatchSummary], Any]
#: ``source(params, cursor, limit)``: at most ``limit`` items after ``cursor`` (None at first).
Source = Callable[[Mapping[str, Any], Any, int], SourceChunk]
