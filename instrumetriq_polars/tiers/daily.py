"""export_day / export_days: one archive day folder -> a published Tier 3 day."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date

import polars as pl

from . import interrupt
from .version import __version__
from .archive import ArchiveDay, check_date_guard, check_hours_guard, open_archive_day, parse_date
from .decode import BadLine, damaged_spans
from .errors import BadInputError, DamagedDayError, InstrumetriqError, LockHeldError
from .source import Account, ArchiveDayScan, HourReport
from .lock import lock_day
from .dayfolder import DayFolder
from .manifest import EXPORT_VERSION, MAX_BAD_LINE_RECORDS, Manifest, format_instant, hour_key
from .pipeline import lazy_day, sink
from .schema import fingerprint, schema_for
from .publish import ALREADY, DATA_NAME, Candidate, DayDestination, decide
from .dayfolder import partition_date
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
    status: str  # "published" | "completed" (replaced a partial export) | "already published"
    seconds: float
    hours: list[HourReport] = field(default_factory=list)
    #: one line per name in the archive day folder that was not read, and why (``ignored_files``)
    warnings: list[str] = field(default_factory=list)
    #: True when the day was found published from the same archive files and not re-read (``unchanged_publication``)
    skipped_read: bool = False

    def summary(self) -> str:
        m = self.manifest
        size_mb = m.parquet_size_bytes / 1e6
        partial = " PARTIAL" if m.is_partial else ""
        how = ", archive unchanged, not re-read" if self.skipped_read else ""
        read = len(m.source_files)
        span = (f"{read}/{read + len(m.missing_days)} days" if m.partition == "month" else f"{m.hours_found}/{m.hours_expected} hours")
        return (
            f"{m.partition_path.replace('/', 'T')}: {self.status}{partial}: {m.row_count} rows, {span}, "
            f"{size_mb:.1f} MB, {self.seconds:.1f} s{how} -> {self.location}"
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
    schema_for(layout)  # an unknown layout is refused before anything is read
    archive = archive or default_archive()
    day_over = check_date_guard(day, allow_incomplete, today)
    archive_day = open_archive_day(archive, day, storage_options_for(archive, archive_storage_options))
    check_hours_guard(archive_day, allow_incomplete)
    out_options = storage_options_for(out, storage_options)
    if not force:
        in_place = unchanged_publication(archive_day, DayFolder(out, day, out_options), layout)
        if in_place is not None and (not in_place.manifest.is_partial or (allow_incomplete and in_place.manifest.day_over_at_export == day_over)):
            _clean_leftovers(DayDestination(out, day, out_options))
            return ExportResult(in_place.manifest, in_place.url, ALREADY, time.perf_counter() - started,
                                warnings=archive_day.warnings(), skipped_read=True)
    destination = DayDestination(out, day, out_options)
    return export_archive(archive_day, destination, layout=layout, allow_incomplete=allow_incomplete, force=force,
                          progress=progress, period_over=day_over, started=started)


def _clean_leftovers(destination: DayDestination) -> None:
    """What killed runs left in a day that is skipped as already published goes too (inside the
    lock, as on every run); when another export of the day holds the lock, that run cleans up."""
    try:
        lock = lock_day(destination)
    except LockHeldError:
        return
    try:
        destination.clean_stale_temps(locked=lock.held)
    finally:
        lock.release()


def export_archive(archive_day: ArchiveDay, destination: DayDestination, *, layout: str, allow_incomplete: bool, force: bool,
                   progress: Callable[[HourReport], None] | None, period_over: bool, started: float, **fields) -> ExportResult:
    """The export of the hour files of ``archive_day`` (a day, or one hour of it) into the
    partition ``destination``, once the guards passed; ``fields``: the manifest's partition fields."""
    schema = schema_for(layout)
    scan = ArchiveDayScan(archive_day, interrupt.checked(progress))

    def finish(written) -> Manifest:
        account, hours = scan.result()  # the sink is done: every hour was pulled, once
        manifest = _manifest(archive_day, account, hours, written, layout, schema, period_over, **fields)
        if account.bad_lines and not allow_incomplete:
            raise BadInputError(_bad_input_message(account.bad_lines), account.bad_lines)
        return manifest

    plan = lazy_day(scan.frames, layout)
    manifest, status = _write_and_publish(destination, lambda fileobj: sink(plan, fileobj), finish, force)
    return ExportResult(manifest, destination.url, status, time.perf_counter() - started, scan.result()[1],
                        archive_day.warnings())


@dataclass(frozen=True)
class InPlace:
    """A published day found exported from the archive day as it is now (``unchanged_publication``)."""

    manifest: Manifest
    url: str  # the day folder


def archive_changes(archive_day: ArchiveDay, manifest: Manifest) -> list[str]:
    """How the archive day's hour files differ from those the manifest says were exported
    (``source_files``: hour and size), one short phrase each; empty when they are the same. Sizes
    only, from one listing: an hour file rewritten with the same size is not seen (``verify
    --against-archive`` re-reads the rows)."""
    exported = {int(f["hour"]): int(f["size_bytes"]) for f in manifest.source_files
                if isinstance(f, dict) and "hour" in f and "size_bytes" in f}
    now = {h.hour: h.size for h in archive_day.hour_files}
    changes = []
    for hour in sorted(exported.keys() | now.keys()):
        before, after = exported.get(hour), now.get(hour)
        if before is None:
            changes.append(f"hour {hour:02d} new")
        elif after is None:
            changes.append(f"hour {hour:02d} gone")
        elif before != after:
            changes.append(f"hour {hour:02d} {before} -> {after} bytes")
    return changes


def unchanged_publication(archive_day: ArchiveDay, folder: DayFolder, layout: str) -> InPlace | None:
    """The day published in ``folder`` when re-exporting ``archive_day`` in ``layout`` cannot
    change it: its manifest reads, was written by this export version with this layout and
    schema fingerprint from the same hour files (``archive_changes`` empty), and data.parquet
    has the size it states. None otherwise (then the day is exported as usual).

    This is what makes a re-run cheap: one manifest read and one size lookup instead of reading
    the archive day (~2 s). Measured: see the README (Catch-up and cheap skips)."""
    try:
        raw = folder.read_manifest_bytes()
        if raw is None:
            return None
        manifest = Manifest.from_json(raw)
        if (manifest.date_utc, manifest.layout, manifest.export_version) != (folder.day.isoformat(), layout, EXPORT_VERSION):
            return None
        if manifest.schema_fingerprint != fingerprint(schema_for(layout)) or archive_changes(archive_day, manifest):
            return None
        if folder.size(folder.data_path) != manifest.parquet_size_bytes:
            return None
    except InstrumetriqError:  # unreadable: the export decides (and says why) as it always did
        return None
    return InPlace(manifest, folder.url)


def upload_day(result: ExportResult, out: str, *, force: bool = False, storage_options: dict | None = None) -> ExportResult:
    """Copy a day exported to a local folder (``result`` of ``export_day``) to ``out``, e.g.
    ``s3://instrumetriq-datasets/tier3/daily``: data first, manifest last, decided on as the
    export decides (``publish.decide``): identical data is "already published", a complete day
    replaces a partial one ("completed"), other data is refused unless ``force``.

    The remote manifest is read before anything is sent: when it already publishes this data
    (same sha256, data object of the right size) nothing is uploaded; when it publishes other
    data the upload is refused before it starts (unless ``force``)."""
    started = time.perf_counter()
    manifest = result.manifest
    destination = DayDestination(out, partition_date(manifest.partition_path), storage_options_for(out, storage_options),
                                 partition=manifest.partition_path)
    local_data = f"{result.location}/{DATA_NAME}"

    def copy(fileobj) -> None:
        with open(local_data, "rb") as f:
            shutil.copyfileobj(f, fileobj, 8 << 20)

    def check(written) -> Manifest:
        if (written.sha256, written.size) != (manifest.parquet_sha256, manifest.parquet_size_bytes):
            raise DamagedDayError(f"{local_data} no longer matches its manifest; nothing uploaded; export the day again with --force",
                                  local_data, written.size, manifest.parquet_size_bytes)
        return manifest

    manifest, status = _write_and_publish(destination, copy, check, force, known=manifest)
    return ExportResult(manifest, destination.url, status, time.perf_counter() - started, result.hours, result.warnings)


def _write_and_publish(destination: DayDestination, write, finish, force: bool, known: Manifest | None = None) -> tuple[Manifest, str]:
    """Stream ``write`` to the destination, build the manifest with ``finish(written)``, and
    publish it as ``publish.decide`` says; whatever was written and not published is discarded,
    on success as on failure. ``known``: the manifest of data known before it is written (an
    upload), decided on before anything is sent. Returns the manifest in effect (an "already
    published" day keeps its creation time) and the status."""
    lock = lock_day(destination)  # local: LockHeldError if another export of the day is running
    try:
        destination.clean_stale_temps(locked=lock.held)  # only inside the lock (publish.py says why)
        seen = destination.read_manifest_bytes()  # compared again right before publishing
        if known is not None:  # refused, or already published, before anything is sent
            decision = decide(destination, seen, seen, _data_size(destination, seen), Candidate.of(known), force)
            if not decision.write:
                return _as_published(known, decision), decision.status
        written = destination.write_data(write)
        manifest = finish(written)
        interrupt.check()  # the last point where stopping leaves nothing of this run behind
        now = destination.read_manifest_bytes()
        decision = decide(destination, seen, now, _data_size(destination, now), Candidate.of(manifest), force)
        if decision.write:
            destination.publish(written, manifest.to_json())
        return _as_published(manifest, decision), decision.status
    except BaseException as exc:
        ours = _unwrap(exc)
        if ours is exc:
            raise
        raise ours from ours.__cause__  # without Polars' wrapper, with its own cause (for --debug)
    finally:
        destination.discard_unpublished()
        lock.release()
        destination.remove_if_empty()


def _data_size(destination: DayDestination, manifest: bytes | None) -> int | None:
    """The size of data.parquet in place, looked up only when a manifest says there is a day."""
    return None if manifest is None else destination.size(destination.data_path)


def _as_published(manifest: Manifest, decision) -> Manifest:
    """``manifest`` as the day in place has it: "already published" keeps the creation time of
    the manifest in place (a copy; the caller's manifest is not changed)."""
    if decision.write:
        return manifest
    return replace(manifest, created_ts_utc=decision.published.created_ts_utc)


def _manifest(day: ArchiveDay, account: Account, hours: list[HourReport], written, layout: str, schema: dict, day_over: bool,
              **fields) -> Manifest:
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
    return f"{bad_lines[0].message()}{more}; nothing published; fix the input or pass --allow-incomplete to publish without these lines"


def _unwrap(exc: BaseException) -> BaseException:
    """Ours (an ``InstrumetriqError``), if ``exc`` is a Polars error explicitly caused by it (a
    wrapper: ``raise ... from ours``); otherwise ``exc`` itself. Only ``__cause__`` of a Polars
    error is followed, never ``__context__``: a bug raised while one of ours was being handled
    is that bug, not the operator error. (Polars 2.1 re-raises an error from the IO source as
    it is, and turns one from the file object into a ComputeError without a chain, which is why
    ``HashingWriter`` keeps it.)"""
    seen = exc
    while isinstance(seen, pl.exceptions.PolarsError) and seen.__cause__ is not None:
        seen = seen.__cause__
    return seen if isinstance(seen, InstrumetriqError) else exc


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
