"""Creating a batch: validate and number the items while streaming them into storage."""

from __future__ import annotations

import contextlib
import gc
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from batchq.adapters.egress import EgressPolicy, EgressRefused
from batchq.batch_types.registry import BatchType
from batchq.domain.items import DuplicateKeys, ItemReader
from batchq.domain.paging import count_pages
from batchq.domain.permissions import Caller, check_post
from batchq.domain.secret_params import split_secrets
from batchq.domain.statuses import BatchStatus
from batchq.domain.storable import check_text, json_problem
from batchq.errors import InvalidBatch, UnknownBatchType
from batchq.runtime import Runtime
from batchq.service import idempotency
from batchq.service.run_options import UNSET, retry_policy_numbers, run_windows_of, throttle_of
from batchq.storage.common import utcnow

MAX_RETENTION_DAYS = 36_500  # 100 years; far beyond it, finishedAt + retention overflows dates


@dataclass(frozen=True)
class NewBatch:
    """A request to create a batch; ``None`` options take the type's or the settings' default."""

    type: str
    params: Mapping[str, Any] | None = None
    description: str | None = None
    tenant_id: str | None = None
    #: The creator's name when batchq itself creates the batch (``system:schedule``).
    create_user_id: str | None = None
    #: The user creating the batch: its name becomes ``createUserId``, its stable id the
    #: owner, and the type's ``post_requires`` are checked against it.
    creator: Caller | None = None
    page_size: int | None = None
    jobs_per_seed: int | None = None
    failure_threshold: float | None = UNSET
    retention_days: int | None = None
    #: Where the completion webhooks go; unset: the type's default; None: no webhook.
    callback_url: str | None = UNSET
    #: ``retryPolicy`` numbers overriding the type's item retry policy.
    retry_policy: Mapping[str, Any] | None = None
    #: ``runWindows``; unset: the type's. ``maxItemsPerSecond``, ``maxConcurrentJobs``: unset
    #: means the type's or the tenant's default, None no limit.
    run_windows: Any = UNSET
    max_items_per_second: Any = UNSET
    max_concurrent_jobs: Any = UNSET
    #: The CRM BatchTask API's fields batchq only keeps (Context, Request, ...), if any.
    task_info: Mapping[str, Any] | None = None
    #: The fields of ``params`` that came in the request's URL (an upload's query string),
    #: which access logs record: a write-only one among them is refused.
    url_params: frozenset[str] = frozenset()


def create_batch(rt: Runtime, request: NewBatch, raw_items: Iterable[Any]) -> dict[str, Any]:
    """Store a new batch with its items and send its first seed; returns the batch row.

    Items are ``{"key", "payload", "stage"?}`` objects or bare payloads (keyed by
    their index). Nothing is stored when any item is refused.
    """
    batch_type = _registered(rt, request.type)
    check_posting(request.creator, batch_type)
    batch_id = str(uuid.uuid4())
    row = _batch_row(rt, request, batch_type, batch_id)
    page_size = row["page_size"]
    reader = ItemReader(batch_id, batch_type, rt.settings.max_items)

    def totals(duplicates: DuplicateKeys) -> dict[str, Any]:
        reader.raise_if_refused(duplicates)
        sizes = reader.stage_sizes()
        return {"total_items": reader.count, "stage_sizes": sizes,
                "total_jobs": count_pages(sizes, page_size)}

    start = _SmallBatchStart(rt)
    with _cyclic_gc_paused():
        batch = rt.storage.batches.create(row, reader.chunks(raw_items), totals,
                                          max_active=rt.settings.max_active_batches_per_user,
                                          then=start, claim=idempotency.take_claim())
    start.send(batch_id)
    return batch


class _SmallBatchStart:
    """The first seed step of a small batch, run inside its creating transaction.

    Small: at most ``small_batch_pages`` pages. A 10-item batch would otherwise
    wait for a seed message to be picked up and a seed transaction to commit
    before its first page is even queued; here its pages are created and queued
    with the batch, and their execute messages sent once it committed. A larger
    batch gets its seed message, as before.
    """

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.queued: list[int] = []
        self.seed_needed = True

    def __call__(self, conn: Any, batch: Mapping[str, Any]) -> None:
        if batch["total_jobs"] > self.rt.settings.small_batch_pages:
            return
        self.queued, self.seed_needed = self.rt.storage.pages.start_in_creation(
            conn, batch["id"], self.rt.settings.max_queued_jobs, utcnow())

    def send(self, batch_id: str) -> None:
        """After the commit: the queued pages' execute messages, and a seed if pages remain."""
        for page_no in self.queued:
            self.rt.send("execute", batch_id, page_no)
        if self.seed_needed:
            self.rt.send("seed", batch_id)


def create_source_batch(rt: Runtime, request: NewBatch, *,
                        process_run: bool = False) -> dict[str, Any]:
    """Store a batch of a type with a source, with no item yet, and send its first seed.

    The seed reads the source chunk by chunk (``batchq.engine.sources``). With
    ``process_run``, the batch is a batch-process run, of which a type has at
    most one active: a second one raises ``UniqueViolation``.
    """
    batch_type = _registered(rt, request.type)
    if batch_type.source is None:
        raise InvalidBatch(f"Batch type {batch_type.code!r} has no source: post its items",
                           {"type": batch_type.code})
    if request.creator is not None and not process_run:  # a run's starter was checked
        check_post(request.creator, batch_type.code, batch_type.post_requires)
    batch_id = str(uuid.uuid4())
    row = {**_batch_row(rt, request, batch_type, batch_id), "total_items": 0,
           "stage_sizes": [], "total_jobs": 0, "source_cursor": None,
           "source_exhausted": False, "process_run": process_run}
    batch = rt.storage.batches.create(row, [], lambda _no_items: {})
    rt.send("seed", batch_id)
    return batch


def check_posting(creator: Caller | None, batch_type: BatchType) -> None:
    """Refuse items posted to a type that finds its own (``InvalidBatch``), unless it says
    it takes them, and a creator without the functions the type asks (``Forbidden``)."""
    if not batch_type.takes_posted_items:
        raise InvalidBatch(
            f"Batch type {batch_type.code!r} finds its own items (it has a source) and takes "
            f"no posted items; start a run of it instead (POST /batch-types/"
            f"{batch_type.code}/start)", {"type": batch_type.code})
    if creator is not None:
        check_post(creator, batch_type.code, batch_type.post_requires)


def _registered(rt: Runtime, code: str) -> BatchType:
    """The type a request names; an unknown one makes the request invalid (400, not 404)."""
    try:
        return rt.registry.get(code)
    except UnknownBatchType as exc:
        raise InvalidBatch(exc.message, exc.details) from exc


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while items stream in (reference counting goes on).

    Every item makes a few dicts and strings that die young and form no cycles,
    yet each 700 of them start a collector pass: those passes took a fifth of the
    time of creating a large batch. Memory stays bounded, as nothing is kept but
    the current chunk; cycles made meanwhile (an exception's traceback) are
    collected once it resumes.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _batch_row(rt: Runtime, request: NewBatch, batch_type: BatchType,
               batch_id: str) -> dict[str, Any]:
    check_text("description", request.description)
    check_text("tenantId", request.tenant_id)
    params = dict(request.params or {})
    problem = json_problem(params)
    if problem is not None:
        raise InvalidBatch(f"params {problem}", {"field": "params"})
    _check_params(batch_type, params)
    _check_no_secret_in_url(batch_type, request.url_params)
    params, secret_params = split_secrets(params, batch_type.secret_params)
    if request.task_info is not None and json_problem(dict(request.task_info)) is not None:
        raise InvalidBatch(f"task fields {json_problem(dict(request.task_info))}",
                           {"field": "taskInfo"})
    return {
        "id": batch_id, "type": batch_type.code, "status": BatchStatus.WAITING.value,
        "suspended": False, "tenant_id": request.tenant_id,
        "create_user_id": request.create_user_id if request.creator is None
        else request.creator.name,
        "owner_id": None if request.creator is None else request.creator.user_id,
        "description": request.description,
        "params": params, "secret_params": secret_params, **_options(rt, request, batch_type),
        "callback_url": _callback_url(rt, request, batch_type),
        "task_info": None if request.task_info is None else dict(request.task_info),
        "processed_items": 0, "failed_items": 0, "jobs_created": 0, "jobs_completed": 0,
        "created_at": utcnow(),
    }


#: The longest callbackUrl a batch may have.
MAX_CALLBACK_URL_CHARS = 2000


def _callback_url(rt: Runtime, request: NewBatch, batch_type: BatchType) -> str | None:
    """The batch's webhook URL: the request's, else the type's; refused when the egress rule
    refuses its host (docs/operations.md "Outbound requests")."""
    given = request.callback_url is not UNSET
    url = request.callback_url if given else batch_type.callback_url
    if url is None:
        return None
    source = "callbackUrl" if given else f"the callback URL of batch type {batch_type.code!r}"
    check_text("callbackUrl", url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname \
            or len(url) > MAX_CALLBACK_URL_CHARS:
        raise InvalidBatch(f"{source} must be an http or https URL of at most "
                           f"{MAX_CALLBACK_URL_CHARS} characters", {"field": "callbackUrl"})
    try:
        EgressPolicy.from_settings(rt.settings).check_url(url)
    except EgressRefused as exc:
        raise InvalidBatch(f"{source} is refused: {exc.message}", {"field": "callbackUrl"}) from exc
    return url


def _check_params(batch_type: BatchType, params: dict[str, Any]) -> None:
    """Refuse ``params`` that fail the type's params schema, naming each wrong field.

    The params are stored as given: the schema only validates, the handler loads them.
    """
    if batch_type.params_schema is None:
        return
    errors = batch_type.params_schema.validate(params)
    if errors:
        problems = "; ".join(f"{name}: {_problem_text(problem)}"
                             for name, problem in sorted(errors.items()))
        raise InvalidBatch(f"params of a {batch_type.code!r} batch are not valid: {problems}",
                           {"field": "params", "paramsErrors": errors})


def _check_no_secret_in_url(batch_type: BatchType, url_params: frozenset[str]) -> None:
    in_url = sorted(url_params & set(batch_type.secret_params))
    if in_url:
        raise InvalidBatch(
            f"params {', '.join(in_url)} of a {batch_type.code!r} batch are write-only and "
            "must not be sent in the URL, which access logs record: send them in the "
            "Batchq-Secret-Params header (the JSON text of an object) or in a JSON body",
            {"field": "params", "inUrl": in_url})


def _problem_text(problem: Any) -> str:
    """marshmallow's errors of one field (a list of messages, or nested by key) as text."""
    if isinstance(problem, list):
        return " ".join(str(message) for message in problem)
    if isinstance(problem, dict):
        return "; ".join(f"{name}: {_problem_text(inner)}" for name, inner in problem.items())
    return str(problem)


def _options(rt: Runtime, request: NewBatch, batch_type: BatchType) -> dict[str, Any]:
    """The batch's options, each from the request, else the type, else the settings.

    ``is not None`` rather than ``or``: an explicit 0 is refused, not replaced by a default.
    """
    page_size = _first_set(request.page_size, batch_type.page_size, rt.settings.page_size)
    jobs_per_seed = _first_set(request.jobs_per_seed, batch_type.jobs_per_seed,
                               rt.settings.jobs_per_seed)
    retention_days = _first_set(request.retention_days, rt.settings.retention_days)
    _check_count("pageSize", page_size)
    _check_count("jobsPerSeed", jobs_per_seed)
    _check_count("retentionDays", retention_days, MAX_RETENTION_DAYS)
    threshold = request.failure_threshold
    if threshold is UNSET:
        threshold = batch_type.threshold(rt.settings.failure_threshold)
    if threshold is not None and not 0 < threshold <= 1:
        raise InvalidBatch("failureThreshold must be greater than 0 and at most 1, or null",
                           {"field": "failureThreshold"})
    return {"page_size": page_size, "jobs_per_seed": jobs_per_seed,
            "failure_threshold": threshold, "retention_days": retention_days,
            "retry_policy": retry_policy_numbers(batch_type, request.retry_policy),
            "run_windows": run_windows_of(batch_type, request.run_windows),
            **throttle_of(rt, batch_type, request.tenant_id, request.max_items_per_second,
                          request.max_concurrent_jobs)}


def _first_set(*values: int | None) -> int:
    return next(value for value in values if value is not None)


def _check_count(field: str, value: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidBatch(f"{field} must be an integer of at least 1, not {value!r}",
                           {"field": field})
    if maximum is not None and value > maximum:
        raise InvalidBatch(f"{field} must be at most {maximum}, not {value}", {"field": field})
