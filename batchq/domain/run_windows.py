"""Run windows: the times of the week at which a batch may start pages, as pure arithmetic.

A window is ``{"days": "Mon-Fri", "from": "22:00", "to": "06:00", "timezone":
"Europe/Berlin"}``: it opens at ``from`` (local time) on each of its days and
stays open until the next ``to``, so a window whose ``to`` is not after its
``from`` runs past midnight into the next day (Friday 22:00 to Saturday 06:00
above; Monday 00:00 to 06:00 is not in it, as Sunday is not one of its days).
``from`` equal to ``to`` is a whole day. Local times follow the zone's daylight
saving rules (``zoneinfo``). A batch with several windows may start pages
while any one is open; a batch without windows, at any time.

Every function takes the time it judges (``now``, naive UTC as the database
keeps it, or aware), so a test drives it with a fake clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from batchq.errors import InvalidBatch

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MAX_WINDOWS = 20
_FIELDS = {"days", "from", "to", "timezone"}
_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?\Z")
_ALL_DAYS = frozenset(range(7))
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_WORDS = {word: n for n, name in enumerate(_FULL_NAMES) for word in (name, name[:3])}


@dataclass(frozen=True)
class RunWindow:
    """One weekly window: from ``start`` on each of ``days`` until the next ``end``, in ``zone``."""

    days: frozenset[int]  # 0 is Monday
    start: time
    end: time
    zone: ZoneInfo

    def contains(self, now: datetime) -> bool:
        """Is the window open at ``now``?"""
        local = _aware(now).astimezone(self.zone)
        at, today, yesterday = local.time(), local.weekday(), (local.weekday() - 1) % 7
        if self.start < self.end:
            return today in self.days and self.start <= at < self.end
        # Past midnight: open from start today, or until end if it opened yesterday.
        return (today in self.days and at >= self.start) or (
            yesterday in self.days and at < self.end)

    def openings_after(self, now: datetime) -> Iterable[datetime]:
        """The window's next openings after ``now``, as aware UTC times, earliest first."""
        local_date = _aware(now).astimezone(self.zone).date()
        for offset in range(-1, 9):
            day = local_date + timedelta(days=offset)
            if day.weekday() in self.days:
                opening = datetime.combine(day, self.start, tzinfo=self.zone).astimezone(UTC)
                if opening > _aware(now):
                    yield opening


def parse_windows(raw: Any, field: str = "runWindows") -> tuple[RunWindow, ...]:
    """The windows of a request or a stored batch; ``InvalidBatch`` says what is wrong."""
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        raise _invalid(field, "must be a list of windows")
    if len(raw) > MAX_WINDOWS:
        raise _invalid(field, f"may hold at most {MAX_WINDOWS} windows, not {len(raw)}")
    return tuple(_parse_window(window, f"{field}[{n}]") for n, window in enumerate(raw))


def normalised(raw: Any, field: str = "runWindows") -> list[dict[str, str]] | None:
    """The windows as they are stored: checked, each with all four fields; None for none."""
    windows = parse_windows(raw, field)
    if not windows:
        return None
    return [{"days": describe_days(w.days), "from": _clock(w.start), "to": _clock(w.end),
             "timezone": w.zone.key} for w in windows]


def is_open(windows: Sequence[RunWindow], now: datetime) -> bool:
    """May a page start at ``now``? Always, without windows."""
    return not windows or any(window.contains(now) for window in windows)


def next_opening(windows: Sequence[RunWindow], now: datetime) -> datetime | None:
    """When the next window opens (aware UTC); None when one is open now or there are none."""
    if is_open(windows, now):
        return None
    openings = [next(iter(w.openings_after(now)), None) for w in windows]
    found = [opening for opening in openings if opening is not None]
    return min(found) if found else None


def closed_sentence(windows: Sequence[RunWindow], now: datetime) -> str | None:
    """Why no page starts now, for ``progressDescription``; None while a window is open."""
    opening = next_opening(windows, now)
    if opening is None:
        return None if is_open(windows, now) else "Outside its run windows"
    zone = windows[0].zone
    local = opening.astimezone(zone)
    return (f"Outside its run windows ({'; '.join(describe(w) for w in windows)}): "
            f"the next page starts at {local:%Y-%m-%d %H:%M} {zone.key} "
            f"({opening:%Y-%m-%dT%H:%M:%SZ})")


def describe(window: RunWindow) -> str:
    """``Mon-Fri 22:00-06:00 Europe/Berlin``."""
    return f"{describe_days(window.days)} {_clock(window.start)}-{_clock(window.end)} " \
           f"{window.zone.key}"


def describe_days(days: frozenset[int]) -> str:
    """Days as the shortest ``Mon-Fri,Sun`` list of runs (``Mon-Sun`` for every day)."""
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    if len(runs) > 1 and runs[0][0] == 0 and runs[-1][-1] == 6:
        runs = [runs[-1] + runs[0], *runs[1:-1]]  # a run over Sunday night: Fri-Mon
    return ",".join(DAY_NAMES[run[0]] if len(run) == 1 else
                    f"{DAY_NAMES[run[0]]}-{DAY_NAMES[run[-1]]}" for run in runs)


def _parse_window(raw: Any, field: str) -> RunWindow:
    if not isinstance(raw, Mapping):
        raise _invalid(field, 'must be an object {"days", "from", "to", "timezone"}')
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise _invalid(field, f"has unknown fields {', '.join(map(str, unknown))}")
    for name in ("from", "to"):
        if name not in raw:
            raise _invalid(field, f'needs "{name}" (a local time like "22:00")')
    return RunWindow(_parse_days(raw.get("days"), field), _parse_time(raw["from"], field),
                     _parse_time(raw["to"], field, end=True),
                     _parse_zone(raw.get("timezone", "UTC"), field))


def _parse_days(raw: Any, field: str) -> frozenset[int]:
    """``Mon-Fri``, ``Sat,Sun``, ``Fri-Mon`` (a run may wrap), ``*`` or none: every day."""
    if raw is None or raw == "*":
        return _ALL_DAYS
    if not isinstance(raw, str) or len(raw) > 100:
        raise _invalid(field, 'days must be text like "Mon-Fri" or "Sat,Sun"')
    days: set[int] = set()
    for part in raw.split(","):
        ends = [_day(name, field) for name in part.split("-")]
        if len(ends) == 1:
            days.add(ends[0])
        elif len(ends) == 2:
            span = (ends[1] - ends[0]) % 7
            days.update((ends[0] + n) % 7 for n in range(span + 1))
        else:
            raise _invalid(field, f"days has a malformed run {part.strip()!r}")
    return frozenset(days)


def _day(name: str, field: str) -> int:
    day = _DAY_WORDS.get(name.strip().lower())
    if day is None:
        raise _invalid(field, f"days names an unknown day {name.strip()!r} (use "
                              f"{', '.join(DAY_NAMES)})")
    return day


def _parse_time(raw: Any, field: str, end: bool = False) -> time:
    if end and raw == "24:00":
        return time(0, 0)
    match = _TIME.match(raw) if isinstance(raw, str) else None
    if match is None:
        raise _invalid(field, f'from and to are local times "HH:MM" (or "HH:MM:SS"), '
                              f'not {raw!r}')
    return time(int(match[1]), int(match[2]), int(match[3] or 0))


def _parse_zone(raw: Any, field: str) -> ZoneInfo:
    if not isinstance(raw, str) or not raw or len(raw) > 100:
        raise _invalid(field, "timezone must be an IANA time zone name like Europe/Berlin")
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise _invalid(field, f"timezone {raw!r} is not a known IANA time zone "
                              f"(like Europe/Berlin or UTC)") from None


def _clock(at: time) -> str:
    return f"{at:%H:%M}" if at.second == 0 else f"{at:%H:%M:%S}"


def _aware(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now


def _invalid(field: str, problem: str) -> InvalidBatch:
    return InvalidBatch(f"{field} {problem}", {"field": field.split("[")[0]})
