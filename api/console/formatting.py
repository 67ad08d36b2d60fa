"""How the console writes numbers, times and bars, and draws the progress chart (SVG)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask

from batchq.domain.throughput import SeriesPoint

#: The chart's drawing area in SVG user units (it scales to the page's width).
CHART_WIDTH, CHART_HEIGHT = 600, 200


def when(value: datetime | None) -> str:
    """A stored (naive UTC) time, to the second."""
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """``"2 h 05 min"``, ``"4 min 10 s"``, ``"12 s"``; ``"-"`` when unknown."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def rate(value: float | None) -> str:
    """Items per second, to three significant digits."""
    if value is None:
        return "-"
    return f"{value:,.0f}/s" if value >= 100 else f"{value:.3g}/s"


@dataclass(frozen=True)
class Bar:
    """A progress bar's parts in percent of all items: succeeded, failed, remaining."""

    succeeded: float
    failed: float
    remaining: float
    label: str


def progress_bar(batch: Mapping[str, Any]) -> Bar:
    """The bar of ``batch`` from its counters."""
    total, processed, failed = (batch["total_items"], batch["processed_items"],
                                batch["failed_items"])
    if not total:
        return Bar(100.0, 0.0, 0.0, "no items")
    succeeded = 100.0 * (processed - failed) / total
    failed_part = 100.0 * failed / total
    label = (f"{processed - failed:,} succeeded, {failed:,} failed, "
             f"{total - processed:,} remaining of {total:,}")
    return Bar(succeeded, failed_part, max(100.0 - succeeded - failed_part, 0.0), label)


@dataclass(frozen=True)
class Chart:
    """The progress chart: one polyline each for processed and failed items over time."""

    processed: str
    failed: str
    top: int
    first: datetime
    last: datetime


def chart(points: Sequence[SeriesPoint], started_at: datetime | None,
          total: int) -> Chart | None:
    """The lines of the cumulative series, scaled to the batch's item count."""
    if not points or started_at is None:
        return None
    top = max(total, points[-1].processed_total, 1)
    span = max((points[-1].ends_at - started_at).total_seconds(), 1e-9)

    def line(values: Sequence[int]) -> str:
        coordinates = [f"0,{CHART_HEIGHT}"]
        for point, value in zip(points, values, strict=True):
            x = CHART_WIDTH * (point.ends_at - started_at).total_seconds() / span
            y = CHART_HEIGHT * (1 - value / top)
            coordinates.append(f"{x:.1f},{y:.1f}")
        return " ".join(coordinates)

    return Chart(line([p.processed_total for p in points]),
                 line([p.failed_total for p in points]), top, started_at, points[-1].ends_at)


def register_filters(app: Flask) -> None:
    """Make these the templates' filters."""
    app.jinja_env.filters.update(when=when, duration=duration, rate=rate)
    app.jinja_env.globals.update(progress_bar=progress_bar, CHART_WIDTH=CHART_WIDTH,
                                 CHART_HEIGHT=CHART_HEIGHT)
