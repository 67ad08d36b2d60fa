"""Run windows: the weekly arithmetic under a fake clock, and batches that wait for them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.presenters import batch_view
from batchq.domain.run_windows import is_open, next_opening, normalised, parse_windows
from batchq.domain.statuses import BatchStatus
from batchq.engine.monitoring import monitor_batch
from batchq.errors import ConfigurationError, InvalidBatch
from batchq.runtime import Runtime
from batchq.service import control

from .support import NewType, create, deliver_seed, ok_items, run_to_end, work_off_messages

NIGHTS = [{"days": "Mon-Fri", "from": "22:00", "to": "06:00", "timezone": "Europe/Berlin"}]


def utc(text: str) -> datetime:
    """Naive UTC, as the database keeps times."""
    return datetime.fromisoformat(text)


class FakeClock:
    """The wall clock of run windows, moved by hand."""

    def __init__(self, start: str) -> None:
        self.now = utc(start)

    def __call__(self) -> datetime:
        return self.now

    def set(self, text: str) -> None:
        self.now = utc(text)


@pytest.fixture
def clock(rt: Runtime) -> FakeClock:
    fake = FakeClock("2026-01-05T12:00:00")  # a Monday, 13:00 in Berlin
    rt.storage.pages.gate.clock = fake
    return fake


@pytest.mark.parametrize(("at", "open_"), [
    ("2026-01-05T20:59:59", False),  # Monday 21:59 Berlin (CET, UTC+1)
    ("2026-01-05T21:00:00", True),   # Monday 22:00
    ("2026-01-06T04:59:59", True),   # Tuesday 05:59, the window opened on Monday
    ("2026-01-06T05:00:00", False),  # Tuesday 06:00
    ("2026-01-10T04:00:00", True),   # Saturday 05:00: Friday's window runs into Saturday
    ("2026-01-10T22:00:00", False),  # Saturday 23:00: not a window day
    ("2026-01-12T03:00:00", False),  # Monday 04:00: Sunday opened no window
    ("2026-07-06T20:30:00", True),   # Monday 22:30 in summer (CEST, UTC+2)
    ("2026-07-06T19:59:00", False),  # Monday 21:59 CEST
])
def test_an_overnight_window_in_a_time_zone(at: str, open_: bool) -> None:
    assert is_open(parse_windows(NIGHTS), utc(at)) is open_


def test_the_next_opening_crosses_weekends_and_daylight_saving() -> None:
    windows = parse_windows(NIGHTS)
    friday_morning = utc("2026-01-09T06:00:00")
    assert next_opening(windows, friday_morning).isoformat() == "2026-01-09T21:00:00+00:00"
    saturday = utc("2026-01-10T12:00:00")
    assert next_opening(windows, saturday).isoformat() == "2026-01-12T21:00:00+00:00"
    before_spring = utc("2026-03-27T12:00:00")  # Friday; DST starts on Sunday the 29th
    assert next_opening(windows, before_spring).isoformat() == "2026-03-27T21:00:00+00:00"
    after_spring = utc("2026-03-28T12:00:00")
    assert next_opening(windows, after_spring).isoformat() == "2026-03-30T20:00:00+00:00"
    assert next_opening(windows, utc("2026-01-05T22:00:00")) is None  # open now


def test_windows_are_normalised_and_several_add_up() -> None:
    both = [{"days": "sat,sunday", "from": "08:00", "to": "12:00"},
            {"from": "00:00", "to": "00:00", "days": "Wed"}]
    assert normalised(both) == [
        {"days": "Sat-Sun", "from": "08:00", "to": "12:00", "timezone": "UTC"},
        {"days": "Wed", "from": "00:00", "to": "00:00", "timezone": "UTC"}]
    windows = parse_windows(both)
    assert is_open(windows, utc("2026-01-07T23:59:59"))  # a whole Wednesday
    assert is_open(windows, utc("2026-01-11T09:00:00"))
    assert not is_open(windows, utc("2026-01-11T12:00:00"))
    assert normalised([]) is None and is_open((), utc("2026-01-01T00:00:00"))


@pytest.mark.parametrize(("windows", "problem"), [
    ("22:00-06:00", "must be a list"),
    ([{"from": "22:00"}], 'needs "to"'),
    ([{"from": "25:00", "to": "06:00"}], "local times"),
    ([{"from": "22:00", "to": "06:00", "days": "Mon-Fry"}], "unknown day 'Fry'"),
    ([{"from": "22:00", "to": "06:00", "days": "Mon-Tue-Wed"}], "malformed run"),
    ([{"from": "22:00", "to": "06:00", "timezone": "Mars/Olympus"}], "not a known IANA"),
    ([{"from": "22:00", "to": "06:00", "timezone": "../../etc/passwd"}], "not a known IANA"),
    ([{"from": "22:00", "to": "06:00", "weekly": True}], "unknown fields weekly"),
    ([{"from": "00:00", "to": "01:00"}] * 21, "at most 20"),
])
def test_a_bad_window_names_what_is_wrong(windows: Any, problem: str) -> None:
    with pytest.raises(InvalidBatch, match=problem):
        parse_windows(windows)


def test_a_batch_outside_its_window_waits_says_why_and_starts_on_its_own(
    rt: Runtime, clock: FakeClock, new_type: NewType
) -> None:
    code, calls = new_type()
    batch_id = create(rt, code, ok_items(6), page_size=2, run_windows=NIGHTS)

    waiting = run_to_end(rt, batch_id)

    assert waiting["status"] == BatchStatus.WAITING and calls.runs == []
    shown = batch_view(control.batch_details(rt, batch_id))["progress_description"]
    assert shown.startswith("Outside its run windows (Mon-Fri 22:00-06:00 Europe/Berlin): "
                            "the next page starts at 2026-01-05 22:00 Europe/Berlin")
    clock.set("2026-01-05T21:00:00")
    monitor_batch(rt, batch_id)  # what beat does every few seconds
    assert run_to_end(rt, batch_id)["status"] == BatchStatus.COMPLETED
    assert len(calls.runs) == 6


def test_a_closing_window_pauses_between_pages(
    rt: Runtime, clock: FakeClock, new_type: NewType
) -> None:
    clock.set("2026-01-05T21:30:00")  # open
    code, calls = new_type()
    batch_id = create(rt, code, ok_items(8), page_size=2, run_windows=NIGHTS)
    deliver_seed(rt)  # four pages queued
    work_off_messages(rt, lost=lambda kind, args: kind == "execute" and args[1] > 0)
    assert len(calls.runs) == 2

    clock.set("2026-01-06T05:00:00")  # closed
    monitor_batch(rt, batch_id)  # the queued pages go back: their messages start nothing
    paused = run_to_end(rt, batch_id)

    assert paused["status"] == BatchStatus.PROCESSING and len(calls.runs) == 2
    assert {p["status"] for p in rt.storage.pages.of_batch(batch_id)[1:]} == {"created"}
    clock.set("2026-01-06T21:00:00")
    monitor_batch(rt, batch_id)
    assert run_to_end(rt, batch_id)["status"] == BatchStatus.COMPLETED


def test_a_types_windows_apply_unless_the_batch_names_its_own(
    rt: Runtime, clock: FakeClock, new_type: NewType
) -> None:
    code, _ = new_type(run_windows=NIGHTS)
    typed = rt.storage.batches.get(create(rt, code, ok_items(1)))
    anytime = rt.storage.batches.get(create(rt, code, ok_items(1), run_windows=[]))
    assert typed is not None and anytime is not None
    assert typed["run_windows"] == NIGHTS and anytime["run_windows"] is None
    with pytest.raises(ConfigurationError, match="unknown day"):
        new_type(run_windows=[{"from": "22:00", "to": "06:00", "days": "Someday"}])


def test_windows_over_the_api(rt: Runtime, clock: FakeClock, client: FlaskClient) -> None:
    refused = client.post("/batches", json={"type": "echo", "items": [1], "runWindows": [
        {"from": "22:00", "to": "06:00", "timezone": "Nowhere/City"}]})
    assert refused.status_code == 400
    assert "runWindows[0] timezone 'Nowhere/City'" in refused.get_json()["error"]

    batch = client.post("/batches", json={"type": "echo", "items": [1], "runWindows": NIGHTS})
    batch_id = batch.get_json()["id"]
    assert batch.get_json()["runWindows"] == NIGHTS
    assert batch.get_json()["progressDescription"].startswith("Outside its run windows")

    reopened = client.patch(f"/batches/{batch_id}", json={"runWindows": None})
    assert reopened.get_json()["runWindows"] is None
    assert reopened.get_json()["progressDescription"] == "Waiting for a worker"
