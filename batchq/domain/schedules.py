"""Cron expressions of scheduled batch types, checked when a type registers.

celery beat runs the schedules (``workers/app.py`` builds a
``celery.schedules.crontab`` from the fields); batchq itself imports no Celery,
so this module accepts the part of the cron syntax that Celery's crontab
parser reads the same way: numbers, ``*``, ranges ``a-b``, steps ``*/n`` and
``a-b/n``, and comma lists of these. Names (``mon``, ``jan``), ``L``, ``W``,
``#`` and ``@daily``-style aliases are refused, with a message saying so.

``next_run`` computes when beat starts a schedule next, the way Celery's
crontab matches a time: every field must match (day of month *and* day of
week, unlike classic cron's "either"), in UTC, Celery's default timezone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

#: (name, lowest, highest) of the five fields, in cron order.
FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 6),
)
#: How far ahead ``next_run`` looks: past every leap-year and weekday combination.
SEARCH_DAYS = 366 * 8
_PART = re.compile(r"^(?:\*(?:/(?P<star_step>\d+))?"
                   r"|(?P<first>\d+)(?:-(?P<last>\d+)(?:/(?P<range_step>\d+))?)?)$")


@dataclass(frozen=True)
class CronFields:
    """The five fields of a cron expression, as written; Celery's crontab takes them as such."""

    minute: str
    hour: str
    day_of_month: str
    month_of_year: str
    day_of_week: str


def parse_cron(expression: str) -> CronFields:
    """The fields of a 5-field cron expression; ``ValueError`` says what is wrong."""
    if not isinstance(expression, str):
        raise ValueError(f"a schedule is a cron expression string, not {expression!r}")
    parts = expression.split()
    if len(parts) != len(FIELDS):
        raise ValueError(
            f"{expression!r} has {len(parts)} fields; a cron expression has 5: "
            "minute hour day-of-month month day-of-week (e.g. '30 2 * * *')")
    for text, (name, lowest, highest) in zip(parts, FIELDS, strict=True):
        _check_field(expression, text, name, lowest, highest)
    return CronFields(*parts)


def _check_field(expression: str, text: str, name: str, lowest: int, highest: int) -> None:
    for part in text.split(","):
        match = _PART.match(part)
        if match is None:
            raise ValueError(
                f"{expression!r}: the {name} field {text!r} is not understood; use numbers, "
                "'*', ranges 'a-b', steps '*/n' or 'a-b/n', and comma lists")
        for group in ("first", "last"):
            value = match.group(group)
            if value is not None and not lowest <= int(value) <= highest:
                raise ValueError(f"{expression!r}: the {name} field allows {lowest} to "
                                 f"{highest}, not {value}")
        step = match.group("star_step") or match.group("range_step")
        if step is not None and int(step) < 1:
            raise ValueError(f"{expression!r}: the {name} field's step must be at least 1")


def next_run(expression: str, after: datetime) -> datetime | None:
    """The first minute strictly after ``after`` that ``expression`` matches, or None if
    none does within ``SEARCH_DAYS`` (e.g. ``0 0 30 2 *``, a 30th of February).

    ``after`` and the answer are naive UTC, like every time batchq stores.
    """
    minutes, hours, days, months, weekdays = field_values(parse_cron(expression))
    start = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = start.replace(hour=0, minute=0)
    for offset in range(SEARCH_DAYS):
        candidate = day + timedelta(days=offset)
        # isoweekday: Monday 1 .. Sunday 7; cron and Celery count Sunday as 0.
        if (candidate.month not in months or candidate.day not in days
                or candidate.isoweekday() % 7 not in weekdays):
            continue
        earliest = (start.hour, start.minute) if offset == 0 else (0, 0)
        times = [(h, m) for h in hours for m in minutes if (h, m) >= earliest]
        if times:
            hour, minute = min(times)
            return candidate.replace(hour=hour, minute=minute)
    return None


def field_values(fields: CronFields) -> tuple[frozenset[int], ...]:
    """The values each field matches, in cron order: minute, hour, day, month, weekday."""
    texts = (fields.minute, fields.hour, fields.day_of_month, fields.month_of_year,
             fields.day_of_week)
    return tuple(_values(text, lowest, highest)
                 for text, (_name, lowest, highest) in zip(texts, FIELDS, strict=True))


def _values(text: str, lowest: int, highest: int) -> frozenset[int]:
    """The values of one field, expanded as Celery's crontab parser does: a range whose
    end is below its start wraps past the highest value, and a step takes every n-th."""
    values: set[int] = set()
    for part in text.split(","):
        match = _PART.match(part)
        assert match is not None  # parse_cron checked every part
        if match.group("first") is None:
            expanded = list(range(lowest, highest + 1))
        else:
            first = int(match.group("first"))
            last = int(match.group("last")) if match.group("last") is not None else first
            expanded = (list(range(first, last + 1)) if first <= last
                        else list(range(first, highest + 1)) + list(range(lowest, last + 1)))
        step = int(match.group("star_step") or match.group("range_step") or 1)
        values.update(expanded[::step])
    return frozenset(values)
