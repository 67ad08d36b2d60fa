"""The batch type registry: handlers registered under case-sensitive codes.

``@batch_type(code, ...)`` declares a handler as a batch type; it registers
nothing by itself. ``Registry.add_module`` registers a module's declared
handlers, and ``batchq.batch_types.loading.load_types`` builds the registry of a
process from the built-ins and the user's modules. So two runtimes in one
process (as in the tests) each hold the types they were built with, and
importing a module changes no registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from marshmallow import Schema

from batchq.batch_types.context import ItemHandler, PostBatchStep, Source
from batchq.domain.permissions import Function
from batchq.domain.retry_policy import ItemRetryPolicy
from batchq.domain.run_windows import parse_windows
from batchq.domain.schedules import parse_cron
from batchq.domain.throttling import concurrency_problem, rate_problem
from batchq.errors import ConfigurationError, InvalidBatch, UnknownBatchType

_UNSET: Any = object()
#: The longest item deadline a type may declare: a day.
MAX_ITEM_DEADLINE_SECONDS = 86400.0
#: The attribute ``@batch_type`` sets on a handler: the ``BatchType`` it declares.
MARK = "__batchq_type__"


@dataclass(frozen=True)
class BatchType:
    """A registered handler with its settings (docs/design.md "Batch types")."""

    code: str
    handler: ItemHandler
    name: str = ""
    description: str = ""
    item_schema: Schema | None = None
    #: Validates the batch's ``params`` at creation; a batch whose params fail it is refused.
    params_schema: Schema | None = None
    #: Top-level fields of ``params`` that are write-only: stored apart, shown masked
    #: (``batchq.domain.secret_params``).
    secret_params: tuple[str, ...] = ()
    page_size: int | None = None
    jobs_per_seed: int | None = None
    failure_threshold: float | None = field(default=_UNSET)
    can_cancel: bool = True
    stage_of: Callable[[Any], int] | None = None
    post_batch: PostBatchStep | None = None
    #: Finds the type's own items, read by the seed chunk by chunk (docs/batch-types.md,
    #: "Sources, batch processes and schedules").
    source: Source | None = None
    #: A 5-field cron expression (UTC): celery beat starts a run of the type on it.
    schedule: str | None = None
    #: Where the completion webhooks of the type's batches go unless a batch names another.
    callback_url: str | None = None
    #: How items that fail transiently are retried (None: only ``RetryItem``, by the
    #: default ``ItemRetryPolicy()``); a batch may override its numbers.
    retry: ItemRetryPolicy | None = None
    #: When the type's batches may start pages (``batchq.domain.run_windows``), unless a
    #: batch names its own windows.
    run_windows: Sequence[Mapping[str, Any]] | None = None
    #: Defaults of the type's batches' ``maxItemsPerSecond`` and ``maxConcurrentJobs``.
    max_items_per_second: float | None = None
    max_concurrent_jobs: int | None = None
    #: The longest one item may run, in wall-clock seconds, whatever its handler does
    #: (``batchq.engine.deadline``); None: ``BATCHQ_ITEM_TIMEOUT_SECONDS``.
    item_deadline_seconds: float | None = None
    #: Who may post items to the type (create a batch of it): the functions a caller must
    #: hold besides the right to create batches; empty: anyone who may create batches.
    post_requires: tuple[Function, ...] = ()
    #: Whether the type takes posted items at all; None: unless it has a source (a source
    #: finds its own items, so items posted to it are refused unless it says otherwise).
    accepts_items: bool | None = None
    #: Who may start a run of the type (a batch process): the functions a caller must hold;
    #: None: the rights to change every tenant's batches (a run concerns every tenant).
    start_requires: tuple[Function, ...] | None = None

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
        self._check_run_limits()

    def _check_run_limits(self) -> None:
        """Refuse run windows, throttles and deadlines a batch could not be given either."""
        deadline = self.item_deadline_seconds
        if deadline is not None and not 0 < deadline <= MAX_ITEM_DEADLINE_SECONDS:
            raise ConfigurationError(
                f"Batch type {self.code!r}: item_deadline_seconds must be more than 0 and at "
                f"most {MAX_ITEM_DEADLINE_SECONDS:g}")
        for name in ("post_requires", "start_requires"):
            try:
                object.__setattr__(self, name, _functions(getattr(self, name)))
            except ValueError as exc:
                raise ConfigurationError(f"Batch type {self.code!r}: {name}: {exc}") from None
        try:
            parse_windows(self.run_windows, "run_windows")
        except InvalidBatch as exc:
            raise ConfigurationError(f"Batch type {self.code!r}: {exc.message}") from None
        for name, problem in (("max_items_per_second", rate_problem(self.max_items_per_second)),
                              ("max_concurrent_jobs",
                               concurrency_problem(self.max_concurrent_jobs))):
            if problem is not None:
                raise ConfigurationError(f"Batch type {self.code!r}: {name} {problem}")
        if self.retry is not None and not isinstance(self.retry, ItemRetryPolicy):
            raise ConfigurationError(f"Batch type {self.code!r}: retry must be an "
                                     f"ItemRetryPolicy, not {type(self.retry).__name__}")

    def threshold(self, default: float | None) -> float | None:
        """The type's failure threshold, or ``default`` when the type sets none."""
        return default if self.failure_threshold is _UNSET else self.failure_threshold

    def deadline(self, default: float) -> float:
        """The longest one item of the type may run: its own deadline, or ``default``."""
        return default if self.item_deadline_seconds is None else self.item_deadline_seconds

    @property
    def takes_posted_items(self) -> bool:
        """May a batch of the type be created with posted items?"""
        return self.source is None if self.accepts_items is None else self.accepts_items


def _functions(names: Sequence[str] | None) -> tuple[Function, ...] | None:
    """``names`` as ``Function`` values (a ``ValueError`` names an unknown one)."""
    if names is None:
        return None
    if isinstance(names, str):
        raise ValueError("give a tuple of function names, not one string")
    return tuple(Function(name) for name in names)


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

    def add_module(self, module: ModuleType) -> int:
        """Register every handler of ``module`` marked by ``@batch_type``; returns how many."""
        declared = [getattr(value, MARK) for value in vars(module).values()
                    if isinstance(getattr(value, MARK, None), BatchType)]
        for declared_type in declared:
            self.add(declared_type)
        return len(declared)

    def get(self, code: str) -> BatchType:
        """The type registered under ``code``; raises ``UnknownBatchType`` otherwise."""
        try:
            return self._types[code]
        except KeyError:
            raise UnknownBatchType(self._unknown_code_message(code), {"type": code}) from None

    def codes(self) -> list[str]:
        """The registered codes, sorted."""
        return sorted(self._types)

    def __contains__(self, code: object) -> bool:
        return code in self._types

    def _unknown_code_message(self, code: str) -> str:
        # The registered codes are not listed: GET /batch-types shows them to those who may
        # read the registry (docs/authorization.md); a caller of POST /batches may not.
        message = f"No batch type {code!r} is registered"
        same_but_case = [known for known in self.codes() if known.lower() == code.lower()]
        if same_but_case:
            return f"{message}; codes are case-sensitive: did you mean {same_but_case[0]!r}?"
        return f"{message}; an administrator can list the types with GET /batch-types"


def batch_type(code: str, **options: Any) -> Callable[[ItemHandler], ItemHandler]:
    """Declare the decorated ``handler(payload, ctx)`` as batch type ``code``.

    A handler returns normally for success; raising fails the item (``ItemFailed``
    gives the exact message, any other exception its text). The declaration is
    checked here, when its module is imported, and registered by ``load_types``
    (or ``Registry.add_module``).
    """

    def declare(handler: ItemHandler) -> ItemHandler:
        setattr(handler, MARK, BatchType(code=code, handler=handler, **options))
        return handler

    return declare


def declared_type(handler: ItemHandler) -> BatchType:
    """The ``BatchType`` that ``@batch_type`` declared on ``handler``."""
    declared = getattr(handler, MARK, None)
    if not isinstance(declared, BatchType):
        raise ConfigurationError(f"{handler!r} is not declared with @batch_type")
    return declared
