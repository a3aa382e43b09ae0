"""Monthly bundles: a month's published days ``DAILY/YYYY-MM-DD/`` -> one ``MONTHLY/YYYY-MM/``
(data.parquet + manifest.json), published like a day (``write.flow.write_and_publish``).

The days are streamed: ``pl.scan_parquet`` over their files (``dataset``'s scan of the listed
days, so only days that count are read) sunk into the hashing writer, never collected; the
schema is stable, so a bundle is a concatenation in date order. The manifest lists every day
read (``source_files``: date, parquet_sha256, rows, is_partial) and every day of the month (to
date) that is not published (``missing_days``). A bundle is partial when a day is missing, a day
is partial, or the month is not over (a month-to-date bundle of the current month). A bundle
follows its days: when the days read (or their data) changed since it was built, the next run
rebuilds it without ``force`` (``planner.plan_bundle``: REBUILD); when they did not, it is "already published" and nothing is read.
"""

from __future__ import annotations

import time
from dataclasses import replace
import warnings
from collections import Counter
from datetime import date, timedelta

import polars as pl

from ..dataset import PartitionEntry, list_days, scan_entries
from ..errors import DamagedDayError, NotOverError
from ..manifest import MAX_BAD_LINE_RECORDS, Manifest, utc_now_iso
from ..periods import archive_day_name, day_text, month_end, month_text, parse_month, utc_today
from ..planner import EXPORT, UNCHANGED, bundle_source, plan_bundle
from ..storage import storage_options_for
from ..version import __version__
from ..write.flow import write_and_publish
from ..write.parquet import sink
from ..write.publish import ALREADY, Destination
from . import DEFAULT_MONTHLY_DIR, DEFAULT_OUT_DIR, R2_MONTHLY_PREFIX, ExportResult, monthly_root  # noqa: F401 - re-exported

DEFAULT_DAILY_DIR = DEFAULT_OUT_DIR


def month_days(month: date, today: date | None = None) -> tuple[list[date], bool]:
    """The days a bundle of ``month`` covers, and whether the month is over: all of them for a
    past month; the days before ``today`` (UTC) for the current one (month to date)."""
    today = today or utc_today()
    last = month_end(month)
    if today <= month:
        raise NotOverError(f"cannot bundle {month_text(month)}: no day of it is over yet (today is {day_text(today)} UTC)", month_text(month))
    end = min(last, today - timedelta(days=1))
    return [month + timedelta(days=i) for i in range((end - month).days + 1)], last < today


def bundle_month(
    month: str | date,
    daily: str = DEFAULT_DAILY_DIR,
    out: str = DEFAULT_MONTHLY_DIR,
    *,
    force: bool = False,
    storage_options: dict | None = None,
    daily_storage_options: dict | None = None,
    today: date | None = None,
) -> ExportResult:
    """Bundle the published days of ``month`` under ``daily`` into ``{out}/YYYY-MM/``. Raises
    ``DatasetError`` when no day of the month is published, or the days are of different export
    formats; ``DamagedDayError`` when a day's file does not hold its manifest's rows."""
    started = time.perf_counter()
    first = parse_month(month)
    days, over = month_days(first, today)
    daily_options = storage_options_for(daily, daily_storage_options)
    entries = list_days(daily, days[0], days[-1], storage_options=daily_options, partial="include")  # partial days: in source_files
    published = [e for e in entries if e.published]
    missing = [e.day.isoformat() for e in entries if not e.published]
    destination = Destination(out, first, storage_options_for(out, storage_options), partition=month_text(first))
    sources = [bundle_source(e.manifest) for e in published]
    in_place = destination.in_place()
    decision = plan_bundle(in_place, sources, missing, over, force)
    if decision.action == UNCHANGED:
        return ExportResult(in_place.manifest, destination.url, ALREADY, time.perf_counter() - started)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the days not read are the manifest's missing_days
        plan = scan_entries(daily, entries, f"bundle {month_text(first)} from {daily}", daily_options, False)
    _check_days(published)
    _check_rows(plan, published)

    def finish(written) -> Manifest:
        return replace(_manifest(first, published, sources, missing, over, written), source_root=str(daily))

    # the days' rows through the writer every tier uses (its encodings, its row groups); a bundle
    # follows its days: the planner's REBUILD replaces the bundle in place without force
    manifest, status = write_and_publish(destination, lambda fileobj: sink(plan, fileobj), finish, force=decision.action != EXPORT)
    return ExportResult(manifest, destination.url, status, time.perf_counter() - started)


def _check_days(published: list[PartitionEntry]) -> None:
    """Each day's data.parquet is the file its manifest states (sha256, streamed): a day damaged in
    place (the same size, other bytes) is named here, not met as a reader's error inside the sink."""
    import hashlib

    from .. import interrupt
    from ..folder import storage_errors

    for entry in published:
        digest, folder = hashlib.sha256(), entry.folder
        with storage_errors(f"could not read {entry.data_url}", entry.data_url):
            with folder.fs.open(folder.data_path, "rb") as f:
                while chunk := f.read(8 << 20):
                    interrupt.check()
                    digest.update(chunk)
        if digest.hexdigest() != entry.manifest.parquet_sha256:
            raise DamagedDayError(f"the day {entry.name} is damaged: {entry.data_url} does not match its manifest's sha256 (changed "
                                  "after its export); nothing bundled; verify that day and export it again, replacing it",
                                  entry.data_url, entry.data_size, entry.manifest.parquet_size_bytes)


def _check_rows(plan: pl.LazyFrame, published: list[PartitionEntry]) -> None:
    """The days' files hold the rows their manifests state (their footers are read, not their data)."""
    stated = sum(e.manifest.row_count for e in published)
    found = plan.select(pl.len()).collect().item()
    if found != stated:
        raise DamagedDayError(f"the days' data.parquet files hold {found} rows, their manifests say {stated}: a day was changed "
                              "after its export; run verify on the month's days and re-export the damaged one, replacing it",
                              published[0].data_url, found, stated)


def _manifest(first: date, published: list[PartitionEntry], sources: list[dict], missing: list[str], over: bool, written) -> Manifest:
    days = [e.manifest for e in published]
    by_hour: Counter[str] = Counter()
    versions: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    mistyped: Counter[str] = Counter()
    for m in days:
        by_hour.update(m.rows_by_hour)
        versions.update(m.schema_versions)
        unknown.update(m.unknown_fields)
        mistyped.update(m.mistyped_fields)
    instants = [t for m in days for t in (m.min_added_ts, m.max_added_ts) if t]
    bad_lines = [b for m in days for b in m.bad_lines][:MAX_BAD_LINE_RECORDS]
    row_count = sum(m.row_count for m in days)
    return Manifest(
        date_utc=month_text(first), archive_day=archive_day_name(first)[:6], row_count=row_count,
        parquet_sha256=written.sha256, parquet_size_bytes=written.size, layout=days[0].layout,
        schema_fingerprint=days[0].schema_fingerprint, column_count=days[0].column_count,
        # per hour of the day, over the month's days: an hour is missing when no day has it
        hours_found=len(by_hour), missing_hours=[h for h in range(24) if f"{h:02d}" not in by_hour],
        rows_by_hour={key: by_hour[key] for key in sorted(by_hour)}, source_files=sources,
        schema_versions=dict(sorted(versions.items())),
        min_added_ts=min(instants, default=None), max_added_ts=max(instants, default=None),
        lines_read=sum(m.lines_read for m in days), lines_exported=row_count,
        bad_line_count=sum(m.bad_line_count for m in days), bad_lines=bad_lines,
        unknown_fields=dict(sorted(unknown.items())), mistyped_fields=dict(sorted(mistyped.items())),
        exporter={"name": "instrumetriq_polars", "version": __version__, "polars": pl.__version__},
        stdlib_json_lines=sum(m.stdlib_json_lines for m in days), day_over_at_export=over,
        partition="month", missing_days=missing, partition_basis="daily_partitions_of_the_month",
        export_version=days[0].export_version, created_ts_utc=utc_now_iso(),
    )


__all__ = ["DEFAULT_DAILY_DIR", "DEFAULT_MONTHLY_DIR", "R2_MONTHLY_PREFIX", "bundle_month", "month_days", "monthly_root",
           "parse_month"]
