"""The batch type registry: handlers registered under case-sensitive codes.

User types live in the user's own modules, named by ``BATCHQ_TYPES`` or the
``batchq.batch_types.registry`` entry-point group; importing such a module registers its types.
"""

from __future__ import annotations

import csv
import importlib
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from marshmallow import Schema

from batchq.domain.schedules import parse_cron
from batchq.domain.storable import storable_text
from batchq.errors import ConfigurationError, UnknownBatchType

_UNSET: Any = object()


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

    def set_progress(self, text: str) -> None:
        """Show ``text`` as the batch's ``progressDescription`` (e.g. "Escalated 40 of 200").

        It is stored when the page's counters are committed, with no query of
        its own; the description of the last page committed wins.
        """
        self.progress.set(text)


@dataclass(frozen=True)
class ResultFile:
    """A file a post-batch step produced, downloadable at ``GET /batches/{id}/result-file``."""

    filename: str
    content: bytes
    media_type: str = "application/octet-stream"

    @classmethod
    def csv(cls, filename: str, header: Sequence[str],
            rows: Iterable[Sequence[Any]]) -> ResultFile:
        """A UTF-8 CSV file of ``header`` and ``rows``."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
        return cls(filename, buffer.getvalue().encode("utf-8"), "text/csv; charset=utf-8")


@dataclass(frozen=True)
class PostBatchResult:
    """What a post-batch step may return to set both the ``result`` and a result file.

    A step may also return a plain JSON value: that becomes the ``result``.
    """

    result: Any = None
    file: ResultFile | None = None


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


@dataclass(frozen=True)
class BatchType:
    """A registered handler with its settings (DESIGN.md "Batch types")."""

    code: str
    handler: ItemHandler
    name: str = ""
    description: str = ""
    item_schema: Schema | None = None
    #: Validates the batch's ``params`` at creation; a batch whose params fail it is refused.
    params_schema: Schema | None = None
    page_size: int | None = None
    jobs_per_seed: int | None = None
    failure_threshold: float | None = field(default=_UNSET)
    can_cancel: bool = True
    stage_of: Callable[[Any], int] | None = None
    post_batch: PostBatchStep | None = None
    #: Finds the type's own items, read by the seed chunk by chunk (README "Sources").
    source: Source | None = None
    #: A 5-field cron expression (UTC): celery beat starts a run of the type on it.
    schedule: str | None = None

    def __post_init__(self) -> None:
        if self.source is not None and self.stage_of is not None:
            raise ConfigurationError(
                f"Batch type {self.code!r} has both a source and stage_of: a source batch "
                "runs its items in one stage, in the order the source returns them")
        if self.schedule is not None:
            if self.source is None:
                raise ConfigurationError(
                    f"Batch type {self.code!r} has a schedule but no source: a scheduled run "
                    "must find its own items")
            try:
                parse_cron(self.schedule)
            except ValueError as exc:
                raise ConfigurationError(
                    f"Batch type {self.code!r} has a bad schedule: {exc}") from exc

    def threshold(self, default: float | None) -> float | None:
        """The type's failure threshold, or ``default`` when the type sets none."""
        return default if self.failure_threshold is _UNSET else self.failure_threshold


class Registry:
    """Batch types by code. Codes are case-sensitive."""

    def __init__(self) -> None:
        self._types: dict[str, BatchType] = {}

    def add(self, batch_type: BatchType) -> BatchType:
        """Register ``batch_type``; a second type under the same code is a mistake."""
        existing = self._types.get(batch_type.code)
        if existing is not None and existing.handler is not batch_type.handler:
            raise ConfigurationError(f"Batch type {batch_type.code!r} is registered twice")
        self._types[batch_type.code] = batch_type
        return batch_type

    def get(self, code: str) -> BatchType:
        """The type registered under ``code``; raises ``UnknownBatchType`` otherwise."""
        try:
            return self._types[code]
        except KeyError:
            known = ", ".join(sorted(self._types)) or "none"
            raise UnknownBatchType(
                f"Unknown batch type {code!r}; registered types: {known}", {"type": code}
            ) from None

    def codes(self) -> list[str]:
        """The registered codes, sorted."""
        return sorted(self._types)

    def __contains__(self, code: object) -> bool:
        return code in self._types


#: The registry that ``@batch_type`` registers into.
registry = Registry()


def batch_type(code: str, **options: Any) -> Callable[[ItemHandler], ItemHandler]:
    """Register the decorated ``handler(payload, ctx)`` as batch type ``code``.

    A handler returns normally for success; raising fails the item (``ItemFailed``
    gives the exact message, any other exception its text).
    """

    def register(handler: ItemHandler) -> ItemHandler:
        registry.add(BatchType(code=code, handler=handler, **options))
        return handler

    return register


def load_types(modules: Iterable[str]) -> Registry:
    """Import the built-in types, the named modules and the ``batchq.types`` entry points."""
    importlib.import_module("batchq.batch_types.builtin")
    for name in modules:
        _import_type_module(name)
    for entry in entry_points(group="batchq.types"):
        try:
            entry.load()
        except Exception as exc:
            raise ConfigurationError(
                f"Batch type entry point {entry.name!r} ({entry.value}) failed to load: {exc}"
            ) from exc
    return registry


def _import_type_module(name: str) -> None:
    try:
        importlib.import_module(name)
    except Exception as exc:
        raise ConfigurationError(
            f"Batch type module {name!r} (from BATCHQ_TYPES) failed to import: {exc}"
        ) from exc
