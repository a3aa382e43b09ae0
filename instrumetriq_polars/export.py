"""export_day / export_days: one archive day folder -> a published Tier 3 day."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from .version import __version__
from .archive import ArchiveDay, check_date_guard, check_hours_guard, open_archive_day, parse_date
from .decode import BadLine
from .errors import BadInputError, InstrumetriqError, PublishError
from .source import Account, ArchiveDayScan, HourReport
from .lock import lock_day
from .manifest import MAX_BAD_LINE_RECORDS, Manifest, format_instant, hour_key
from .pipeline import lazy_day, sink
from .schema import fingerprint, schema_for
from .sink import DATA_NAME, DayDestination
from .storage import storage_options_for

DEFAULT_OUT_DIR = "output/tier3_daily"
DEFAULT_ARCHIVE = "/srv/instrumetriq/data/archive"
ARCHIVE_ENV = "INSTRUMETRIQ_ARCHIVE"


def default_archive() -> str:
    return os.environ.get(ARCHIVE_ENV) or DEFAULT_ARCHIVE


@dataclass
class ExportResult:
    """The outcome of exporting one day."""

    manifest: Manifest
    location: str  # the day folder's URL
    status: str  # "published" | "already published"
    seconds: float
    hours: list[HourReport] = field(default_factory=list)
    #: one line per name in the archive day folder that was not read, and why (``ignored_files``)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        m = self.manifest
        size_mb = m.parquet_size_bytes / 1e6
        partial = " PARTIAL" if m.is_partial else ""
        return (
            f"{m.date_utc}: {self.status}{partial}: {m.row_count} rows, {m.hours_found}/{m.hours_expected} hours, "
            f"{size_mb:.1f} MB, {self.seconds:.1f} s -> {self.location}"
        )


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
) -> ExportResult:
    """Export one archive day folder to ``{out}/YYYY-MM-DD/data.parquet`` + ``manifest.json``.

    Raises an ``InstrumetriqError`` subclass for every expected failure; in that case nothing new
    is published. Re-running with the same input writes a byte-identical data.parquet; if it
    matches what is already published the call is a no-op ("already published").
    ``s3://`` URLs without explicit storage options use the R2 settings (see ``storage``).
    """
    started = time.perf_counter()
    day = parse_date(day)
    schema = schema_for(layout)
    archive = archive or default_archive()
    day_over = check_date_guard(day, allow_incomplete, today)
    archive_day = open_archive_day(archive, day, storage_options_for(archive, archive_storage_options))
    check_hours_guard(archive_day, allow_incomplete)
    destination = DayDestination(out, day, storage_options_for(out, storage_options))
    destination.clean_stale_temps()

    scan = ArchiveDayScan(archive_day, progress)

    def finish(written) -> Manifest:
        account, hours = scan.result()  # the sink is done: every hour was pulled, once
        manifest = _manifest(archive_day, account, hours, written, layout, schema, day_over)
        if account.bad_lines and not allow_incomplete:
            raise BadInputError(_bad_input_message(account.bad_lines), account.bad_lines)
        return manifest

    plan = lazy_day(scan.frames, layout)
    manifest, status = _write_and_publish(destination, lambda fileobj: sink(plan, fileobj), finish, force)
    return ExportResult(manifest, destination.url, status, time.perf_counter() - started, scan.result()[1],
                        archive_day.warnings())


def upload_day(result: ExportResult, out: str, *, force: bool = False, storage_options: dict | None = None) -> ExportResult:
    """Copy a day exported to a local folder (``result`` of ``export_day``) to ``out``, e.g.
    ``s3://instrumetriq-datasets/tier3/daily``: data first, manifest last, refusing to replace a
    different published day unless ``force``; identical data is "already published".

    The remote manifest is read before anything is sent: when it already publishes this data
    (same sha256, data object of the right size) nothing is uploaded; when it publishes other
    data the upload is refused before it starts (unless ``force``)."""
    started = time.perf_counter()
    manifest = result.manifest
    destination = DayDestination(out, parse_date(manifest.date_utc), storage_options_for(out, storage_options))
    destination.clean_stale_temps()
    local_data = f"{result.location}/{DATA_NAME}"

    def copy(fileobj) -> None:
        with open(local_data, "rb") as f:
            shutil.copyfileobj(f, fileobj, 8 << 20)

    def check(written) -> Manifest:
        if (written.sha256, written.size) != (manifest.parquet_sha256, manifest.parquet_size_bytes):
            raise PublishError(f"{local_data} no longer matches its manifest; nothing uploaded; export the day again with --force")
        return manifest

    manifest, status = _write_and_publish(destination, copy, check, force, known=manifest)
    return ExportResult(manifest, destination.url, status, time.perf_counter() - started, result.hours, result.warnings)


def _write_and_publish(destination: DayDestination, write, finish, force: bool, known: Manifest | None = None) -> tuple[Manifest, str]:
    """Stream ``write`` to the destination, build the manifest with ``finish(written)``, publish;
    whatever was written and not published is discarded, on success as on failure. ``known``:
    the manifest of data known before it is written (an upload), decided on before sending it."""
    written = None
    lock = lock_day(destination)  # local: PublishError if another export of the day is running
    try:
        seen = destination.read_manifest_bytes()  # compared again right before publishing
        if known is not None and _already_published(destination, seen, known, force):  # before anything is sent
            return known, "already published"
        written = destination.write_data(write)
        manifest = finish(written)
        return manifest, _publish(destination, written, manifest, force, seen)
    except BaseException as exc:
        ours = _unwrap(exc)
        if ours is exc:
            raise
        raise ours from ours.__cause__  # without Polars' wrapper, with its own cause (for --debug)
    finally:
        destination.discard(written)
        lock.release()
        destination.remove_if_empty()


def _publish(destination: DayDestination, written, manifest: Manifest, force: bool, seen: bytes | None) -> str:
    """Publish unless the day is already published with this data, or with other data (refused
    without ``force``; ``force`` always rewrites), or its manifest changed since ``seen``
    (another export of the day)."""
    existing = destination.read_manifest_bytes()
    if _already_published(destination, existing, manifest, force):
        return "already published"
    if existing != seen:
        raise PublishError(
            f"{destination.display(destination.manifest_path)} changed while this export ran "
            f"(another export of {manifest.date_utc}?); nothing published by this run; run it again"
        )
    destination.publish(written, manifest.to_json())
    return "published"


def _already_published(destination: DayDestination, existing: bytes | None, manifest: Manifest, force: bool) -> bool:
    """Whether ``existing`` (the manifest in place) already publishes this data (see
    ``DayDestination.published_with``, which refuses other data); the manifest then keeps the
    published creation time."""
    old = destination.published_with(existing, manifest.parquet_sha256, force)
    if old is not None:
        manifest.created_ts_utc = old.created_ts_utc
    return old is not None


def _manifest(day: ArchiveDay, account: Account, hours: list[HourReport], written, layout: str, schema: dict, day_over: bool) -> Manifest:
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
        unknown_fields=dict(sorted(account.unknown_fields.items())),
        mistyped_fields=dict(sorted(account.mistyped_fields.items())),
        exporter={"name": "instrumetriq_polars", "version": __version__, "polars": pl.__version__},
        ignored_files=list(day.ignored_files),
        stdlib_json_lines=account.stdlib_json_lines,
        day_over_at_export=day_over,
    )


def _bad_input_message(bad_lines: list[BadLine]) -> str:
    more = f" (and {len(bad_lines) - 1} more)" if len(bad_lines) > 1 else ""
    return f"{bad_lines[0].message()}{more}; nothing published; fix the input or pass --allow-incomplete to publish without these lines"


def _unwrap(exc: BaseException) -> BaseException:
    """Polars re-raises errors from inside the IO source wrapped; surface ours as they were."""
    seen = exc
    while seen is not None:
        if isinstance(seen, InstrumetriqError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return exc


def export_days(days: Iterable[str | date], archive: str | None = None, out: str = DEFAULT_OUT_DIR, **options) -> list[ExportResult | InstrumetriqError]:
    """Export several days one after another; a failed day does not stop the next. Returns, per
    day, its ExportResult or the error that stopped it."""
    results: list[ExportResult | InstrumetriqError] = []
    for day in days:
        try:
            results.append(export_day(day, archive, out, **options))
        except InstrumetriqError as exc:
            results.append(exc)
    return results
