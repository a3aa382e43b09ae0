"""Tier 2: one archive hour file -> a published hour ``{out}/YYYY-MM-DD/HH/`` (data.parquet +
manifest.json), through the day's stages (``export.export_archive``) restricted to that hour file.

When is an hour complete? The collector writes each entry to the hour file of the moment the
entry is archived (when its cycle ends), and may still append to hour HH shortly after HH+1:00.
An hour is taken as complete once ``GRACE`` has passed after its end, or as soon as the next
hour's file exists (the collector has moved on to it). ``GRACE`` is an assumption, not a
measurement: no timing of the collector's last write was available here. Before that, the hour
is refused (the current hour is "still being written"), unless ``--allow-incomplete``, which
exports it marked partial (``day_over_at_export: false``): a later run then finds the file grown
and replaces it ("completed"), as for a partial day.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import fsspec

from .archive import open_archive_day
from .errors import ArchiveError
from .export import ExportResult, HourReport, default_archive, export_archive
from .publish import DayDestination
from .schema import schema_for
from .storage import storage_options_for

DEFAULT_HOURLY_OUT = "output/tier2_hourly"
#: R2 keys of the hourly dataset: s3://BUCKET/tier2/hourly/YYYY-MM-DD/HH/
R2_HOURLY_PREFIX = "tier2/hourly"
TIER = "tier2"
#: How long after its end an hour file may still grow (see the module docstring).
GRACE = timedelta(minutes=2)
ONE_HOUR = timedelta(hours=1)
_HOUR = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3])")


def parse_hour(text: str | datetime) -> datetime:
    """``YYYY-MM-DDTHH`` (or a datetime) -> the hour's start, aware UTC; anything else is refused."""
    if isinstance(text, datetime):
        value = text if text.tzinfo else text.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    if not isinstance(text, str) or not _HOUR.fullmatch(text):
        raise ArchiveError(f"invalid hour {text!r}: expected YYYY-MM-DDTHH (UTC), e.g. 2026-01-15T05")
    try:
        return datetime.fromisoformat(f"{text}:00").replace(tzinfo=timezone.utc)
    except ValueError:
        raise ArchiveError(f"invalid hour {text!r}: no such calendar day") from None


def hour_text(start: datetime) -> str:
    return start.strftime("%Y-%m-%dT%H")


def hour_partition(start: datetime) -> str:
    """The hour's folder under the hourly root: ``YYYY-MM-DD/HH``."""
    return start.strftime("%Y-%m-%d/%H")


def hour_range(first: str | datetime, last: str | datetime) -> list[datetime]:
    a, b = parse_hour(first), parse_hour(last)
    if b < a:
        raise ArchiveError(f"--to-hour {hour_text(b)} is before --from-hour {hour_text(a)}")
    return [a + i * ONE_HOUR for i in range(int((b - a) / ONE_HOUR) + 1)]


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc)


def last_complete_hour(now: datetime | None = None) -> datetime:
    """The latest hour whose grace period is over: at 10:05 UTC hour 09, at 10:01 hour 08."""
    return parse_hour(_now(now) - GRACE) - ONE_HOUR


def catch_up_hours(count: int, now: datetime | None = None) -> list[datetime]:
    """The ``count`` latest complete hours, oldest first (``--catch-up N``)."""
    if count < 1:
        raise ArchiveError(f"--catch-up must be at least 1, not {count}")
    last = last_complete_hour(now)
    return [last - i * ONE_HOUR for i in reversed(range(count))]


def hour_file_exists(archive: str, start: datetime, storage_options: dict | None = None) -> bool:
    """Whether the archive holds the hour file of ``start`` (``YYYYMMDD/HH.jsonl.gz``)."""
    fs, root = fsspec.core.url_to_fs(str(archive), **(storage_options or {}))
    try:
        return fs.isfile(f"{root.rstrip('/')}/{start:%Y%m%d}/{start:%H}.jsonl.gz")
    except Exception:  # noqa: BLE001 - cannot tell: the grace period decides
        return False


def check_hour_guard(start: datetime, archive: str, allow_incomplete: bool, now: datetime | None = None,
                     storage_options: dict | None = None) -> bool:
    """Whether the hour is complete (the module docstring); an incomplete hour is refused unless
    ``allow_incomplete`` (then exported, marked partial). The next hour's file is looked up only
    during the grace period."""
    now = _now(now)
    end = start + ONE_HOUR
    if now >= end + GRACE:
        return True
    if now >= end and hour_file_exists(archive, end, storage_options):
        return True
    if allow_incomplete:
        return False
    shown = hour_text(start)
    if now < start:
        raise ArchiveError(f"cannot export hour {shown}: it is in the future (now {now:%Y-%m-%dT%H:%M} UTC)")
    if now < end:
        raise ArchiveError(f"cannot export the current hour {shown} (UTC): it is still being written; "
                           f"wait until {end + GRACE:%H:%M} UTC or pass --allow-incomplete")
    raise ArchiveError(f"hour {shown} ended at {end:%H:%M} UTC and its file may still grow until {end + GRACE:%H:%M} "
                       f"(the next hour's file is not there yet); run again then, or pass --allow-incomplete")


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
    ``hours_expected`` 1. A missing hour file is an ``ArchiveError`` (``--allow-incomplete`` or
    not: there would be nothing to publish); ``now`` (default: the clock) is what the
    completeness guard compares with."""
    started = time.perf_counter()
    start = parse_hour(hour)
    schema_for(layout)
    archive = archive or default_archive()
    archive_options = storage_options_for(archive, archive_storage_options)
    complete = check_hour_guard(start, archive, allow_incomplete, now, archive_options)
    archive_day = open_archive_day(archive, start.date(), archive_options).only_hour(start.hour)
    destination = DayDestination(out, start.date(), storage_options_for(out, storage_options), partition=hour_partition(start))
    return export_archive(archive_day, destination, layout=layout, allow_incomplete=allow_incomplete, force=force,
                          progress=progress, period_over=complete, started=started,
                          partition="hour", hour_utc=start.hour, tier=TIER,
                          partition_basis="archive_hour_file_utc")


def hourly_root(bucket: str) -> str:
    return f"s3://{bucket}/{R2_HOURLY_PREFIX}"


def split_hour_folder(location: str) -> tuple[str, datetime | None]:
    """``ROOT/YYYY-MM-DD/HH`` -> (ROOT, the hour); any other location -> (location, None)."""
    parts = str(location).rstrip("/").rsplit("/", 2)
    if len(parts) == 3 and re.fullmatch(r"[0-9]{2}", parts[2]):
        try:
            return parts[0] or "/", parse_hour(f"{parts[1]}T{parts[2]}")
        except ArchiveError:
            pass
    return str(location), None


__all__ = ["DEFAULT_HOURLY_OUT", "GRACE", "R2_HOURLY_PREFIX", "catch_up_hours", "check_hour_guard", "export_hour",
           "hour_partition", "hour_range", "hour_text", "last_complete_hour", "parse_hour"]
