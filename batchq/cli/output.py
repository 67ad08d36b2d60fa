"""What the CLI prints: aligned tables and coloured statuses that turn plain off a terminal.

Colour comes from ``click.style``; ``click.echo`` strips it when the output is
not a terminal (a pipe, a file, a test), and ``NO_COLOR`` (https://no-color.org)
turns it off everywhere. Tables are padded before they are coloured, so their
columns line up either way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import click

#: The colour of each batch status.
STATUS_COLOURS = {
    "Waiting": "blue", "Processing": "cyan", "Completed": "green",
    "CompletedWithErrors": "yellow", "Cancelling": "magenta", "Cancelled": "magenta",
    "TooManyFailed": "red", "PostBatchFailed": "red", "Failed": "red",
}

#: Styles a table cell: (column index, cell text) -> click.style keyword arguments.
CellStyle = Callable[[int, str], dict[str, Any]]


def colour() -> bool | None:
    """click's ``color`` argument: off under ``NO_COLOR``, else decided by the terminal."""
    return False if os.environ.get("NO_COLOR") else None


def echo(text: str = "", err: bool = False) -> None:
    """``click.echo``, coloured only on a terminal and without ``NO_COLOR``."""
    click.echo(text, err=err, color=colour())


def status_style(status: str) -> dict[str, Any]:
    """The style of a batch status (its first word, e.g. ``Processing (suspended)``)."""
    return {"fg": STATUS_COLOURS.get(status.split(" ", 1)[0])}


def table(header: Sequence[str], rows: Sequence[Sequence[str]],
          style: CellStyle | None = None) -> str:
    """Rows as aligned columns under a bold header; cells are padded, then styled."""
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    last = len(header) - 1
    lines = ["  ".join(click.style(cell.ljust(width) if n < last else cell, bold=True)
                       for n, (cell, width) in enumerate(zip(header, widths, strict=True)))]
    for row in rows:
        cells = []
        for column, (cell, width) in enumerate(zip(row, widths, strict=True)):
            padded = cell.ljust(width) if column < last else cell
            cells.append(click.style(padded, **style(column, cell)) if style else padded)
        lines.append("  ".join(cells))
    return "\n".join(lines)
