"""Tier 3: one archive day folder -> a published day ``ROOT/YYYY-MM-DD/`` (``export_day``).

The tier's own parts: the date and hours guards (``archive``), what the planner is told
(``planner.plan_export``), the read stage over the day's hour files (``source``), and the
manifest's fields; the plan, the writer and publishing are the write side's (``write``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import polars as pl

from .. import interrupt
from ..version import __version__
from ..archive import ArchiveDay, check_date_guard, check_hours_guard, hour_file_exists, open_archive_day
from ..errors import BadInputError, InstrumetriqError
from ..folder import PartitionFolder
from ..manifest import EXPORT_VERSION, MAX_BAD_LINE_RECORDS, Manifest, format_instant, hour_key
from ..periods import day_over, parse_date, utc_now
from ..planner import UNCHANGED, InPlace, Wanted, plan_export
from ..schema import fingerprint, schema_for
from ..storage import storage_options_for
from ..write.flow import clean_leftovers, write_and_publish
from ..write.publish import ALREADY, Destination
from . import DEFAULT_OUT_DIR, ExportResult, default_archive

if TYPE_CHECKING:
    from ..decode import BadLine
    from ..source import Account, HourReport

#: The read stage and the writer, imported on first use (module ``__getattr__``, as the package
#: does): an export that finds its day published reads no hour and does not load them.
_LAZY = {"ArchiveDayScan": "source", "lazy_day": "write.parquet", "sink": "write.parquet"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"instrumetriq_polars.{module}"), name)
    globals()[name] = value  # once imported, an ordinary attribute (which a test may replace)
    return value


def export_day(
    day: str | date,
    archive: str | None = None,
    out: str = DEFAULT_OUT_DIR,
    *,
    layout: str = "flat",
    allow_incomplete: bool = False,
    force: bool = False,
    storage_options: dict | None = None,
    archive_storage_options: dict | None = None,
    progress: Callable[[HourReport], None] | None = None,
    today: date | None = None,
    now: datetime | None = None,
) -> ExportResult:
    """Export one archive day folder to ``{out}/YYYY-MM-DD/data.parquet`` + ``manifest.json``.

    Raises an ``InstrumetriqError`` subclass for every expected failure; in that case nothing new
    is published. Re-running with the same input writes a byte-identical data.parquet; if it
    matches what is already published the call is a no-op ("already published").
    ``s3://`` URLs without explicit storage options use the R2 settings (see ``storage``).
    """
    started = time.perf_counter()
    day = parse_date(day)
    schema_for(layout)  # an unknown layout is refused before anything is read
    archive = archive or default_archive()
    now = (now or (datetime(today.year, today.month, today.day, 12, tzinfo=timezone.utc) if today else utc_now())).astimezone(timezone.utc)
    day_over = check_date_guard(day, allow_incomplete, now.date()) and _last_hour_over(day, archive, archive_storage_options,
                                                                                       allow_incomplete, now)
    archive_day = open_archive_day(archive, day, storage_options_for(archive, archive_storage_options))
    check_hours_guard(archive_day, allow_incomplete)
    out_options = storage_options_for(out, storage_options)
    destination = Destination(out, day, out_options)
    plan = plan_export(archive_day.sizes(), day_over, published_in_place(destination),
                       wanted(destination.label, layout, force=force, allow_incomplete=allow_incomplete))
    if plan.action == UNCHANGED:  # one manifest read and one size lookup instead of reading the day (~2 s)
        return unchanged(archive_day, destination, started)
    return export_archive(archive_day, destination, layout=layout, allow_incomplete=allow_incomplete, force=force,
                          progress=progress, period_over=day_over, started=started)


def _last_hour_over(day: date, archive: str, storage_options: dict | None, allow_incomplete: bool, now: datetime) -> bool:
    """A day is over only when its hour 23 is complete by the hourly rule (``periods.day_over``):
    at 00:01 the day before is not over yet unless the collector moved on to the new day's 00 file.
    Not over: exported partial with ``allow_incomplete``, else ``NotOverError``."""
    from ..errors import NotOverError
    from ..periods import GRACE, day_text, hour_of_day

    following = hour_of_day(day, 23) + timedelta(hours=1)
    if day_over(day, now, lambda: hour_file_exists(archive, following, storage_options_for(archive, storage_options))):
        return True
    if allow_incomplete:
        return False
    raise NotOverError(f"cannot export {day_text(day)} yet: its hour 23 ended at 00:00 UTC and its file may still grow until "
                       f"{following + GRACE:%H:%M} UTC (the next day's 00 file is not there yet); run again then",
                       day_text(day), following + GRACE)


def wanted(partition: str, layout: str, *, force: bool = False, allow_incomplete: bool = False, catch_up: bool = False) -> Wanted:
    """What the planner is told an export of ``partition`` (its folder: ``YYYY-MM-DD``,
    ``YYYY-MM-DD/HH``) in ``layout`` would write."""
    return Wanted(layout, fingerprint(schema_for(layout)), EXPORT_VERSION, partition, force, allow_incomplete, catch_up)


def unchanged(archive_day: ArchiveDay, destination: Destination, started: float) -> ExportResult:
    """The result of a partition the planner found ``UNCHANGED``: "already published", not re-read;
    what killed runs left there goes too."""
    clean_leftovers(destination)
    in_place = destination.in_place()
    return ExportResult(in_place.manifest, destination.url, ALREADY, time.perf_counter() - started,
                        warnings=archive_day.warnings(), skipped_read=True)


def published_in_place(folder: PartitionFolder) -> InPlace:
    """What ``folder`` publishes, for the planner; a folder that cannot be read counts as nothing
    published (the export then finds the same failure and says it)."""
    try:
        return folder.in_place()
    except InstrumetriqError:
        return InPlace()


def export_archive(archive_day: ArchiveDay, destination: Destination, *, layout: str, allow_incomplete: bool, force: bool,
                   progress: Callable[[HourReport], None] | None, period_over: bool, started: float, **fields) -> ExportResult:
    """The export of the hour files of ``archive_day`` (a day, or one hour of it) into the
    partition ``destination``, once the guards passed; ``fields``: the manifest's partition fields."""
    this = sys.modules[__name__]  # the read stage's and the writer's names (``_LAZY``), loaded here
    schema = schema_for(layout)
    scan = this.ArchiveDayScan(archive_day, interrupt.checked(progress))

    def finish(written) -> Manifest:
        account, hours = scan.result()  # the sink is done: every hour was pulled, once
        manifest = _manifest(archive_day, account, hours, written, layout, schema, period_over, **fields)
        if account.bad_lines and not allow_incomplete:
            raise BadInputError(_bad_input_message(account.bad_lines), account.bad_lines)
        return manifest

    plan = this.lazy_day(scan.frames, layout)
    manifest, status = write_and_publish(destination, lambda fileobj: this.sink(plan, fileobj), finish, force)
    return ExportResult(manifest, destination.url, status, time.perf_counter() - started, scan.result()[1],
                        archive_day.warnings())


def _manifest(day: ArchiveDay, account: Account, hours: list[HourReport], written, layout: str, schema: dict, day_over: bool,
              **fields) -> Manifest:
    from ..decode import damaged_spans

    rows_by_hour = {hour_key(h.hour): h.rows for h in hours}
    row_count = sum(rows_by_hour.values())
    return Manifest(
        date_utc=day.day.isoformat(),
        archive_day=day.archive_day,
        row_count=row_count,
        parquet_sha256=written.sha256,
        parquet_size_bytes=written.size,
        layout=layout,
        schema_fingerprint=fingerprint(schema),
        column_count=len(schema),
        hours_found=len(day.hour_files),
        missing_hours=[hour_key(h) for h in day.missing_hours],
        rows_by_hour=rows_by_hour,
        source_files=[
            {"hour": h.hour, "file": h.file, "size_bytes": h.size_bytes, "lines_read": h.lines_read,
             "rows": h.rows, "bad_lines": len(h.bad_lines)}
            for h in hours
        ],
        schema_versions=dict(sorted(account.schema_versions.items())),
        min_added_ts=format_instant(account.min_added),
        max_added_ts=format_instant(account.max_added),
        lines_read=account.lines_read,
        lines_exported=row_count,
        bad_line_count=len(account.bad_lines),
        bad_lines=[b.to_dict() for b in account.bad_lines[:MAX_BAD_LINE_RECORDS]],
        damaged_spans=damaged_spans(account.bad_lines),
        unknown_fields=dict(sorted(account.unknown_fields.items())),
        mistyped_fields=dict(sorted(account.mistyped_fields.items())),
        exporter={"name": "instrumetriq_polars", "version": __version__, "polars": pl.__version__},
        ignored_files=list(day.ignored_files),
        stdlib_json_lines=account.stdlib_json_lines,
        day_over_at_export=day_over,
        hours_expected=len(day.expected),
        **fields,
    )


def _bad_input_message(bad_lines: list[BadLine]) -> str:
    more = f" (and {len(bad_lines) - 1} more)" if len(bad_lines) > 1 else ""
    return f"{bad_lines[0].message()}{more}; nothing published; fix the input"
