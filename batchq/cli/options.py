"""Parsing the CLI's option values that are not plain numbers or words."""

from __future__ import annotations

import click


def parse_run_window(text: str) -> dict[str, str]:
    """``"Mon-Fri 22:00-06:00 Europe/Berlin"`` (days and zone optional) as a run window."""
    parts = text.split()
    times = [part for part in parts if "-" in part and ":" in part]
    if len(times) != 1 or len(parts) > 3:
        raise click.BadParameter(f"{text!r} is not like 'Mon-Fri 22:00-06:00 Europe/Berlin'",
                                 param_hint="--run-window")
    window: dict[str, str] = {}
    start, _, end = times[0].partition("-")
    window["from"], window["to"] = start, end
    rest = [part for part in parts if part is not times[0]]
    for part in rest:
        window["timezone" if "/" in part or part.upper() == "UTC" else "days"] = part
    return window
