"""The calendar: days, hours and months (UTC) as the dataset names them, parsed, printed, stepped.

- a day is a ``date``, written ``YYYY-MM-DD`` (its archive folder ``YYYYMMDD``);
- an hour is the aware UTC ``datetime`` of its start, written ``YYYY-MM-DDTHH`` (its partition
  folder ``YYYY-MM-DD/HH``);
- a month is the ``date`` of its first day, written ``YYYY-MM``.

Years are always printed with four digits ("0999-06-01T05"; ``strftime("%Y")`` prints "999" on
glibc), and the calendar's edges are edges, not tracebacks: the step after 9999-12-31,
9999-12-31T23 or 9999-12 is None, and ranges up to them end there. Parsing refuses anything else
with ``InvalidPeriodError`` before it can form a path; a range whose end is before its start, or a
count below 1, is a ``RangeError``. Standard library only (readers and the CLI import it).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

from .errors import InvalidPeriodError, RangeError

ONE_DAY = timedelta(days=1)
ONE_HOUR = timedelta(hours=1)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # fullmatch: "$" would accept a trailing newline
_HOUR = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3])")
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_LAST_HOUR = datetime(9999, 12, 31, 23, tzinfo=timezone.utc)


# -- days --------------------------------------------------------------------------------------
def parse_date(text: str | date) -> date:
    """``YYYY-MM-DD`` (or a date; a datetime gives its date) -> the date."""
    if isinstance(text, datetime):
        return text.date()
    if isinstance(text, date):
        return text
    if not isinstance(text, str) or not _DAY.fullmatch(text):
        raise InvalidPeriodError(f"invalid date {text!r}: expected YYYY-MM-DD", text, "day")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidPeriodError(f"invalid date {text!r}: no such calendar day", text, "day") from None


def day_text(day: date) -> str:
    """``YYYY-MM-DD``, four-digit year."""
    return f"{day.year:04d}-{day.month:02d}-{day.day:02d}"


def archive_day_name(day: date) -> str:
    """The archive's folder name of the day: ``YYYYMMDD``."""
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def next_day(day: date) -> date | None:
    """The day after ``day``; None after 9999-12-31."""
    return None if day == date.max else day + ONE_DAY


def date_range(first: str | date, last: str | date) -> list[date]:
    """Every day from ``first`` to ``last``, both included."""
    a, b = parse_date(first), parse_date(last)
    if b < a:
        raise RangeError(f"the last day {day_text(b)} is before the first {day_text(a)}", a, b, "day")
    return [a + i * ONE_DAY for i in range((b - a).days + 1)]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def utc_today() -> date:
    return utc_now().date()


def yesterday_utc() -> date:
    return utc_today() - ONE_DAY


def days_before(count: int, today: date | None = None) -> list[date]:
    """The ``count`` days before ``today`` (default: today UTC), oldest first."""
    if count < 1:
        raise RangeError(f"the number of days must be at least 1, not {count}", unit="day")
    today = today or utc_today()
    if count > (today - date.min).days:  # the calendar begins on 0001-01-01: an edge, not a traceback
        raise RangeError(f"{count} days before {day_text(today)} reach before the calendar's first day 0001-01-01", unit="day")
    return [today - timedelta(days=i) for i in range(count, 0, -1)]


# -- hours -------------------------------------------------------------------------------------
def parse_hour(text: str | datetime) -> datetime:
    """``YYYY-MM-DDTHH`` (or a datetime, naive read as UTC, cut to its hour) -> the hour's start,
    aware UTC."""
    if isinstance(text, datetime):
        value = text if text.tzinfo else text.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    if not isinstance(text, str) or not _HOUR.fullmatch(text):
        raise InvalidPeriodError(f"invalid hour {text!r}: expected YYYY-MM-DDTHH (UTC), e.g. 2026-01-15T05", text, "hour")
    try:
        return datetime.combine(date.fromisoformat(text[:10]), time(int(text[11:])), tzinfo=timezone.utc)
    except ValueError:
        raise InvalidPeriodError(f"invalid hour {text!r}: no such calendar day", text, "hour") from None


def hour_text(start: datetime) -> str:
    """``YYYY-MM-DDTHH``, four-digit year."""
    return f"{day_text(start.date())}T{start.hour:02d}"


def hour_path(start: datetime) -> str:
    """The hour's folder under an hourly root: ``YYYY-MM-DD/HH``."""
    return f"{day_text(start.date())}/{start.hour:02d}"


def hour_of_day(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=timezone.utc)


def next_hour(start: datetime) -> datetime | None:
    """The hour after ``start``; None after 9999-12-31T23."""
    return None if start >= _LAST_HOUR else start + ONE_HOUR


#: How long after its end an hour file may still grow (the collector appends an entry to the hour
#: of its archiving, shortly after the hour ends): an assumption, not a measurement.
GRACE = timedelta(minutes=2)


def hour_over(start: datetime, now: datetime, next_file_exists=lambda: False) -> bool:
    """The one completeness rule, for every tier: an hour is over once ``GRACE`` has passed after
    its end, or from its end on as soon as the next hour's file exists (``next_file_exists()``,
    asked only then: the collector moved on). A day is over when its last hour is (``day_over``)."""
    end = next_hour(start)
    if end is None:  # the calendar's last hour never ends
        return False
    return now >= end + GRACE or (now >= end and bool(next_file_exists()))


def day_over(day: date, now: datetime, next_file_exists=lambda: False) -> bool:
    """Whether ``day`` is over: its hour 23 is, by ``hour_over`` (``next_file_exists``: the next
    day's hour 00 file)."""
    return hour_over(hour_of_day(day, 23), now, next_file_exists)


def hour_range(first: str | datetime, last: str | datetime) -> list[datetime]:
    """Every hour from ``first`` to ``last``, both included."""
    a, b = parse_hour(first), parse_hour(last)
    if b < a:
        raise RangeError(f"the last hour {hour_text(b)} is before the first {hour_text(a)}", a, b, "hour")
    return [a + i * ONE_HOUR for i in range(int((b - a) / ONE_HOUR) + 1)]


# -- months ------------------------------------------------------------------------------------
def parse_month(text: str | date) -> date:
    """``YYYY-MM`` (or a date: its month) -> the month's first day."""
    if isinstance(text, datetime):
        text = text.date()
    if isinstance(text, date):
        return text.replace(day=1)
    if not isinstance(text, str) or not _MONTH.fullmatch(text):
        raise InvalidPeriodError(f"invalid month {text!r}: expected YYYY-MM", text, "month")
    if text[:4] == "0000":
        raise InvalidPeriodError(f"invalid month {text!r}: no such calendar month", text, "month")
    return date(int(text[:4]), int(text[5:]), 1)


def month_text(first: date) -> str:
    """``YYYY-MM``, four-digit year."""
    return f"{first.year:04d}-{first.month:02d}"


def next_month(first: date) -> date | None:
    """The first day of the month after ``first``'s; None after 9999-12."""
    if first.year == 9999 and first.month == 12:
        return None
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def month_end(first: date) -> date:
    """The last day of ``first``'s month."""
    following = next_month(first)
    return date.max if following is None else following - ONE_DAY


def month_range(first: str | date, last: str | date) -> list[date]:
    """Every month from ``first`` to ``last``, both included (their first days)."""
    a, b = parse_month(first), parse_month(last)
    if b < a:
        raise RangeError(f"the last month {month_text(b)} is before the first {month_text(a)}", a, b, "month")
    months, key = [], a
    while key is not None and key <= b:
        months.append(key)
        key = next_month(key)
    return months


# -- partition paths ---------------------------------------------------------------------------
def partition_date(path: str) -> date:
    """The first day a partition path stands for: ``2026-01-15`` (a day), ``2026-01-15/05`` or
    ``2026-01-15T05`` (an hour of it), ``2026-01`` (a month: its first day)."""
    return parse_date(path[:10]) if len(path) >= 10 else parse_month(path)


__all__ = [
    "ONE_DAY", "ONE_HOUR", "archive_day_name", "date_range", "day_text", "days_before", "hour_of_day", "hour_path",
    "hour_range", "hour_text", "month_end", "month_range", "month_text", "next_day", "next_hour", "next_month",
    "parse_date", "parse_hour", "parse_month", "partition_date", "utc_now", "utc_today", "yesterday_utc",
]
