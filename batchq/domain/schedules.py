"""Cron expressions of scheduled batch types, checked when a type registers.

celery beat runs the schedules (``workers/app.py`` builds a
``celery.schedules.crontab`` from the fields); batchq itself imports no Celery,
so this module accepts the part of the cron syntax that Celery's crontab
parser reads the same way: numbers, ``*``, ranges ``a-b``, steps ``*/n`` and
``a-b/n``, and comma lists of these. Names (``mon``, ``jan``), ``L``, ``W``,
``#`` and ``@daily``-style aliases are refused, with a message saying so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: (name, lowest, highest) of the five fields, in cron order.
FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 6),
)
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
