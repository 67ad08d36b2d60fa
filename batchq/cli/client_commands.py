"""The client commands of ``batchq``: submit, status, ls, errors, suspend, resume, cancel.

They talk to a running API over HTTP (``batchq.cli.http_client``), configured by
``BATCHQ_URL`` and ``BATCHQ_TOKEN``. Any failure prints one sentence that says
what to do and exits non-zero; no command prints a traceback for an error it
can foresee.

Exit codes: 0 success (for ``submit --wait``: the batch is Completed); 1 an
error (server unreachable, request refused, unreadable input); 2 a usage
error; 3 ``submit --wait`` saw the batch end CompletedWithErrors; 4 it ended
otherwise (TooManyFailed, PostBatchFailed, Cancelled, Failed); 130 Ctrl-C
while waiting (the batch goes on).
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

import click

from batchq.cli.http_client import (
    UPLOAD_TYPES,
    Client,
    ClientError,
    ClientSettings,
    StreamUnavailable,
)
from batchq.cli.options import parse_run_window
from batchq.cli.output import colour, echo, status_style, table
from batchq.domain.statuses import ACTIVE_STATUSES, BatchStatus

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

EXIT_COMPLETED_WITH_ERRORS = 3
EXIT_NOT_COMPLETED = 4
EXIT_INTERRUPTED = 130
FORMATS_BY_SUFFIX = {".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson", ".csv": "csv"}
SORT_KEYS = ["batchId", "tenantId", "type", "status", "createdAt"]
ACTIVE = {status.value for status in ACTIVE_STATUSES}

Command = TypeVar("Command", bound=Callable[..., Any])


def friendly_errors(command: Command) -> Command:
    """Turn a ``ClientError`` into click's one-line "Error: ..." and exit status 1."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ClientError as exc:
            raise click.ClickException(exc.message) from exc

    return cast(Command, run)


def client() -> Client:
    """A client for ``BATCHQ_URL`` with ``BATCHQ_TOKEN``."""
    return Client(ClientSettings.from_env())


# -- submit -------------------------------------------------------------------------


def parse_param(text: str) -> tuple[str, Any]:
    """``k=v``: the value as JSON when it parses (``n=3``, ``flag=true``), else as text."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"{text!r} is not k=v", param_hint="--param")
    try:
        return name, json.loads(raw)
    except ValueError:
        return name, raw


def format_of(path: str, given: str | None) -> str:
    """The input format: ``--format``, else the file's extension; stdin defaults to JSON."""
    if given:
        return given
    if path == "-":
        return "json"
    found = FORMATS_BY_SUFFIX.get(Path(path).suffix.lower())
    if found is None:
        raise click.UsageError(f"Cannot tell the format of {path} from its extension; "
                               f"pass --format json, ndjson or csv")
    return found


def read_json_items(stream: IO[bytes], path: str) -> list[Any]:
    """A JSON list of items, or an object whose ``items`` is one."""
    try:
        document = json.load(stream)
    except ValueError as exc:
        raise click.ClickException(f"{path} is not valid JSON: {exc}") from exc
    if isinstance(document, dict) and isinstance(document.get("items"), list):
        return cast(list[Any], document["items"])
    if isinstance(document, list):
        return document
    raise click.ClickException(f'{path} must hold a JSON list of items or an object with an '
                               f'"items" list')


def submit_batch(api: Client, batch_type: str, path: str, fmt: str,
                 options: dict[str, Any]) -> dict[str, Any]:
    """Create the batch: JSON as a JSON body, NDJSON and CSV streamed with query options."""
    with _opened(path) as (stream, sized):
        if fmt == "json":
            body = {"type": batch_type, "items": read_json_items(stream, path), **options}
            return cast(dict[str, Any], api.create_batch(body))
        query = upload_query(batch_type, options)
        return cast(dict[str, Any], api.upload_batch(stream, UPLOAD_TYPES[fmt], query,
                                                     sized=sized))


def upload_query(batch_type: str, options: dict[str, Any]) -> dict[str, str]:
    """The query string of a streamed upload: type, params (JSON text) and the options."""
    query = {"type": batch_type}
    if options.get("params"):
        query["params"] = json.dumps(options["params"], separators=(",", ":"))
    for name in ("tenantId", "pageSize", "description", "maxItemsPerSecond",
                 "maxConcurrentJobs"):
        if options.get(name) is not None:
            query[name] = str(options[name])
    for name in ("runWindows", "retryPolicy"):
        if options.get(name):
            query[name] = json.dumps(options[name], separators=(",", ":"))
    return query


@contextmanager
def _opened(path: str) -> Iterator[tuple[IO[bytes], bool]]:
    """The input as bytes, and whether its size is known (a file, not a pipe)."""
    if path == "-":
        yield sys.stdin.buffer, False
        return
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise click.ClickException(f"Cannot read {path}: {exc.strerror}") from exc
    with stream:
        yield stream, True


@click.command()
@click.argument("batch_type", metavar="TYPE")
@click.argument("file", metavar="FILE|-")
@click.option("--tenant", help="Create the batch for this tenant.")
@click.option("--param", "params", multiple=True, metavar="K=V",
              help="A parameter of the type; V is JSON if it parses, else text. Repeatable.")
@click.option("--page-size", type=click.IntRange(min=1), help="Items per page (job).")
@click.option("--description", help="A description shown with the batch.")
@click.option("--max-items-per-second", type=click.FloatRange(min=0.1), metavar="RATE",
              help="Start at most RATE items a second, across all workers.")
@click.option("--max-concurrent-jobs", type=click.IntRange(min=1), metavar="N",
              help="Run at most N pages of the batch at once.")
@click.option("--max-attempts", type=click.IntRange(1, 100), metavar="N",
              help="Run an item that fails transiently at most N times (the type's policy).")
@click.option("--run-window", "run_windows", multiple=True, metavar="WINDOW",
              help="Start pages only in this window, e.g. 'Mon-Fri 22:00-06:00 "
                   "Europe/Berlin'. Repeatable.")
@click.option("--format", "fmt", type=click.Choice(["json", "ndjson", "csv"]),
              help="The input format (default: from FILE's extension; json for stdin).")
@click.option("--wait", is_flag=True, help="Show a progress bar until the batch ends; exit 0 "
                                           "only if it Completed.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="Seconds between polls with --wait, when the server offers no live "
                   "progress stream.")
@friendly_errors
def submit(batch_type: str, file: str, tenant: str | None, params: tuple[str, ...],
           page_size: int | None, description: str | None, max_items_per_second: float | None,
           max_concurrent_jobs: int | None, max_attempts: int | None,
           run_windows: tuple[str, ...], fmt: str | None, wait: bool, interval: float) -> None:
    """Create a batch of TYPE from the items in FILE (or - for stdin) and print its id.

    JSON (a list of items, or {"items": [...]}) is sent as the JSON body;
    NDJSON (one item per line) and CSV (a header line, then one item per row)
    are streamed, never read whole into memory.
    """
    options: dict[str, Any] = {"params": dict(parse_param(p) for p in params)}
    for name, value in (("tenantId", tenant), ("pageSize", page_size),
                        ("description", description), ("maxItemsPerSecond", max_items_per_second),
                        ("maxConcurrentJobs", max_concurrent_jobs)):
        if value is not None:
            options[name] = value
    if run_windows:
        options["runWindows"] = [parse_run_window(window) for window in run_windows]
    if max_attempts is not None:
        options["retryPolicy"] = {"maxAttempts": max_attempts}
    api = client()
    batch = submit_batch(api, batch_type, file, format_of(file, fmt), options)
    click.echo(batch["id"])
    if wait:
        sys.exit(wait_for(api, batch, interval))


def wait_for(api: Client, batch: dict[str, Any], interval: float) -> int:
    """Follow the batch with a progress bar until it ends; returns the exit code of its status.

    The bar follows the live progress stream (``GET /batches/{id}/events``); where the
    server offers none, it polls ``GET /batches/{id}`` every ``interval`` seconds.
    """
    try:
        batch = _follow_with_progress_bar(api, batch, interval)
    except KeyboardInterrupt:
        click.echo(f"\nStopped waiting; batch {batch['id']} goes on. "
                   f"`batchq status {batch['id']}` shows it.", err=True)
        return EXIT_INTERRUPTED
    click.echo(f"Batch {batch['id']} ended {_status_text(batch)}: {batch['processedItems']} "
               f"of {batch['totalItems']} items processed, {batch['failedItems']} failed.",
               err=True)
    return exit_code_of(batch["status"])


def _follow_with_progress_bar(api: Client, batch: dict[str, Any],
                              interval: float) -> dict[str, Any]:
    """The bar counts processed items; its text shows the failed ones and the status."""
    latest = [batch]
    bar: ProgressBar[int]
    with click.progressbar(length=max(batch["totalItems"], 1), label=_status_text(batch),
                           file=sys.stderr, show_pos=True, color=colour(),
                           item_show_func=lambda _: _progress_text(latest[0])) as bar:
        shown = 0
        for update in _updates(api, batch, interval):
            batch = {**batch, **update}
            latest[0] = batch
            label, bar.label = bar.label, _status_text(batch)  # the real status, as it changes
            bar.update(batch["processedItems"] - shown)
            if bar.label != label:
                bar.render_progress()  # also when no item was processed since
            shown = batch["processedItems"]
            if batch["status"] not in ACTIVE:
                return batch
    return batch


def _updates(api: Client, batch: dict[str, Any], interval: float) -> Iterator[dict[str, Any]]:
    """The batch as it changes: from its progress stream, reconnecting where it left off
    when the server closes an idle one; polled when the server offers no stream."""
    yield batch
    last_id: str | None = None
    try:
        while True:
            resumed_from = last_id
            for event_id, snapshot in api.batch_events(batch["id"], resumed_from):
                last_id = event_id
                yield snapshot
            if last_id is None:  # closed before any event: poll
                break
            batch = api.get_batch(batch["id"])  # the stream closed: did the batch end?
            yield batch
    except StreamUnavailable:
        pass
    while True:
        time.sleep(interval)
        yield api.get_batch(batch["id"])


def exit_code_of(status: str) -> int:
    """0 for Completed, 3 for CompletedWithErrors, 4 for any other final status."""
    if status == BatchStatus.COMPLETED:
        return 0
    if status == BatchStatus.COMPLETED_WITH_ERRORS:
        return EXIT_COMPLETED_WITH_ERRORS
    return EXIT_NOT_COMPLETED


def _progress_text(batch: dict[str, Any]) -> str:
    return f"{batch['failedItems']} failed"


def _status_text(batch: dict[str, Any]) -> str:
    suspended = batch.get("suspended") and batch["status"] in ACTIVE
    return f"{batch['status']} (suspended)" if suspended else str(batch["status"])


# -- reading ------------------------------------------------------------------------


@click.command()
@click.argument("batch_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON as it is.")
@friendly_errors
def status(batch_id: str, as_json: bool) -> None:
    """Show a batch: status, progress, times and its first errors. ID may be its first
    characters."""
    api = client()
    batch = api.get_batch(api.resolve_batch_id(batch_id))
    if as_json:
        click.echo(json.dumps(batch, indent=2))
        return
    for label, value in describe(batch):
        shown = click.style(value, **status_style(value)) if label == "Status" else value
        echo(f"{label + ':':<13}{shown}")


def describe(batch: dict[str, Any]) -> list[tuple[str, str]]:
    """The lines of ``batchq status``: (label, text), blank values left out."""
    lines = [
        ("Batch", batch["id"]), ("Type", batch["type"]), ("Status", _status_text(batch)),
        ("Progress", f"{batch['processedItems']} of {batch['totalItems']} items processed "
                     f"({batch['progressPercent']:g}%), {batch['failedItems']} failed; "
                     f"{batch['progress']} jobs"),
        ("Tenant", batch.get("tenantId") or ""), ("Created by", batch.get("createUserId") or ""),
        ("Description", batch.get("description") or ""),
        ("Created", _when(batch.get("createdAt"))), ("Started", _when(batch.get("startedAt"))),
        ("Finished", _when(batch.get("finishedAt"))),
        ("Failure", batch.get("failureReason") or ""),
        ("Note", _note(batch)),
        ("Retry of", batch.get("retryOf") or ""),
        ("Retries", ", ".join(batch.get("retries") or [])),
        ("Throttle", _throttle_text(batch)),
        ("Run windows", "; ".join(_window_text(w) for w in batch.get("runWindows") or [])),
    ]
    errors = batch.get("itemErrors") or {}
    for key, message in list(errors.items())[:5]:
        lines.append(("Item error", f"{key}: {message}"))
    if batch["failedItems"] > min(len(errors), 5):
        lines.append(("", f"... `batchq errors {batch['id']}` lists all "
                          f"{batch['failedItems']}"))
    return [(label, text) for label, text in lines if text]


@click.command("ls")
@click.option("--type", "type_", help="Only batches of this type.")
@click.option("--status", "status_", type=click.Choice([s.value for s in BatchStatus]),
              help="Only batches with this status.")
@click.option("--tenant", "tenants", multiple=True, help="Only this tenant's; repeatable.")
@click.option("--without-tenant", is_flag=True, help="Only batches without a tenant (with "
                                                      "--tenant: either).")
@click.option("--suspended/--not-suspended", default=None, help="Only (not) suspended ones.")
@click.option("--created-by", help="Only batches this user created.")
@click.option("--sort", type=click.Choice(SORT_KEYS), help="Sort by this (default: newest "
                                                             "first).")
@click.option("--order", type=click.Choice(["asc", "desc"]), default="desc", show_default=True,
              help="Sort order with --sort.")
@click.option("--first", type=click.IntRange(min=0), default=0, help="Skip this many.")
@click.option("--max", "max_", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="Show at most this many.")
@click.option("--after", metavar="ID", help="Start after this batch (a cursor: as fast deep in "
                                            "the list as at its start); not with --first.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON as it is.")
@friendly_errors
def ls(type_: str | None, status_: str | None, tenants: tuple[str, ...], without_tenant: bool,
       suspended: bool | None, created_by: str | None, sort: str | None, order: str,
       first: int, max_: int, after: str | None, as_json: bool) -> None:
    """List the batches you may read, as a table."""
    filters: dict[str, Any] = {"type": type_, "status": status_, "createdBy": created_by,
                               "tenantIdIn": ",".join(tenants) or None}
    if without_tenant:
        filters["withoutTenantId"] = "true"
    if suspended is not None:
        filters["suspended"] = str(suspended).lower()
    filters = {name: value for name, value in filters.items() if value is not None}
    page: dict[str, Any] = {"firstResult": first, "maxResults": max_}
    if sort:
        page.update(sortBy=sort, sortOrder=order)
    api = client()
    if after is not None:
        if first:
            raise click.UsageError("--after and --first page in two ways: give one")
        page = {"maxResults": max_, "afterKey": api.resolve_batch_id(after),
                **{k: v for k, v in page.items() if k.startswith("sort")}}
    batches = api.list_batches({**filters, **page})
    if as_json:
        click.echo(json.dumps(batches, indent=2))
        return
    total = api.count_batches(filters)["count"]
    echo(batch_table(batches))
    if after is not None:
        more = f"; --after {batches[-1]['id']} shows more" if len(batches) == max_ else ""
        click.echo(f"{len(batches)} batches after {page['afterKey']} of {total}{more}")
        return
    shown = f"{first + 1}-{first + len(batches)}" if batches else "none"
    more = f"; --first {first + len(batches)} shows more" if first + len(batches) < total else ""
    click.echo(f"{shown} of {total} batches{more}")


def batch_table(batches: list[dict[str, Any]]) -> str:
    """Batches as aligned columns: id, type, status (coloured on a terminal), progress, created."""
    rows = [(b["id"], b["type"], _status_text(b), _progress_cell(b), _when(b.get("createdAt")))
            for b in batches]
    return table(("ID", "TYPE", "STATUS", "PROGRESS", "CREATED"), rows,
                 lambda column, cell: status_style(cell) if column == 2 else {})


def _note(batch: dict[str, Any]) -> str:
    """What an active batch's progressDescription adds: why it waits (outside its run
    windows), or its handler's own text; batchq's sentence of status and counts adds nothing."""
    note = str(batch.get("progressDescription") or "")
    own_sentence = note.startswith((batch["status"], "Suspended", "Waiting for a worker"))
    return note if batch["status"] in ACTIVE and not own_sentence else ""


def _throttle_text(batch: dict[str, Any]) -> str:
    parts = []
    if batch.get("maxItemsPerSecond") is not None:
        parts.append(f"{batch['maxItemsPerSecond']:g} items/s")
    if batch.get("maxConcurrentJobs") is not None:
        parts.append(f"{batch['maxConcurrentJobs']} pages at once")
    return ", ".join(parts)


def _window_text(window: dict[str, str]) -> str:
    return f"{window['days']} {window['from']}-{window['to']} {window['timezone']}"


def _progress_cell(batch: dict[str, Any]) -> str:
    total, processed, failed = batch["totalItems"], batch["processedItems"], batch["failedItems"]
    percent = 100.0 * processed / total if total else 100.0
    cell = f"{processed}/{total} ({percent:.0f}%)"
    return f"{cell}, {failed} failed" if failed else cell


def _when(stamp: str | None) -> str:
    """An ISO timestamp to the second, as ``2026-11-23 16:30:01``."""
    return stamp.replace("T", " ")[:19] if stamp else ""


@click.command()
@click.argument("batch_id", metavar="ID")
@click.option("--first", type=click.IntRange(min=0), default=0, help="Skip this many errors.")
@click.option("--max", "max_", type=click.IntRange(1, 1000), default=50, show_default=True,
              help="Show at most this many.")
@click.option("--summary", is_flag=True, help="The most frequent messages with counts and "
                                              "sample keys, instead of the list.")
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True,
              help="How many messages --summary shows.")
@click.option("--after", type=click.IntRange(min=-1), metavar="INDEX",
              help="Start after the item at this index (a cursor); not with --first.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON as it is.")
@friendly_errors
def errors(batch_id: str, first: int, max_: int, summary: bool, limit: int,
           after: int | None, as_json: bool) -> None:
    """List a batch's item errors in input order (or --summary: the top messages)."""
    if after is not None and first:
        raise click.UsageError("--after and --first page in two ways: give one")
    api = client()
    batch_id = api.resolve_batch_id(batch_id)
    answer = (api.error_summary(batch_id, limit) if summary
              else api.errors(batch_id, first, max_, after))
    if as_json:
        click.echo(json.dumps(answer, indent=2))
    elif summary:
        click.echo(summary_text(answer))
    else:
        click.echo(errors_text(answer, batch_id))


def errors_text(page: dict[str, Any], batch_id: str) -> str:
    """One line per error, ``#index key: message``, and where the page stands."""
    lines = [f"#{e['index']:<8} {e['key']}: {e['message']}" for e in page["errors"]]
    first, total = page["firstResult"], page["total"]
    if not total:
        return "No item failed."
    if page.get("afterIndex") is not None:
        following = page.get("nextAfterIndex")
        lines.append(f"{len(page['errors'])} errors after #{page['afterIndex']} of {total}" + (
            f"; `batchq errors {batch_id} --after {following}` shows more" if following is not
            None else ""))
        return "\n".join(lines)
    if not page["errors"]:
        return f"No errors past the first {first}; the batch has {total}."
    lines.append(f"Errors {first + 1}-{first + len(page['errors'])} of {total}")
    if first + len(page["errors"]) < total:
        lines[-1] += f"; `batchq errors {batch_id} --first {first + len(page['errors'])}` " \
                     f"shows more"
    return "\n".join(lines)


def summary_text(summary: dict[str, Any]) -> str:
    """The top messages: count, message, and sample keys."""
    if not summary["failedItems"]:
        return "No item failed."
    lines = [f"{m['count']:>8}  {m['message']}  (e.g. {', '.join(m['sampleKeys'])})"
             for m in summary["messages"]]
    lines.append(f"{_count(summary['failedItems'], 'failed item')}, "
                 f"{_count(summary['distinctMessages'], 'distinct message')}")
    return "\n".join(lines)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


# -- changing -----------------------------------------------------------------------


@click.command()
@click.argument("batch_id", metavar="ID")
@friendly_errors
def suspend(batch_id: str) -> None:
    """Suspend a batch: no new page starts until it is resumed."""
    api = client()
    batch_id = api.resolve_batch_id(batch_id)
    batch = api.change_batch(batch_id, {"suspended": True})
    click.echo(f"Batch {batch_id} is suspended ({batch['status']}); running pages finish.")


@click.command()
@click.argument("batch_id", metavar="ID")
@friendly_errors
def resume(batch_id: str) -> None:
    """Resume a suspended batch."""
    api = client()
    batch_id = api.resolve_batch_id(batch_id)
    batch = api.change_batch(batch_id, {"suspended": False})
    click.echo(f"Batch {batch_id} is resumed ({batch['status']}).")


@click.command()
@click.argument("batch_id", metavar="ID")
@friendly_errors
def cancel(batch_id: str) -> None:
    """Cancel a batch: no new page starts, running pages finish, the rest stays unprocessed."""
    api = client()
    batch_id = api.resolve_batch_id(batch_id)
    batch = api.cancel_batch(batch_id)
    click.echo(f"Batch {batch_id} is {batch['status']}: running pages finish, no new page "
               f"starts.")


COMMANDS = (submit, status, ls, errors, suspend, resume, cancel)
