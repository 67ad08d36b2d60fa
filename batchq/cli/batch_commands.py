"""More client commands of ``batchq``: retry, throttle, windows, types and processes.

Like ``batchq.cli.client_commands`` they talk to the API at ``BATCHQ_URL`` with
``BATCHQ_TOKEN``, accept a batch's short id (its first characters) wherever an
id goes, and print one sentence on any failure.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from batchq.cli.client_commands import client, friendly_errors, parse_param, wait_for
from batchq.cli.options import parse_run_window
from batchq.cli.output import echo, status_style, table

SELECTIONS = ("failed", "unprocessed", "failed+unprocessed")


@click.command()
@click.argument("batch_id", metavar="ID")
@click.option("--items", "selection", type=click.Choice(SELECTIONS), default="failed",
              show_default=True, help="Which items of the finished batch to retry.")
@click.option("--description", help="The new batch's description.")
@click.option("--wait", is_flag=True, help="Show a progress bar until the new batch ends.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="Seconds between polls with --wait.")
@friendly_errors
def retry(batch_id: str, selection: str, description: str | None, wait: bool,
          interval: float) -> None:
    """Retry a finished batch's failed (or unprocessed) items as a new linked batch; print its
    id."""
    api = client()
    body: dict[str, Any] = {"items": selection}
    if description is not None:
        body["description"] = description
    batch = api.retry_batch(api.resolve_batch_id(batch_id), body)
    click.echo(batch["id"])
    click.echo(f"Batch {batch['id']} retries {batch['totalItems']} {selection} items of "
               f"{batch['retryOf']}.", err=True)
    if wait:
        sys.exit(wait_for(api, batch, interval))


def _limit(text: str) -> float | None:
    """A limit on the command line: a number, or ``none`` for no limit."""
    if text.lower() in ("none", "null", "off"):
        return None
    try:
        return float(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither a number nor 'none'") from None


@click.command()
@click.argument("batch_id", metavar="ID")
@click.option("--rate", metavar="ITEMS/S|none",
              help="Items started per second across all workers ('none': no limit).")
@click.option("--concurrency", metavar="PAGES|none",
              help="Pages of the batch running at once ('none': no limit).")
@friendly_errors
def throttle(batch_id: str, rate: str | None, concurrency: str | None) -> None:
    """Rethrottle a running batch; the new limits hold within a second."""
    changes: dict[str, Any] = {}
    if rate is not None:
        changes["maxItemsPerSecond"] = _limit(rate)
    if concurrency is not None:
        pages = _limit(concurrency)
        changes["maxConcurrentJobs"] = None if pages is None else int(pages)
    if not changes:
        raise click.UsageError("Give --rate and/or --concurrency")
    api = client()
    batch = api.change_batch(api.resolve_batch_id(batch_id), changes)
    rate_text = "no limit" if batch.get("maxItemsPerSecond") is None else \
        f"{batch['maxItemsPerSecond']:g} items/s"
    pages_text = "no limit" if batch.get("maxConcurrentJobs") is None else \
        f"{batch['maxConcurrentJobs']} pages at once"
    click.echo(f"Batch {batch['id']}: {rate_text}, {pages_text}.")


@click.command()
@click.argument("batch_id", metavar="ID")
@click.argument("windows", nargs=-1, metavar="[WINDOW]...")
@friendly_errors
def windows(batch_id: str, windows: tuple[str, ...]) -> None:
    """Limit a running batch to run windows, e.g. 'Mon-Fri 22:00-06:00 Europe/Berlin'; none
    given: at any time again."""
    api = client()
    parsed = [parse_run_window(window) for window in windows]
    batch = api.change_batch(api.resolve_batch_id(batch_id), {"runWindows": parsed or None})
    if not batch.get("runWindows"):
        click.echo(f"Batch {batch['id']} may start pages at any time.")
        return
    click.echo(f"Batch {batch['id']} starts pages only in: " + "; ".join(
        f"{w['days']} {w['from']}-{w['to']} {w['timezone']}" for w in batch["runWindows"]))
    click.echo(batch["progressDescription"])


@click.command("types")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON as it is.")
@friendly_errors
def types_(as_json: bool) -> None:
    """List the batch types, each with its last run."""
    registry = client().batch_types()
    if as_json:
        click.echo(json.dumps(registry, indent=2))
        return
    rows = [(entry["type"]["code"], entry["type"].get("name") or "",
             entry["status"].get("batchStatus") or "never run",
             entry["status"].get("batchId") or "", entry.get("cancellationBehaviour") or "")
            for entry in registry]
    echo(table(("CODE", "NAME", "LAST RUN", "BATCH", "CANCEL"), rows,
               lambda column, cell: status_style(cell) if column == 2 else {}))


@click.group()
def processes() -> None:
    """Start and stop batch processes (types with a source), across all tenants."""


@processes.command("start")
@click.argument("code")
@click.option("--param", "params", multiple=True, metavar="K=V",
              help="A parameter of the type; V is JSON if it parses. Repeatable.")
@click.option("--description", help="The run's description.")
@friendly_errors
def start(code: str, params: tuple[str, ...], description: str | None) -> None:
    """Start a run of batch process CODE and print its batch id."""
    body: dict[str, Any] = {"params": dict(parse_param(p) for p in params)}
    if description is not None:
        body["description"] = description
    click.echo(client().start_process(code, body)["processId"])


@processes.command("stop")
@click.argument("code")
@friendly_errors
def stop(code: str) -> None:
    """Stop (drain) the active run of batch process CODE."""
    stopped = client().stop_process(code)["wasStopped"]
    click.echo(f"Stopped the run of {code}." if stopped else f"No run of {code} was active.")


COMMANDS = (retry, throttle, windows, types_, processes)
