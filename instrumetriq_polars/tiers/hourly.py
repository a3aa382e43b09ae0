"""Tier 2: one archive hour file -> a published hour ``{out}/YYYY-MM-DD/HH/`` (data.parquet +
manifest.json), through the day's stages (``daily.export_archive``) restricted to that hour file.

When is an hour complete? The collector writes each entry to the hour file of the moment the
entry is archived (when its cycle ends), and may still append to hour HH shortly after HH+1:00.
An hour is taken as complete once ``GRACE`` has passed after its end, or as soon as the next
hour's file exists (the collector has moved on to it). ``GRACE`` is an assumption, not a
measurement: no timing of the collector's last write was available here. Before that, the hour
is refused (the current hour is "still being written"), unless ``allow_incomplete``, which
exports it marked partial (``day_over_at_export: false``): a later run then finds the file grown
and replaces it ("completed"), as for a partial day.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..archive import hour_file_exists, open_archive_day  # noqa: F401 - hour_file_exists re-exported
from ..errors import NotOverError, RangeError
from ..periods import ONE_HOUR, archive_day_name, hour_path, hour_range, hour_text, next_hour, parse_hour, utc_now  # noqa: F401
from .. import periods
from ..schema import schema_for
from ..storage import storage_options_for
if TYPE_CHECKING:
    from ..source import HourReport
from . import DEFAULT_HOURLY_OUT, R2_HOURLY_PREFIX, ExportResult, default_archive, hourly_root  # noqa: F401 - re-exported

TIER = "tier2"
#: How long after its end an hour file may still grow (see the module docstring; ``periods.hour_over``).
GRACE = periods.GRACE
#: the hour's folder under the hourly root (``YYYY-MM-DD/HH``); the calendar's name is ``hour_path``
hour_partition = hour_path


def _now(now: datetime | None) -> datetime:
    from datetime import timezone

    return (now or utc_now()).astimezone(timezone.utc)


def last_complete_hour(now: datetime | None = None) -> datetime:
    """The latest hour whose grace period is over: at 10:05 UTC hour 09, at 10:01 hour 08."""
    return parse_hour(_now(now) - GRACE) - ONE_HOUR


def catch_up_hours(count: int, now: datetime | None = None) -> list[datetime]:
    """The ``count`` latest complete hours, oldest first (what an hourly catch-up looks at)."""
    if count < 1:
        raise RangeError(f"the number of hours must be at least 1, not {count}", unit="hour")
    last = last_complete_hour(now)
    if count > (last - parse_hour("0001-01-01T00")) // ONE_HOUR + 1:  # an edge of the calendar, not a traceback
        raise RangeError(f"{count} hours up to {hour_text(last)} reach before the calendar's first hour 0001-01-01T00", unit="hour")
    return [last - i * ONE_HOUR for i in reversed(range(count))]


def check_hour_guard(start: datetime, archive: str, allow_incomplete: bool, now: datetime | None = None,
                     storage_options: dict | None = None) -> bool:
    """Whether the hour is complete (the module docstring); an incomplete hour is refused unless
    ``allow_incomplete`` (then exported, marked partial). The next hour's file is looked up only
    during the grace period. ``NotOverError`` (``.until``: when it will be complete)."""
    now = _now(now)
    end = next_hour(start)
    if periods.hour_over(start, now, lambda: hour_file_exists(archive, end, storage_options)):  # the one rule
        return True
    if allow_incomplete:
        return False
    shown = hour_text(start)
    if now < start:
        raise NotOverError(f"cannot export hour {shown}: it is in the future (now {hour_text(now)}:{now.minute:02d} UTC)",
                           shown, future=True)
    if end is None:  # the calendar's last hour: never over
        raise NotOverError(f"cannot export hour {shown}: it is the calendar's last hour", shown, future=True)
    until = end + GRACE
    if now < end:
        raise NotOverError(f"cannot export the current hour {shown} (UTC): it is still being written; "
                           f"wait until {until:%H:%M} UTC", shown, until)
    raise NotOverError(f"hour {shown} ended at {end:%H:%M} UTC and its file may still grow until {until:%H:%M} "
                       f"(the next hour's file is not there yet); run again then", shown, until)


def export_hour(
    hour: str | datetime,
    archive: str | None = None,
    out: str = DEFAULT_HOURLY_OUT,
    *,
    layout: str = "flat",
    allow_incomplete: bool = False,
    force: bool = False,
    storage_options: dict | None = None,
    archive_storage_options: dict | None = None,
    progress: Callable[[HourReport], None] | None = None,
    now: datetime | None = None,
) -> ExportResult:
    """Export one archive hour file to ``{out}/YYYY-MM-DD/HH/data.parquet`` + ``manifest.json``:
    the day's schema, layouts, ``_extra``, accounting, publishing, lock and idempotence, with
    ``hours_expected`` 1. A missing hour file is a ``NoHourFileError`` (``allow_incomplete`` or
    not: there would be nothing to publish); ``now`` (default: the clock) is what the
    completeness guard compares with."""
    from ..planner import UNCHANGED, plan_export
    from ..write.publish import Destination  # the guards and the calendar above stay light (status, the CLI)
    from .daily import export_archive, published_in_place, unchanged, wanted

    started = time.perf_counter()
    start = parse_hour(hour)
    schema_for(layout)
    archive = archive or default_archive()
    archive_options = storage_options_for(archive, archive_storage_options)
    complete = check_hour_guard(start, archive, allow_incomplete, now, archive_options)
    archive_day = open_archive_day(archive, start.date(), archive_options).only_hour(start.hour)
    destination = Destination(out, start.date(), storage_options_for(out, storage_options), partition=hour_path(start))
    plan = plan_export(archive_day.sizes(), complete, published_in_place(destination),
                       wanted(destination.label, layout, force=force, allow_incomplete=allow_incomplete))
    if plan.action == UNCHANGED:
        return unchanged(archive_day, destination, started)
    return export_archive(archive_day, destination, layout=layout, allow_incomplete=allow_incomplete, force=force,
                          progress=progress, period_over=complete, started=started,
                          partition="hour", hour_utc=start.hour, tier=TIER,
                          partition_basis="archive_hour_file_utc")


__all__ = ["DEFAULT_HOURLY_OUT", "GRACE", "R2_HOURLY_PREFIX", "catch_up_hours", "check_hour_guard", "export_hour",
           "hour_partition", "hour_range", "hour_text", "last_complete_hour", "parse_hour"]
