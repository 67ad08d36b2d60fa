"""What every benchmark returns to ``bench/run_all.py``: rows of one Markdown table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One measured figure: which benchmark, what, how much, and the target it is held to."""

    bench: str
    metric: str
    value: str
    target: str = ""
    #: True/False when the figure has a target it met or missed; None without one.
    ok: bool | None = None

    @property
    def verdict(self) -> str:
        return {True: "OK", False: "MISSED", None: ""}[self.ok]


def markdown_table(rows: Sequence[Row]) -> str:
    """The rows as one Markdown table (``|`` in a cell escaped)."""
    lines = ["| benchmark | figure | value | target | |", "|---|---|---|---|---|"]
    for row in rows:
        cells = (row.bench, row.metric, row.value, row.target, row.verdict)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def print_rows(title: str, rows: Sequence[Row]) -> None:
    """The rows as an aligned table on stdout, under ``title``."""
    width = max((len(row.metric) for row in rows), default=10)
    rule = "=" * (width + 50)
    print(f"\n{rule}\n{title}\n{rule}")
    for row in rows:
        target = f"  (target {row.target}: {row.verdict})" if row.target else ""
        print(f"{row.metric:<{width}}  {row.value}{target}")
    print(rule, flush=True)
