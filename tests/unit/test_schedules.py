"""Cron schedules: checked at registration, turned into celery beat entries."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from celery.schedules import crontab

from batchq.batch_types.context import SourceChunk
from batchq.batch_types.registry import BatchType, Registry
from batchq.domain.schedules import CronFields, next_run, parse_cron
from batchq.errors import ConfigurationError
from batchq.settings import Settings
from workers.app import create_celery, scheduled_starts


def nothing(params: Any, cursor: Any, limit: int) -> SourceChunk:
    return SourceChunk([])


def scheduled(code: str, schedule: str) -> BatchType:
    return BatchType(code=code, handler=print, source=nothing, schedule=schedule)


@pytest.mark.parametrize("expression", [
    "* * * * *", "30 2 * * *", "*/15 2-4 * * 1-5", "0,30 8-18/2 1,15 1-12 0", "59 23 31 12 6",
    "0 22-2 * * *",  # a range that wraps past midnight, as Celery reads it
])
def test_every_accepted_expression_means_the_same_to_celery(expression: str) -> None:
    fields = parse_cron(expression)
    assert fields == CronFields(*expression.split())
    beat_entry = scheduled_starts(_registry(scheduled("t", expression)))["start-scheduled:t"]
    schedule = beat_entry["schedule"]
    assert isinstance(schedule, crontab)
    assert schedule == crontab(*expression.split()[:2], day_of_week=fields.day_of_week,
                               day_of_month=fields.day_of_month,
                               month_of_year=fields.month_of_year)
    assert (beat_entry["task"], beat_entry["args"]) == ("batchq.start_scheduled", ["t"])


def test_the_crontab_fires_when_the_expression_says() -> None:
    schedule = scheduled_starts(_registry(scheduled("t", "*/15 2-4 * * 1-5")))[
        "start-scheduled:t"]["schedule"]
    assert schedule.minute == {0, 15, 30, 45}
    assert schedule.hour == {2, 3, 4}
    assert schedule.day_of_week == {1, 2, 3, 4, 5}
    every_minute = scheduled_starts(_registry(scheduled("m", "* * * * *")))[
        "start-scheduled:m"]["schedule"]
    assert every_minute.minute == set(range(60))
    now = datetime.now(UTC)
    assert 0 < every_minute.remaining_estimate(now).total_seconds() <= 60
    overnight = parse_cron("0 22-2 * * *")
    assert crontab(hour=overnight.hour).hour == {22, 23, 0, 1, 2}


@pytest.mark.parametrize(("expression", "problem"), [
    ("* * * *", "has 4 fields; a cron expression has 5"),
    ("* * * * * *", "has 6 fields"),
    ("60 * * * *", "the minute field allows 0 to 59, not 60"),
    ("* 24 * * *", "the hour field allows 0 to 23, not 24"),
    ("* * 0 * *", "the day of month field allows 1 to 31, not 0"),
    ("* * * 13 *", "the month field allows 1 to 12, not 13"),
    ("* * * * 7", "the day of week field allows 0 to 6, not 7"),
    ("*/0 * * * *", "the minute field's step must be at least 1"),
    ("5/15 * * * *", "the minute field '5/15' is not understood"),
    ("* * * * mon", "the day of week field 'mon' is not understood"),
    ("@daily", "has 1 fields"),
    ("1,,2 * * * *", "is not understood"),
])
def test_a_bad_schedule_is_a_configuration_error_naming_the_type(expression: str,
                                                                 problem: str) -> None:
    with pytest.raises(ConfigurationError, match="Batch type 'nightly' has a bad schedule") as e:
        scheduled("nightly", expression)
    assert problem in str(e.value)


def test_a_schedule_without_a_source_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="'echo-nightly' has a schedule but no source"):
        BatchType(code="echo-nightly", handler=print, schedule="0 3 * * *")


def test_the_celery_app_schedules_each_scheduled_type_it_loads(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, types=("tests.scheduled_types",))
    beat_schedule = create_celery(settings).conf.beat_schedule
    assert beat_schedule["start-scheduled:test-minutely"]["args"] == ["test-minutely"]
    assert "monitor-active-batches" in beat_schedule
    assert not any(name.endswith((":echo", ":noop", ":http")) for name in beat_schedule)


def _registry(*types: BatchType) -> Registry:
    registry = Registry()
    for batch_type in types:
        registry.add(batch_type)
    return registry


NEXT_RUN_EXPRESSIONS = [
    "* * * * *", "30 2 * * *", "*/15 2-4 * * 1-5", "0,30 8-18/2 1,15 1-12 0", "59 23 31 12 6",
    "0 22-2 * * *", "5 4 * * 0", "0 0 29 2 *", "10-50/20 */7 5-3 * *", "0 12 13 * 5",
]
NEXT_RUN_AFTER = [datetime(2026, 12, 3, 9, 15, 29), datetime(2027, 2, 28, 23, 59, 0),
                  datetime(2028, 2, 29, 0, 0, 0), datetime(2026, 12, 31, 23, 59, 59, 999999),
                  datetime(2027, 6, 13, 12, 0, 0)]


@pytest.mark.parametrize("expression", NEXT_RUN_EXPRESSIONS)
def test_next_run_is_when_celery_beat_runs_the_schedule_next(expression: str) -> None:
    fields = parse_cron(expression)
    schedule = crontab(minute=fields.minute, hour=fields.hour,
                       day_of_month=fields.day_of_month, month_of_year=fields.month_of_year,
                       day_of_week=fields.day_of_week)
    for after in NEXT_RUN_AFTER:
        last, delta, _now = schedule.remaining_delta(after.replace(tzinfo=UTC), tz=UTC)
        celery_next = (last + delta).replace(tzinfo=None)
        assert next_run(expression, after) == celery_next, (expression, after)


def test_next_run_of_a_date_that_never_comes_is_none() -> None:
    assert next_run("0 0 30 2 *", datetime(2026, 1, 1)) is None


def test_next_run_is_strictly_after_the_given_minute() -> None:
    assert next_run("* * * * *", datetime(2026, 1, 1, 10, 0)) == datetime(2026, 1, 1, 10, 1)
    assert next_run("0 10 * * *", datetime(2026, 1, 1, 10, 0, 30)) == datetime(2026, 1, 2, 10, 0)
