"""The checks of a published day's files: presence, the manifest, sha256, Parquet readability,
row counts and hours. Each records what it measured in its figures."""

from __future__ import annotations

import json

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..folder import DATA_NAME, MANIFEST_NAME
from ..errors import InstrumetriqError, ManifestError, VerifyError
from ..periods import archive_day_name
from ..manifest import FORMAT_VERSIONS, MAX_BAD_LINE_RECORDS, Manifest, hour_key, parse_manifest_json
from ..schema import LAYOUTS
from ..storage import describe_error
from .day import (
    REEXPORT, CheckSpec, DayUnderCheck, Skip, first_line, flatten, hours_text, infer_layout, plural, registry, some,
)
from .results import CheckResult

#: The checks of this module, in the order they run.
CHECKS: list[CheckSpec] = []
_check = registry(CHECKS)


@_check("files", "file presence and size")
def check_files(ctx: DayUnderCheck, check: CheckResult) -> None:
    infos = {DATA_NAME: _info(ctx, ctx.dest.data_path), MANIFEST_NAME: _info(ctx, ctx.dest.manifest_path)}
    if not any(infos.values()):
        there = _info(ctx, ctx.dest.folder) is not None
        what = "holds neither data.parquet nor manifest.json" if there else "does not exist"
        check.errors.append(f"nothing published: {ctx.url} {what}; run the export for {ctx.name}")
        check.figures.update(data_size_bytes=None, manifest_size_bytes=None)
        return
    missing = {
        DATA_NAME: f"data.parquet is missing from {ctx.url}: the manifest describes a file that is not there; {REEXPORT}",
        MANIFEST_NAME: f"manifest.json is missing from {ctx.url}: the day is not published (an export was interrupted "
                       f"before its last step); run the export for {ctx.name} again",
    }
    sizes = []
    for name, info in infos.items():
        key = "data_size_bytes" if name == DATA_NAME else "manifest_size_bytes"
        check.figures[key] = None
        if info is None:
            check.errors.append(missing[name])
        elif info.get("type", "file") != "file":
            check.errors.append(f"{name} in {ctx.url} is a {info.get('type')}, not a file")
        elif not info.get("size"):
            check.errors.append(f"{name} is empty (0 bytes); {REEXPORT}")
        else:
            ctx.present[name] = True
            ctx.sizes[name] = check.figures[key] = int(info["size"])
            sizes.append(f"{name} {int(info['size']):,} B")
    _leftovers(ctx, check)
    check.summary = "; ".join(sizes)


def _leftovers(ctx: DayUnderCheck, check: CheckResult) -> None:
    """The export's temporary and lock files in the day folder: a warning (they are never read
    as data, and the day's own files were checked above)."""
    try:
        leftovers = ctx.dest.export_leftovers()
    except InstrumetriqError:  # a store that lets us read the files but not list the folder
        check.figures["leftover_files"] = None
        return
    found = [(info["name"].rstrip("/").rsplit("/", 1)[-1], info.get("size")) for info in leftovers]
    check.figures["leftover_files"] = [name for name, _ in sorted(found)]
    if found:
        files = some([f"{name} ({size:,} B)" if isinstance(size, int) else name for name, size in sorted(found)], 4)
        check.warnings.append(
            f"{ctx.url} holds {plural(len(found), 'temporary file')} of an export: {files}; an export of {ctx.name} is "
            f"running now, or one was killed. The published files are not affected; if no export is running, delete "
            f"them, or run the export of {ctx.name} again: it removes those of runs that are gone"
        )


def _info(ctx: DayUnderCheck, path: str) -> dict | None:
    try:
        return ctx.fs.info(path)
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - credentials, permissions, network: nothing can be read
        raise VerifyError(f"cannot read {ctx.url}: {describe_error(exc)}") from None


@_check("manifest", "manifest integrity: valid JSON, required fields, date, size")
def check_manifest(ctx: DayUnderCheck, check: CheckResult) -> None:
    if not ctx.present.get(MANIFEST_NAME):
        raise Skip("manifest.json is missing or empty (see check 'files')")
    try:
        data = parse_manifest_json(ctx.dest.read_manifest_bytes() or b"")
        manifest = Manifest.from_dict(data)
    except ManifestError as exc:
        check.errors.append(f"{exc}; {REEXPORT}")
        return
    ctx.manifest, ctx.manifest_data = manifest, data
    where = ctx.partition or ctx.day.isoformat()
    if manifest.partition_path != where:
        kind = "date_utc" if manifest.partition == "day" else manifest.partition
        check.errors.append(f"manifest.json is for {kind} {manifest.partition_path}, but the folder is {where}: "
                            f"the manifest belongs to another {'day' if ctx.partition is None else 'partition'}")
    expected_archive = archive_day_name(ctx.day)[:6] if manifest.partition == "month" else archive_day_name(ctx.day)
    if manifest.archive_day != expected_archive:
        check.errors.append(f"manifest.json names archive_day {manifest.archive_day}, expected {expected_archive}")
    if manifest.layout not in LAYOUTS:
        check.errors.append(f"manifest.json has layout {manifest.layout!r}, expected one of {', '.join(LAYOUTS)}")
    else:
        ctx.layout, ctx.layout_source = manifest.layout, "manifest"
    if manifest.format_version is None:
        check.errors.append(f"manifest.json has export_version {manifest.export_version!r}, which this verifier does not know "
                            f"({', '.join(FORMAT_VERSIONS)}): a newer exporter wrote it; verify with that version")
    else:
        ctx.version = manifest.format_version
    size = ctx.sizes.get(DATA_NAME)
    if size is not None and manifest.parquet_size_bytes != size:
        check.errors.append(
            f"manifest.json says parquet_size_bytes {manifest.parquet_size_bytes:,} but data.parquet is {size:,} bytes: "
            f"the file was replaced or truncated after export; {REEXPORT}"
        )
    check.figures.update(layout=manifest.layout, export_version=manifest.export_version, created_ts_utc=manifest.created_ts_utc)
    check.summary = f"all required fields; layout {manifest.layout}; written {manifest.created_ts_utc} by {manifest.export_version}"


@_check("sha256", "SHA-256 of data.parquet equals parquet_sha256")
def check_sha256(ctx: DayUnderCheck, check: CheckResult) -> None:
    ctx.fetch_data()
    check.figures["sha256"] = ctx.sha256
    manifest = ctx.need_manifest()
    check.figures["manifest_sha256"] = manifest.parquet_sha256
    if manifest.parquet_sha256.lower() != ctx.sha256:
        check.errors.append(
            f"data.parquet sha256 is {ctx.sha256[:16]}..., manifest.json says {manifest.parquet_sha256[:16]}...: "
            f"the file was changed or damaged after export; {REEXPORT} (or upload it again)"
        )
    else:
        check.summary = f"sha256 {ctx.sha256[:16]}... matches"


@_check("parquet", "Parquet readability: footer and every row group")
def check_parquet(ctx: DayUnderCheck, check: CheckResult) -> None:
    path = ctx.fetch_data()
    try:
        parquet = pq.ParquetFile(path)
        schema = dict(pl.read_parquet_schema(path))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for damaged files
        check.errors.append(f"data.parquet footer cannot be read ({first_line(exc)}): the file is truncated or not Parquet; {REEXPORT}")
        return
    ctx.parquet, ctx.schema = parquet, schema
    meta = parquet.metadata
    check.figures.update(parquet_rows=meta.num_rows, row_groups=meta.num_row_groups, columns=len(schema))
    if ctx.layout is None:
        (ctx.layout, ctx.version), ctx.layout_source = infer_layout(schema), "inferred from the columns"
    # every row group is read once, and the rows the later checks use are built from what was read
    tables, broken = [], []
    for index in range(meta.num_row_groups):
        try:
            table = parquet.read_row_group(index)
        except Exception as exc:  # noqa: BLE001
            broken.append(f"row group {index} ({first_line(exc)})")
            continue
        if table.num_rows != meta.row_group(index).num_rows:
            broken.append(f"row group {index} (read {table.num_rows} rows, footer says {meta.row_group(index).num_rows})")
        tables.append(table)
    if broken:
        check.errors.append(f"{len(broken)} of {meta.num_row_groups} row groups cannot be read: {some(broken, 3)}; {REEXPORT}")
        return
    try:
        ctx.flat = flatten(pl.from_arrow(pa.concat_tables(tables) if tables else parquet.schema_arrow.empty_table()))
    except Exception as exc:  # noqa: BLE001
        check.errors.append(f"Polars cannot load the rows of data.parquet ({first_line(exc)}); {REEXPORT}")
        return
    groups = "row group" if meta.num_row_groups == 1 else "row groups"
    check.summary = f"{meta.num_rows} rows in {meta.num_row_groups} {groups}, {len(schema)} columns"


@_check("row_count", "row_count and rows_by_hour match the Parquet rows and their lineage")
def check_row_count(ctx: DayUnderCheck, check: CheckResult) -> None:
    manifest = ctx.need_manifest()
    check.figures.update(manifest_row_count=manifest.row_count, rows_by_hour=dict(sorted(manifest.rows_by_hour.items())))
    by_hour = sum(manifest.rows_by_hour.values())
    if by_hour != manifest.row_count:
        check.errors.append(f"manifest.json rows_by_hour sums to {by_hour}, not row_count {manifest.row_count}: the manifest is inconsistent; {REEXPORT}")
    if manifest.lines_exported != manifest.row_count:
        check.errors.append(f"manifest.json lines_exported {manifest.lines_exported} differs from row_count {manifest.row_count}")
    rows = ctx.need_footer().metadata.num_rows
    if rows != manifest.row_count:
        check.errors.append(
            f"manifest.json says row_count {manifest.row_count} but data.parquet holds {rows} rows: "
            f"the manifest does not describe this file; {REEXPORT}"
        )
    lineage = _lineage(ctx, check, manifest)
    if not check.errors:
        check.summary = f"{rows} rows, as in row_count and the sum of rows_by_hour{lineage}"


def _lineage(ctx: DayUnderCheck, check: CheckResult, manifest: Manifest) -> str:
    """The rows' lineage columns (export version 2 on) against the manifest: every row of the
    folder's archive day, and ``rows_by_hour`` the count of each ``archive_hour``. Returns the
    summary's words for it."""
    flat = ctx.flat
    if ctx.version < 2 or flat is None or not {"archive_day", "archive_hour"} <= set(flat.columns):
        return ""  # version 1 has no lineage; unreadable rows or missing columns: checks 'parquet', 'schema'
    days = flat["archive_day"].drop_nulls().unique().sort().to_list()
    nulls = flat["archive_day"].null_count() + flat["archive_hour"].null_count()
    if nulls:
        check.errors.append(f"archive_day or archive_hour is NULL in {plural(nulls, 'cell')}: every row has its lineage; {REEXPORT}")
    outside = [day for day in days if not ctx.day <= day <= ctx.last_day]  # a bundle spans its month's days
    if outside:
        span = str(ctx.day) if ctx.last_day == ctx.day else f"{ctx.day} to {ctx.last_day}"
        check.errors.append(f"archive_day holds {some([str(d) for d in outside], 4)}, outside {span}: rows of another archive "
                            f"day are in this file; {REEXPORT}")
    counted = flat["archive_hour"].drop_nulls().value_counts()
    by_column = {hour_key(hour): count for hour, count in counted.iter_rows()}
    stated = {hour: count for hour, count in manifest.rows_by_hour.items() if count}
    if by_column != stated:
        differ = [f"hour {h}: {by_column.get(h, 0)} rows, rows_by_hour {manifest.rows_by_hour.get(h, 'none')}"
                  for h in sorted(set(by_column) | set(stated)) if by_column.get(h, 0) != stated.get(h, 0)]
        check.errors.append(f"rows_by_hour is not the count of archive_hour: {some(differ, 4)}; {REEXPORT}")
    return "; archive_day and the count of each archive_hour agree"


_NOT_OVER = {
    "day": "exported before the UTC day was over (day_over_at_export false): entries archived after "
           "the export are missing; export the day again, replacing it (force), after 00:00 UTC",
    "hour": "exported before the hour was complete (day_over_at_export false): entries archived after the export "
            "are missing; export the hour again once it is complete",
    "month": "a month-to-date bundle (day_over_at_export false): the month's later days are not in it; bundle it again",
}


def _check_bundle_days(m, check: CheckResult) -> None:
    """A bundle's days: their rows add up to row_count; missing and partial days are warnings."""
    rows = sum(s.get("rows", 0) for s in m.source_files if isinstance(s, dict))
    if rows != m.row_count:
        check.errors.append(f"source_files lists {rows} rows over the days, row_count is {m.row_count}; bundle the month again, replacing it (force)")
    if m.missing_days:
        check.warnings.append(f"partial bundle: {plural(len(m.missing_days), 'day')} not published when it was built: "
                              f"{some(m.missing_days)}")
    partial = [s.get("date") for s in m.source_files if isinstance(s, dict) and s.get("is_partial") is True]
    if partial:
        check.warnings.append(f"partial bundle: {plural(len(partial), 'partial day')} in it: {some(partial)}")


@_check("hours", "hours completeness: hours_found, missing_hours, is_partial")
def check_hours(ctx: DayUnderCheck, check: CheckResult) -> None:
    m = ctx.need_manifest()
    data = ctx.manifest_data or {}
    missing = sorted(m.missing_hour_keys)
    check.figures.update(hours_found=m.hours_found, missing_hours=missing, coverage_ratio=m.coverage_ratio,
                         is_partial=data.get("is_partial"), bad_line_count=m.bad_line_count,
                         day_over_at_export=data.get("day_over_at_export", True))
    if m.hours_found + len(missing) != m.hours_expected:
        check.errors.append(f"hours_found {m.hours_found} + {len(missing)} missing_hours is not hours_expected {m.hours_expected}")
    hours = [hour_key(h) for h in m.expected_hours]  # 00-23, or an hour's own
    if len(set(missing)) != len(missing) or not set(missing) <= set(hours):
        check.errors.append(f"missing_hours {missing} has repeated hours or hours outside {hours_text(hours)}")
    found = set(hours) - set(missing)
    keys = set(m.rows_by_hour)
    if keys != found:
        check.errors.append(
            f"rows_by_hour lists hours {hours_text(keys)} but the exported hours are {hours_text(found)} "
            f"(hours 00-23 minus missing_hours)"
        )
    for source in m.source_files:
        hour = f"{source['hour']:02d}" if isinstance(source.get("hour"), int) else None
        if hour in m.rows_by_hour and source.get("rows") != m.rows_by_hour[hour]:
            check.errors.append(f"source_files says hour {hour} gave {source.get('rows')} rows, rows_by_hour says {m.rows_by_hour[hour]}")
    check.errors += m.stated_problems(data)
    if len(m.bad_lines) > m.bad_line_count or (m.bad_line_count <= MAX_BAD_LINE_RECORDS and len(m.bad_lines) != m.bad_line_count):
        check.errors.append(f"bad_line_count is {m.bad_line_count} but bad_lines lists {len(m.bad_lines)}")
    if missing:
        named = f"hour {missing[0]} is" if len(missing) == 1 else f"hours {hours_text(missing)} are"
        check.warnings.append(f"partial day: {named} missing (exported with allow_incomplete)")
    if m.bad_line_count:
        check.warnings.append(f"{plural(m.bad_line_count, 'input line')} not exported (listed in the manifest's bad_lines)")
    if not m.day_over_at_export:
        check.warnings.append(_NOT_OVER.get(m.partition, _NOT_OVER["day"]))
    if m.partition == "month":
        _check_bundle_days(m, check)
    check.summary = f"{m.hours_found}/{m.hours_expected} hours, is_partial {json.dumps(m.is_partial)}"

