"""The calendar (periods.py): days, hours and months parsed, printed with four-digit years, stepped
and ranged up to the calendar's edges without an overflow."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from instrumetriq_polars.errors import InvalidPeriodError, RangeError
from instrumetriq_polars.partitions import DAILY, HOURLY, MONTHLY, runs_text
from instrumetriq_polars.periods import (
    archive_day_name, date_range, day_text, days_before, hour_path, hour_range, hour_text, month_end, month_range,
    month_text, next_day, next_hour, next_month, parse_date, parse_hour, parse_month, partition_date,
)

UTC = timezone.utc


@pytest.mark.parametrize("text, printed", [
    ("0999-06-01T05", "0999-06-01T05"), ("0001-01-01T00", "0001-01-01T00"), ("9999-12-31T23", "9999-12-31T23"),
    ("2026-01-15T05", "2026-01-15T05"),
])
def test_hours_print_as_they_parse(text, printed):
    start = parse_hour(text)
    assert start.tzinfo is UTC and hour_text(start) == printed
    assert hour_path(start) == printed.replace("T", "/")
    assert partition_date(hour_path(start)) == start.date()


def test_years_below_1000_keep_four_digits():
    assert day_text(date(999, 6, 1)) == "0999-06-01" and archive_day_name(date(999, 6, 1)) == "09990601"
    assert month_text(parse_month("0999-06")) == "0999-06" and partition_date("0999-06") == date(999, 6, 1)
    assert DAILY.path(date(5, 1, 2)) == "0005-01-02" and MONTHLY.label(date(5, 1, 1)) == "0005-01"


@pytest.mark.parametrize("parse, text", [
    (parse_date, "2026-02-30"), (parse_date, "2026-1-5"), (parse_date, "2026-01-05\n"), (parse_date, "0000-01-01"),
    (parse_hour, "2026-01-15T24"), (parse_hour, "2026-01-15 05"), (parse_hour, "2026-02-30T00"), (parse_hour, 5),
    (parse_month, "2026-13"), (parse_month, "0000-01"), (parse_month, "2026-1"),
])
def test_what_is_not_a_period_is_refused(parse, text):
    with pytest.raises(InvalidPeriodError) as refused:
        parse(text)
    assert refused.value.value == text


def test_the_step_after_the_last_period_is_none():
    assert next_day(date.max) is None and next_day(date(9999, 12, 30)) == date.max
    assert next_hour(parse_hour("9999-12-31T23")) is None
    assert next_hour(parse_hour("9999-12-31T22")) == parse_hour("9999-12-31T23")
    assert next_month(date(9999, 12, 1)) is None and month_end(date(9999, 12, 1)) == date.max
    assert month_end(date(2024, 2, 1)) == date(2024, 2, 29)


def test_ranges_reach_the_edges():
    assert date_range("9999-12-30", "9999-12-31") == [date(9999, 12, 30), date.max]
    assert [hour_text(h) for h in hour_range("9999-12-31T22", "9999-12-31T23")] == ["9999-12-31T22", "9999-12-31T23"]
    assert month_range("9999-11", "9999-12") == [date(9999, 11, 1), date(9999, 12, 1)]
    assert runs_text([date(9999, 12, 30), date.max], DAILY) == "9999-12-30..9999-12-31"
    assert runs_text([parse_hour("9999-12-31T23")], HOURLY) == "9999-12-31T23"


@pytest.mark.parametrize("make", [
    lambda: date_range("2026-01-02", "2026-01-01"), lambda: hour_range("2026-01-01T05", "2026-01-01T04"),
    lambda: month_range("2026-02", "2026-01"), lambda: days_before(0),
])
def test_a_backwards_range_or_no_count_is_a_range_error(make):
    with pytest.raises(RangeError) as refused:
        make()
    assert "--" not in str(refused.value)  # the library names no flag


def test_days_before_today():
    assert days_before(3, date(2026, 1, 10)) == [date(2026, 1, 7), date(2026, 1, 8), date(2026, 1, 9)]
    assert parse_hour(datetime(2026, 1, 15, 5, 59, 1)) == datetime(2026, 1, 15, 5, tzinfo=UTC)
