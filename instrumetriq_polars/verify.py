"""Verify a published Tier 3 day: ``verify_day`` and the ``verify`` command behind it.

A day folder ``ROOT/YYYY-MM-DD/`` (local or any fsspec URL) is checked by a list of named checks,
run in order (``CHECKS``). Each check records errors (the day FAILs), warnings (the day is still
usable, WARN) and the figures it measured; a check whose inputs are unusable is skipped and says
why (the check that found the damage carries the error). With ``against_archive`` the day is also
re-read from the archive and compared: row counts with the exporter's own reader, sampled rows
with their source lines parsed by the standard library's ``json.loads`` (independent of the
exporter's decode and normalise): that makes a verification trustworthy rather than merely
self-consistent.

Row numbers in messages are 0-based positions in ``data.parquet``. Row checks run on a seeded
sample (``sample_size`` rows, ``seed``), so a rerun looks at the same rows.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timezone
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from .archive import open_archive_day, parse_date
from .decode import BadLine, gunzip
from .errors import InstrumetriqError, VerifyError
from .source import fetch_hour, hour_label, read_hour
from .manifest import MAX_BAD_LINE_RECORDS, Manifest, parse_instant, utc_now_iso
from .schema import (
    DROPPED_COLUMNS, EXTRA_COLUMN, FLAT_COLUMNS, LAYOUTS, REQUIRED_COLUMNS, SEPARATOR, TREE, Field, exact_float, fingerprint,
    known_fingerprints, schema_for,
)
from .dayfolder import DATA_NAME, MANIFEST_NAME, DayFolder, open_day_folder, split_day_folder
from .storage import describe_error, storage_options_for

#: Cycles longer than this are flagged (warning only; the guide's Troubleshooting explains why).
LONG_DURATION_SEC = 9000
DEFAULT_SAMPLE_SIZE = 200
DEFAULT_SEED = 0
#: The dynamic-key count maps of each sentiment window: they must be Parquet MAP columns.
COUNT_MAP_NAMES = ("tag_counts", "cashtag_counts", "mention_counts", "url_domain_counts")
REPORT_NAME = "verify_report.md"
TOP_NULL_RATIOS = 10
_CHUNK = 8 * 1024 * 1024
_REEXPORT = "re-export the day with --force"

PASS, WARN, FAIL, SKIP = "PASS", "WARN", "FAIL", "SKIP"


# -- results ------------------------------------------------------------------------------------
@dataclass
class CheckResult:
    """One named check: what it found (errors, warnings) and the figures behind it."""

    name: str
    title: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    summary: str = ""  # one line on what passed, for the report; empty when the check failed or was skipped
    skipped: str | None = None  # why the check could not run

    @property
    def status(self) -> str:
        if self.errors:
            return FAIL
        if self.skipped is not None:
            return SKIP
        return WARN if self.warnings else PASS

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "status": self.status, "errors": self.errors,
            "warnings": self.warnings, "summary": self.summary, "skipped": self.skipped, "figures": self.figures,
        }


@dataclass
class VerifyResult:
    """The verification of one day: every check in order, and the day's verdict."""

    day: date
    location: str  # the day folder
    checks: list[CheckResult]
    layout: str | None = None
    seconds: float = 0.0

    @property
    def errors(self) -> list[str]:
        return [f"{c.name}: {e}" for c in self.checks for e in c.errors]

    @property
    def warnings(self) -> list[str]:
        return [f"{c.name}: {w}" for c in self.checks for w in c.warnings]

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings allowed)."""
        return not self.errors

    @property
    def status(self) -> str:
        """PASS, WARN (usable, with warnings) or FAIL."""
        if self.errors:
            return FAIL
        return WARN if self.warnings else PASS

    @property
    def figures(self) -> dict[str, Any]:
        """Every check's figures in one dict (sizes, row counts, null ratios, futures share...)."""
        merged: dict[str, Any] = {}
        for check in self.checks:
            merged.update(check.figures)
        return merged

    def check(self, name: str) -> CheckResult:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"no check named {name!r} (checks: {', '.join(c.name for c in self.checks)})")

    def summary(self) -> str:
        """The human summary: one line for the day, then one per failure or warning."""
        figures = self.figures
        parts = []
        if "parquet_rows" in figures:
            parts.append(f"{figures['parquet_rows']} rows")
        if self.layout:
            parts.append(self.layout)
        if figures.get("data_size_bytes") is not None:
            parts.append(f"{figures['data_size_bytes'] / 1e6:.1f} MB")
        passed = sum(c.status == PASS for c in self.checks)
        parts.append(f"{passed}/{len(self.checks)} checks passed")
        lines = [f"{self.day} {self.status}: {', '.join(parts)} ({self.location})"]
        for check in self.checks:
            lines += [f"  FAIL {check.name}: {e}" for e in check.errors]
            lines += [f"  WARN {check.name}: {w}" for w in check.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "date": self.day.isoformat(), "location": self.location, "status": self.status, "layout": self.layout,
            "errors": self.errors, "warnings": self.warnings, "seconds": round(self.seconds, 3),
            "checks": [c.to_dict() for c in self.checks], "figures": self.figures,
        }


# -- what the checks share ----------------------------------------------------------------------
class _Skip(Exception):
    """Raised by a check whose inputs are unusable; the message says which and why."""


class _Day:
    """One day folder under verification. The checks fill it in as they run, in order."""

    def __init__(self, day: date, location: str, storage_options: dict | None, sample_size: int, seed: int,
                 against_archive: str | None, archive_storage_options: dict | None) -> None:
        self.day = day
        self.dest = _destination(location, day, storage_options)
        self.fs = self.dest.fs
        self.sample_size = sample_size
        self.seed = seed
        self.against_archive = against_archive
        self.archive_storage_options = archive_storage_options
        self.present: dict[str, bool] = {}  # file name -> present and non-empty
        self.sizes: dict[str, int] = {}  # file name -> size in bytes
        self.manifest: Manifest | None = None  # set when manifest.json is usable
        self.manifest_data: dict | None = None  # its raw JSON object (stored is_partial etc.)
        self.layout: str | None = None
        self.layout_source: str | None = None  # "manifest" or "inferred from the columns"
        self.sha256: str | None = None
        self.local_data: str | None = None  # a local path of data.parquet's bytes
        self.parquet: pq.ParquetFile | None = None  # footer readable
        self.schema: dict[str, pl.DataType] | None = None
        self.flat: pl.DataFrame | None = None  # every row, struct columns unnested (both layouts)
        self._temp: str | None = None
        self._sample: list[int] | None = None

    @property
    def url(self) -> str:
        return self.dest.url

    # prerequisites: each raises _Skip naming the check that reported the problem
    def need_manifest(self) -> Manifest:
        if self.manifest is None:
            raise _Skip("manifest.json is missing or unusable (see check 'manifest')")
        return self.manifest

    def need_footer(self) -> pq.ParquetFile:
        if self.parquet is None or self.schema is None:
            raise _Skip("data.parquet is missing or its footer is unreadable (see checks 'files' and 'parquet')")
        return self.parquet

    def need_rows(self) -> pl.DataFrame:
        if self.flat is None:
            raise _Skip("data.parquet rows could not be read (see check 'parquet')")
        return self.flat

    def need_columns(self, names) -> pl.DataFrame:
        """The rows, when each of ``names`` (a column, or a block of ``block__*`` columns) is there."""
        flat = self.need_rows()
        absent = [_dotted(name) for name in names if not _block_columns(flat.columns, name)]
        if absent:
            raise _Skip(f"{', '.join(absent)} {'is' if len(absent) == 1 else 'are'} missing from data.parquet (see check 'schema')")
        return flat

    def fetch_data(self) -> str:
        """Stream-hash data.parquet; return a local path of its bytes (remote files are copied once)."""
        if self.local_data is not None:
            return self.local_data
        if not self.present.get(DATA_NAME):
            raise _Skip("data.parquet is missing or empty (see check 'files')")
        sha = hashlib.sha256()
        if self.dest.is_local:
            with self.fs.open(self.dest.data_path, "rb") as src:
                while chunk := src.read(_CHUNK):
                    sha.update(chunk)
            path = self.dest.data_path
        else:
            handle, path = tempfile.mkstemp(prefix="verify-", suffix=".parquet")
            self._temp = path
            with os.fdopen(handle, "wb") as out, self.fs.open(self.dest.data_path, "rb") as src:
                while chunk := src.read(_CHUNK):
                    sha.update(chunk)
                    out.write(chunk)
        self.sha256 = sha.hexdigest()
        self.local_data = path
        return path

    def sample_indices(self) -> list[int]:
        """The seeded sample of row positions (the same rows for the content and archive checks)."""
        if self._sample is None:
            rows = self.need_rows().height
            self._sample = sorted(random.Random(self.seed).sample(range(rows), min(rows, self.sample_size)))
        return self._sample

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        if self._temp:
            try:
                os.remove(self._temp)
            except OSError:
                pass


def _destination(location: str, day: date, storage_options: dict | None) -> DayFolder:
    """The day's folder, read only (``dayfolder.open_day_folder``), or a VerifyError."""
    try:
        return open_day_folder(location, day, storage_options)
    except ValueError as exc:
        raise VerifyError(str(exc)) from None
    except InstrumetriqError:
        raise
    except Exception as exc:  # noqa: BLE001 - unknown protocol, missing driver, credentials, network
        raise VerifyError(f"cannot open {location}: {describe_error(exc)}") from None


# -- the checks ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckSpec:
    name: str
    title: str
    run: Callable[[_Day, CheckResult], None]


#: The checks, in the order they run (later checks use what earlier ones found).
CHECKS: list[CheckSpec] = []


def _check(name: str, title: str):
    def register(run):
        CHECKS.append(CheckSpec(name, title, run))
        return run
    return register


@_check("files", "file presence and size")
def check_files(ctx: _Day, check: CheckResult) -> None:
    infos = {DATA_NAME: _info(ctx, ctx.dest.data_path), MANIFEST_NAME: _info(ctx, ctx.dest.manifest_path)}
    if not any(infos.values()):
        there = _info(ctx, ctx.dest.folder) is not None
        what = "holds neither data.parquet nor manifest.json" if there else "does not exist"
        check.errors.append(f"nothing published: {ctx.url} {what}; run the export for {ctx.day}")
        check.figures.update(data_size_bytes=None, manifest_size_bytes=None)
        return
    missing = {
        DATA_NAME: f"data.parquet is missing from {ctx.url}: the manifest describes a file that is not there; {_REEXPORT}",
        MANIFEST_NAME: f"manifest.json is missing from {ctx.url}: the day is not published (an export was interrupted "
                       f"before its last step); run the export for {ctx.day} again",
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
            check.errors.append(f"{name} is empty (0 bytes); {_REEXPORT}")
        else:
            ctx.present[name] = True
            ctx.sizes[name] = check.figures[key] = int(info["size"])
            sizes.append(f"{name} {int(info['size']):,} B")
    check.summary = "; ".join(sizes)


def _info(ctx: _Day, path: str) -> dict | None:
    try:
        return ctx.fs.info(path)
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - credentials, permissions, network: nothing can be read
        raise VerifyError(f"cannot read {ctx.url}: {describe_error(exc)}") from None


@_check("manifest", "manifest integrity: valid JSON, required fields, date, size")
def check_manifest(ctx: _Day, check: CheckResult) -> None:
    if not ctx.present.get(MANIFEST_NAME):
        raise _Skip("manifest.json is missing or empty (see check 'files')")
    try:
        data = json.loads(ctx.fs.cat_file(ctx.dest.manifest_path))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        check.errors.append(f"manifest.json is not valid JSON ({_first_line(exc)}); {_REEXPORT}")
        return
    if not isinstance(data, dict):
        check.errors.append(f"manifest.json is not a JSON object; {_REEXPORT}")
        return
    try:
        manifest = Manifest.from_dict(data)
    except VerifyError as exc:
        check.errors.append(f"manifest.json {str(exc).removeprefix('manifest ')}; {_REEXPORT}")
        return
    problems = _manifest_type_problems(data)
    if problems:
        check.errors.append(f"manifest.json has fields of the wrong type: {_some(problems)}; {_REEXPORT}")
        return
    ctx.manifest, ctx.manifest_data = manifest, data
    if manifest.date_utc != ctx.day.isoformat():
        check.errors.append(f"manifest.json is for date_utc {manifest.date_utc}, but the folder is {ctx.day}: the manifest belongs to another day")
    if manifest.archive_day != ctx.day.strftime("%Y%m%d"):
        check.errors.append(f"manifest.json names archive_day {manifest.archive_day}, expected {ctx.day:%Y%m%d}")
    if manifest.layout not in LAYOUTS:
        check.errors.append(f"manifest.json has layout {manifest.layout!r}, expected one of {', '.join(LAYOUTS)}")
    else:
        ctx.layout, ctx.layout_source = manifest.layout, "manifest"
    size = ctx.sizes.get(DATA_NAME)
    if size is not None and manifest.parquet_size_bytes != size:
        check.errors.append(
            f"manifest.json says parquet_size_bytes {manifest.parquet_size_bytes:,} but data.parquet is {size:,} bytes: "
            f"the file was replaced or truncated after export; {_REEXPORT}"
        )
    check.figures.update(layout=manifest.layout, export_version=manifest.export_version, created_ts_utc=manifest.created_ts_utc)
    check.summary = f"all required fields; layout {manifest.layout}; written {manifest.created_ts_utc} by {manifest.export_version}"


@_check("sha256", "SHA-256 of data.parquet equals parquet_sha256")
def check_sha256(ctx: _Day, check: CheckResult) -> None:
    ctx.fetch_data()
    check.figures["sha256"] = ctx.sha256
    manifest = ctx.need_manifest()
    check.figures["manifest_sha256"] = manifest.parquet_sha256
    if manifest.parquet_sha256.lower() != ctx.sha256:
        check.errors.append(
            f"data.parquet sha256 is {ctx.sha256[:16]}..., manifest.json says {manifest.parquet_sha256[:16]}...: "
            f"the file was changed or damaged after export; {_REEXPORT} (or upload it again)"
        )
    else:
        check.summary = f"sha256 {ctx.sha256[:16]}... matches"


@_check("parquet", "Parquet readability: footer and every row group")
def check_parquet(ctx: _Day, check: CheckResult) -> None:
    path = ctx.fetch_data()
    try:
        parquet = pq.ParquetFile(path)
        schema = dict(pl.read_parquet_schema(path))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for damaged files
        check.errors.append(f"data.parquet footer cannot be read ({_first_line(exc)}): the file is truncated or not Parquet; {_REEXPORT}")
        return
    ctx.parquet, ctx.schema = parquet, schema
    meta = parquet.metadata
    check.figures.update(parquet_rows=meta.num_rows, row_groups=meta.num_row_groups, columns=len(schema))
    if ctx.layout is None:
        ctx.layout, ctx.layout_source = _infer_layout(schema), "inferred from the columns"
    # every row group is read once, and the rows the later checks use are built from what was read
    tables, broken = [], []
    for index in range(meta.num_row_groups):
        try:
            table = parquet.read_row_group(index)
        except Exception as exc:  # noqa: BLE001
            broken.append(f"row group {index} ({_first_line(exc)})")
            continue
        if table.num_rows != meta.row_group(index).num_rows:
            broken.append(f"row group {index} (read {table.num_rows} rows, footer says {meta.row_group(index).num_rows})")
        tables.append(table)
    if broken:
        check.errors.append(f"{len(broken)} of {meta.num_row_groups} row groups cannot be read: {_some(broken, 3)}; {_REEXPORT}")
        return
    try:
        ctx.flat = _flatten(pl.from_arrow(pa.concat_tables(tables) if tables else parquet.schema_arrow.empty_table()))
    except Exception as exc:  # noqa: BLE001
        check.errors.append(f"Polars cannot load the rows of data.parquet ({_first_line(exc)}); {_REEXPORT}")
        return
    groups = "row group" if meta.num_row_groups == 1 else "row groups"
    check.summary = f"{meta.num_rows} rows in {meta.num_row_groups} {groups}, {len(schema)} columns"


@_check("row_count", "row_count and rows_by_hour match the Parquet rows")
def check_row_count(ctx: _Day, check: CheckResult) -> None:
    manifest = ctx.need_manifest()
    check.figures.update(manifest_row_count=manifest.row_count, rows_by_hour=dict(sorted(manifest.rows_by_hour.items())))
    by_hour = sum(manifest.rows_by_hour.values())
    if by_hour != manifest.row_count:
        check.errors.append(f"manifest.json rows_by_hour sums to {by_hour}, not row_count {manifest.row_count}: the manifest is inconsistent; {_REEXPORT}")
    if manifest.lines_exported != manifest.row_count:
        check.errors.append(f"manifest.json lines_exported {manifest.lines_exported} differs from row_count {manifest.row_count}")
    rows = ctx.need_footer().metadata.num_rows
    if rows != manifest.row_count:
        check.errors.append(
            f"manifest.json says row_count {manifest.row_count} but data.parquet holds {rows} rows: "
            f"the manifest does not describe this file; {_REEXPORT}"
        )
    if not check.errors:
        check.summary = f"{rows} rows, as in row_count and the sum of rows_by_hour"


@_check("hours", "hours completeness: hours_found, missing_hours, is_partial")
def check_hours(ctx: _Day, check: CheckResult) -> None:
    m = ctx.need_manifest()
    data = ctx.manifest_data or {}
    missing = sorted(m.missing_hours)
    check.figures.update(hours_found=m.hours_found, missing_hours=missing, coverage_ratio=m.coverage_ratio,
                         is_partial=data.get("is_partial"), bad_line_count=m.bad_line_count,
                         day_over_at_export=data.get("day_over_at_export", True))
    if m.hours_found + len(missing) != m.hours_expected:
        check.errors.append(f"hours_found {m.hours_found} + {len(missing)} missing_hours is not hours_expected {m.hours_expected}")
    if len(set(missing)) != len(missing) or any(not 0 <= h < m.hours_expected for h in missing):
        check.errors.append(f"missing_hours {missing} has repeated hours or hours outside 0-{m.hours_expected - 1}")
    found = {f"{h:02d}" for h in range(m.hours_expected) if h not in set(missing)}
    keys = set(m.rows_by_hour)
    if keys != found:
        check.errors.append(
            f"rows_by_hour lists hours {_hours(keys)} but the exported hours are {_hours(found)} "
            f"(hours 00-23 minus missing_hours)"
        )
    for source in m.source_files:
        hour = f"{source['hour']:02d}" if isinstance(source.get("hour"), int) else None
        if hour in m.rows_by_hour and source.get("rows") != m.rows_by_hour[hour]:
            check.errors.append(f"source_files says hour {hour} gave {source.get('rows')} rows, rows_by_hour says {m.rows_by_hour[hour]}")
    early = data.get("day_over_at_export") is False  # --allow-incomplete on the current UTC day (older manifests lack it)
    partial = bool(missing) or m.bad_line_count > 0 or early
    if data.get("is_partial") is not partial:
        reasons = f"{_n(len(missing), 'missing hour')} and {_n(m.bad_line_count, 'bad line')}"
        reasons += ", and an export before the day was over" if early else ""
        check.errors.append(f"is_partial is {json.dumps(data.get('is_partial'))} but the manifest records {reasons}")
    if data.get("coverage_ratio") != m.coverage_ratio:
        check.errors.append(f"coverage_ratio is {data.get('coverage_ratio')}, expected {m.coverage_ratio} ({m.hours_found}/{m.hours_expected} hours)")
    if len(m.bad_lines) > m.bad_line_count or (m.bad_line_count <= MAX_BAD_LINE_RECORDS and len(m.bad_lines) != m.bad_line_count):
        check.errors.append(f"bad_line_count is {m.bad_line_count} but bad_lines lists {len(m.bad_lines)}")
    if missing:
        hours = "hour " + _hours(f"{h:02d}" for h in missing) + " is" if len(missing) == 1 else "hours " + _hours(f"{h:02d}" for h in missing) + " are"
        check.warnings.append(f"partial day: {hours} missing (exported with --allow-incomplete)")
    if m.bad_line_count:
        check.warnings.append(f"{_n(m.bad_line_count, 'input line')} not exported (listed in the manifest's bad_lines)")
    if early:
        check.warnings.append("exported before the UTC day was over (day_over_at_export false): entries archived after "
                              "the export are missing; export the day again with --force after 00:00 UTC")
    check.summary = f"{m.hours_found}/{m.hours_expected} hours, is_partial {json.dumps(partial)}"


@_check("schema", "required columns and schema fingerprint")
def check_schema(ctx: _Day, check: CheckResult) -> None:
    ctx.need_footer()
    actual = ctx.schema
    if ctx.layout is None:
        check.errors.append("cannot tell the layout: the manifest is unusable and the columns match neither flat nor nested")
        return
    expected = schema_for(ctx.layout)
    declared = fingerprint(expected)
    check.figures.update(schema_fingerprint=fingerprint(actual), declared_fingerprint=declared, column_count=len(actual),
                         layout_source=ctx.layout_source)
    leaves, expected_leaves = dict(_leaves(actual)), dict(_leaves(expected))
    required = [c for c in REQUIRED_COLUMNS if not _block_columns(leaves, c)]
    if required:
        check.errors.append(f"required columns missing: {', '.join(required)}")
    if fingerprint(actual) != declared:
        other = next((lay for lay in LAYOUTS if lay != ctx.layout and fingerprint(schema_for(lay)) == fingerprint(actual)), None)
        if other:
            check.errors.append(f"data.parquet is in the {other} layout but the manifest says {ctx.layout}; {_REEXPORT}")
        else:
            _schema_differences(check, ctx.layout, actual, expected, leaves, expected_leaves)
    manifest = ctx.manifest
    if manifest is not None and manifest.schema_fingerprint not in known_fingerprints(ctx.layout):
        check.errors.append(
            f"manifest.json declares schema_fingerprint {manifest.schema_fingerprint[:23]}..., the declared {ctx.layout} "
            f"schema's is {declared[:23]}...: the day was written with another schema version; {_REEXPORT}"
        )
    if manifest is not None and manifest.column_count != len(expected):
        check.errors.append(f"manifest.json says column_count {manifest.column_count}, the {ctx.layout} layout has {len(expected)}")
    check.summary = f"{len(actual)} columns, {ctx.layout} layout, fingerprint {declared[:19]}..."


def _schema_differences(check, layout, actual, expected, leaves, expected_leaves) -> None:
    head = f"data.parquet schema differs from the declared {layout} schema"
    missing = [_dotted(c) for c in expected_leaves if c not in leaves]
    unexpected = [_dotted(c) for c in leaves if c not in expected_leaves]
    retyped = [f"{_dotted(c)} is {leaves[c]!r}, declared {t!r}" for c, t in expected_leaves.items() if c in leaves and leaves[c] != t]
    if missing:
        check.errors.append(f"{head}: {_n(len(missing), 'column')} missing: {_some(missing)}")
    if unexpected:
        check.errors.append(f"{head}: {_n(len(unexpected), 'unexpected column')}: {_some(unexpected)}")
    if retyped:
        check.errors.append(f"{head}: {_n(len(retyped), 'column')} of another type: {_some(retyped)}")
    if not (missing or unexpected or retyped):
        check.errors.append(f"{head}: the columns are in another order than declared")


@_check("dropped_columns", "dropped columns (norm, labels) absent")
def check_dropped(ctx: _Day, check: CheckResult) -> None:
    ctx.need_footer()
    found = [c for c in ctx.schema if any(_in_block(c, d) for d in DROPPED_COLUMNS)]
    check.figures["dropped_columns_found"] = found
    if found:
        check.errors.append(f"columns that are always dropped are present: {', '.join(found)} (the Tier 3 dataset drops {', '.join(DROPPED_COLUMNS)})")
    manifest = ctx.manifest
    if manifest is not None and sorted(manifest.dropped_columns) != sorted(DROPPED_COLUMNS):
        check.warnings.append(f"manifest.json lists dropped_columns {manifest.dropped_columns}, expected {list(DROPPED_COLUMNS)}")
    check.summary = f"{', '.join(DROPPED_COLUMNS)} absent"


@_check("count_maps", "count maps are MAP columns")
def check_count_maps(ctx: _Day, check: CheckResult) -> None:
    ctx.need_footer()
    maps = {name: dtype for name, dtype in _leaves(ctx.schema) if name.rsplit(SEPARATOR, 1)[-1] in COUNT_MAP_NAMES}
    check.figures["count_map_columns"] = len(maps)
    if not maps:
        check.errors.append(f"no count map columns ({', '.join(COUNT_MAP_NAMES)}) found")
    wrong = [f"{_dotted(name)} is {dtype!r}" for name, dtype in maps.items() if not isinstance(dtype, pl.Map)]
    if wrong:
        check.errors.append(f"count maps must be Parquet MAP columns: {_some(wrong)}")
    check.summary = f"{len(maps)} count map columns, all MAP"


@_check("null_ratios", "NULL ratios: required blocks never NULL")
def check_null_ratios(ctx: _Day, check: CheckResult) -> None:
    flat = ctx.need_columns(REQUIRED_COLUMNS)
    rows = flat.height
    if not rows:
        raise _Skip("data.parquet has no rows")
    nulls = flat.null_count().row(0, named=True)
    ratios = {name: count / rows for name, count in nulls.items()}
    top = sorted(((n, r) for n, r in ratios.items() if r > 0 and n != EXTRA_COLUMN), key=lambda item: (-item[1], item[0]))[:TOP_NULL_RATIOS]
    check.figures["null_ratios_top"] = {_dotted(n): round(r, 4) for n, r in top}
    null_blocks = {}
    for block in REQUIRED_COLUMNS:
        columns = _block_columns(flat.columns, block)
        count = flat.select(pl.all_horizontal([pl.col(c).is_null() for c in columns]).sum()).item()
        null_blocks[block] = count
        if count:
            if isinstance(ctx.schema.get(block), pl.Struct):  # nested layout: one struct column
                how = f" (the {block} struct column, or every one of its {len(columns)} fields, is NULL)"
            else:
                how = f" (all of its {len(columns)} {block}{SEPARATOR}* columns are NULL)" if len(columns) > 1 else ""
            check.errors.append(
                f"{block} is NULL in {count} of {rows} rows{how}: it is never NULL in a valid export "
                f"(such entries go to bad_lines); {_REEXPORT}"
            )
    check.figures["required_null_rows"] = null_blocks
    reported = {c for block, count in null_blocks.items() if count for c in _block_columns(flat.columns, block)}
    empty = [n for n, r in ratios.items() if r == 1.0 and n != EXTRA_COLUMN and n not in reported]
    check.figures["all_null_columns"] = [_dotted(n) for n in empty]
    if empty:
        check.warnings.append(
            f"{_n(len(empty), 'column')} {'is' if len(empty) == 1 else 'are'} NULL in every row: {_some([_dotted(n) for n in empty])}: "
            "check that the collector still writes them"
        )
    shown = ", ".join(f"{name} {ratio:.0%}" for name, ratio in list(check.figures["null_ratios_top"].items())[:3])
    check.summary = f"required blocks never NULL; most NULL: {shown or 'none'}"


@_check("content", "row content sanity (seeded sample)")
def check_content(ctx: _Day, check: CheckResult) -> None:
    needed = ["symbol", "meta__added_ts", "meta__duration_sec", "derived__spread_bps", "spot_raw__mid", "spot_raw__bid",
              "spot_raw__ask", "spot_raw__last"]
    flat = ctx.need_columns(needed)
    indices = ctx.sample_indices()
    if not indices:
        raise _Skip("data.parquet has no rows")
    sample = flat[indices].select(needed)
    tally = _Tally(len(indices))
    durations = []
    outside = 0
    for index, row in zip(indices, sample.iter_rows(named=True)):
        symbol = row["symbol"]
        if not isinstance(symbol, str) or not symbol.strip():
            tally.add("symbol is empty", index, symbol)
        added = parse_instant(row["meta__added_ts"])
        if added is None:
            tally.add("meta.added_ts is missing or not an ISO 8601 timestamp", index, row["meta__added_ts"])
        elif added.astimezone(timezone.utc).date() != ctx.day:
            outside += 1
        duration = row["meta__duration_sec"]
        if duration is not None and duration > LONG_DURATION_SEC:
            durations.append((duration, index))
        spread = row["derived__spread_bps"]
        if spread is not None and spread < 0:
            tally.add("derived.spread_bps is negative (a spread cannot be)", index, spread)
        prices = [row[f"spot_raw__{k}"] for k in ("mid", "bid", "ask", "last")]
        if not any(p is not None for p in prices):
            tally.add("no spot data (spot_raw has no mid, bid, ask or last)", index, None)
    check.errors += tally.messages()
    if durations:
        longest, where = max(durations)
        check.warnings.append(
            f"meta.duration_sec > {LONG_DURATION_SEC} s in {len(durations)} of {len(indices)} sampled rows "
            f"(longest {longest:,.0f} s, row {where}): cycles that ran longer than the usual 2-hour window; not critical"
        )
    check.figures.update(rows_sampled=len(indices), sample_seed=ctx.seed, sampled_rows=indices, long_duration_rows=len(durations),
                         max_duration_sec=max(durations)[0] if durations else None, added_ts_outside_day=outside)
    note = f"; {outside} with meta.added_ts on another day (expected: rows are partitioned by archive folder)" if outside else ""
    check.summary = f"{len(indices)} sampled rows sane{note}"


@_check("futures", "futures block validity")
def check_futures(ctx: _Day, check: CheckResult) -> None:
    contract = f"futures_raw{SEPARATOR}contract"
    flat = ctx.need_columns([contract])
    columns = _block_columns(flat.columns, "futures_raw")
    rows = flat.height
    indexed = flat.with_row_index("_row").with_columns(
        pl.any_horizontal([pl.col(c).is_not_null() for c in columns]).alias("_present"))
    present = indexed.filter(pl.col("_present"))
    share = round(present.height / rows, 4) if rows else 0.0
    check.figures.update(rows_with_futures=present.height, futures_share=share)
    unset = present.filter(pl.col(contract).is_null() | (pl.col(contract).str.strip_chars() == ""))
    if unset.height:
        check.errors.append(
            f"futures_raw is present but futures_raw.contract is empty in {unset.height} of {present.height} rows "
            f"(rows {_some([str(i) for i in unset['_row'].head(5)], 5)})"
        )
    for column in columns:
        if flat.schema[column].is_float():
            bad = present.filter(~pl.col(column).is_finite())
            if bad.height:
                check.errors.append(
                    f"{_dotted(column)} is not finite (NaN or infinite) in {_n(bad.height, 'row')} "
                    f"(row {bad['_row'][0]}: {bad[column][0]})"
                )
    check.summary = f"{present.height} of {rows} rows have futures ({share:.0%}); contracts set, numbers finite"


# -- the archive cross-check --------------------------------------------------------------------
def check_archive(ctx: _Day, check: CheckResult) -> None:
    """Re-read the day's hour files: row counts with the exporter's own reader (``read_hour``), and
    each sampled row against its source line parsed by ``json.loads``, not by the exporter."""
    try:
        options = storage_options_for(str(ctx.against_archive), ctx.archive_storage_options)
        archive_day = open_archive_day(str(ctx.against_archive), ctx.day, options)
    except InstrumetriqError as exc:
        check.errors.append(f"cannot cross-check: {exc}")
        return
    wanted = set(ctx.sample_indices()) if ctx.flat is not None else set()
    sources: dict[int, tuple[str, int, bytes]] = {}  # row -> (file, line number, the line as archived)
    by_hour: dict[str, int] = {}
    bad: list[BadLine] = []
    row = 0
    for hour_file in archive_day.hour_files:
        label = hour_label(archive_day, hour_file)
        fetched = gunzip(fetch_hour(archive_day, hour_file), label)
        hour, account = read_hour(label, fetched)  # the exporter's reader: which lines are rows
        bad.extend(account.bad_lines)
        sampled = sorted(wanted.intersection(range(row, row + len(hour.lines))))
        if sampled:
            lines = fetched[0].split(b"\n")  # line N is lines[N - 1], as the decoder numbers them
            for offset in sampled:
                number = hour.lines[offset - row]
                sources[offset] = (hour.label, number, lines[number - 1])
        row += len(hour.lines)
        by_hour[f"{hour_file.hour:02d}"] = len(hour.lines)
    check.figures.update(archive_rows=row, archive_rows_by_hour=by_hour, archive_bad_lines=len(bad))

    if ctx.parquet is not None and ctx.parquet.metadata.num_rows != row:
        check.errors.append(f"the archive gives {row} rows for {ctx.day} but data.parquet holds {ctx.parquet.metadata.num_rows}; {_REEXPORT}")
    manifest = ctx.manifest
    if manifest is not None:
        differ = [
            f"hour {h}: archive {by_hour.get(h, 'no file')}, manifest {manifest.rows_by_hour.get(h, 'not exported')}"
            for h in sorted(set(by_hour) | set(manifest.rows_by_hour)) if by_hour.get(h) != manifest.rows_by_hour.get(h)
        ]
        if differ:
            check.errors.append(f"rows per hour differ from the archive: {_some(differ)}; {_REEXPORT}")
        if len(bad) != manifest.bad_line_count:
            check.errors.append(f"the archive has {_n(len(bad), 'unreadable line')}, the manifest records {manifest.bad_line_count}")
    if ctx.flat is None:
        check.warnings.append("rows not compared: data.parquet rows could not be read (see check 'parquet')")
        return
    _compare_sample(ctx, check, sources)


def _compare_sample(ctx: _Day, check: CheckResult, sources: dict[int, tuple[str, int, bytes]]) -> None:
    indices = ctx.sample_indices()
    differences = []
    for index, row in zip(indices, ctx.flat[indices].iter_rows(named=True)):
        if index not in sources:
            differences.append(f"row {index} has no archive entry")
            continue
        file, line, source = sources[index]
        try:
            # the archive was written by Python's json: its own parser is the reference
            expected = json.loads(source)  # bytes: a leading UTF-8 BOM is skipped, as the exporter does
        except ValueError as exc:
            differences.append(f"row {index}: {file} line {line} is not JSON to the standard library ({_first_line(exc)})")
            continue
        try:
            actual = _entry_from_row(row)
        except ValueError:
            differences.append(f"row {index}: _extra is not valid JSON")
            continue
        actual, expected = _canonical(actual, TREE), _canonical(expected, TREE)
        # ``==`` settles the common case fast; _difference also treats NaN as equal to NaN
        difference = None if actual == expected else _difference(actual, expected, ())
        if difference:
            differences.append(f"row {index} ({file} line {line}) {difference}")
    check.figures.update(rows_compared=len(indices), rows_differing=len(differences))
    if differences:
        check.errors.append(
            f"{len(differences)} of {len(indices)} sampled rows differ from their archive entries: "
            f"{_some(differences, 3, sep='; ')}; {_REEXPORT}"
        )
    check.summary = f"{check.figures['archive_rows']} rows and rows per hour as in the archive; {len(indices)} sampled rows equal their entries"


def _entry_from_row(row: dict) -> dict:
    """A flat row back into an entry: path by path, then its ``_extra`` merged back."""
    entry: dict = {}
    for name, value in row.items():
        if name == EXTRA_COLUMN:
            continue
        path = FLAT_COLUMNS[name][1] if name in FLAT_COLUMNS else tuple(name.split(SEPARATOR))
        node = entry
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    extra = row.get(EXTRA_COLUMN)
    return _merge(entry, json.loads(extra)) if extra else entry


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def _canonical(value, spec, in_list: bool = False):
    """A comparable form of an entry (``spec`` = TREE) or a row rebuilt into one: NULL and missing
    alike (dropped), empty objects dropped (empty count maps too, as the export does), empty ``norm`` and
    ``labels`` dropped (the export drops them), integers in float fields widened. Undeclared values
    are compared as they are."""
    if value is None:
        return None
    if isinstance(spec, Field):
        return None if value == {} else _leaf(value, spec)
    if not isinstance(spec, dict):
        return value
    if "[]" in spec:
        if type(value) is not list:
            return value
        item_spec = spec["[]"]
        if all(type(child) is Field for child in item_spec.values()):  # spot_prices: ~720 flat items a row
            return [
                {k: _leaf(v, item_spec.get(k)) for k, v in item.items() if v is not None} if type(item) is dict else item
                for item in value
            ]
        return [_canonical(item, item_spec, in_list=True) for item in value]
    if type(value) is not dict:
        return value
    out = {}
    for key, item in value.items():
        item = _canonical(item, spec.get(key))
        if item is not None and not (item == {} and spec is TREE and key in DROPPED_COLUMNS):
            out[key] = item
    return out if out or in_list else None


def _leaf(value, spec: Field | None):
    """A declared leaf as compared: an integer in a float field as the float it stands for exactly
    (the export stores that float); one beyond 2**53 stays an integer (the export keeps it in
    ``_extra``), so a rounded export differs."""
    if type(value) is int and spec is not None and spec.type_name == "float":
        exact = exact_float(value)
        return value if exact is None else exact
    return value


def _difference(actual, expected, path: tuple) -> str | None:
    """Where two canonical values first differ, in words; None when equal (NaN equals NaN)."""
    where = ".".join(path) or "the entry"
    if isinstance(actual, dict) and isinstance(expected, dict):
        for key in sorted(set(actual) | set(expected), key=str):
            if key not in actual:
                return f"lacks {'.'.join(path + (key,))} (archive: {_short(expected[key])})"
            if key not in expected:
                return f"has {'.'.join(path + (key,))} = {_short(actual[key])}, which the archive entry lacks"
            found = _difference(actual[key], expected[key], path + (key,))
            if found:
                return found
        return None
    if isinstance(actual, list) and isinstance(expected, list):
        if len(actual) != len(expected):
            return f"{where} has {len(actual)} items, the archive {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            found = _difference(a, e, path[:-1] + (f"{path[-1] if path else ''}[{i}]",))
            if found:
                return found
        return None
    same_nan = isinstance(actual, float) and isinstance(expected, float) and math.isnan(actual) and math.isnan(expected)
    if same_nan or (type(actual) is type(expected) and actual == expected):
        return None
    return f"differs at {where}: parquet {_short(actual)}, archive {_short(expected)}"


#: Runs only with ``against_archive``, after the checks above.
ARCHIVE_CHECK = CheckSpec("archive", "cross-check against the archive", check_archive)


# -- running ------------------------------------------------------------------------------------
def verify_day(
    day: str | date,
    location: str,
    *,
    storage_options: dict | None = None,
    against_archive: str | None = None,
    archive_storage_options: dict | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = DEFAULT_SEED,
) -> VerifyResult:
    """Verify the published day ``location/YYYY-MM-DD`` (``location`` may also be the day folder).

    Returns a VerifyResult whatever the day holds; raises VerifyError only when the location cannot
    be read at all (unknown protocol, credentials, permissions) or is the day folder of another date.
    """
    started = time.perf_counter()
    day = parse_date(day)
    if sample_size < 1:
        raise ValueError(f"sample_size must be at least 1, not {sample_size}")
    ctx = _Day(day, location, storage_options, sample_size, seed, against_archive, archive_storage_options)
    specs = CHECKS + ([ARCHIVE_CHECK] if against_archive is not None else [])
    try:
        checks = [_run(spec, ctx) for spec in specs]
    finally:
        ctx.close()
    return VerifyResult(day, ctx.url, checks, ctx.layout, time.perf_counter() - started)


def _run(spec: CheckSpec, ctx: _Day) -> CheckResult:
    check = CheckResult(spec.name, spec.title)
    try:
        spec.run(ctx, check)
    except _Skip as skip:
        check.skipped = str(skip)
    except VerifyError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file can make any reader fail: report it
        check.errors.append(f"could not complete ({describe_error(exc)[:300]})")
    if check.errors or check.skipped is not None:
        check.summary = ""  # it says what passed: nothing did
    return check


def unreadable_result(day: date, location: str, error: Exception) -> VerifyResult:
    """A failed VerifyResult for a day whose location could not be read at all."""
    return VerifyResult(day, str(location), [CheckResult("location", "location readable", errors=[str(error)])])


# -- report -------------------------------------------------------------------------------------
def render_report(results: list[VerifyResult], title: str = "Tier 3 verification") -> str:
    """The Markdown report: an overview, then per date a table of checks and rows per hour."""
    lines = [f"# {title}", "", f"Generated {utc_now_iso()}.", "",
             "| date | status | rows | size | layout | errors | warnings |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        f = r.figures
        size = f"{f['data_size_bytes'] / 1e6:.2f} MB" if f.get("data_size_bytes") else "-"
        lines.append(f"| {r.day} | **{r.status}** | {f.get('parquet_rows', '-')} | {size} | {r.layout or '-'} | {len(r.errors)} | {len(r.warnings)} |")
    for r in results:
        lines += ["", f"## {r.day}: {r.status}", "", f"`{r.location}`, verified in {r.seconds:.1f} s", "",
                  "| check | status | details |", "| --- | --- | --- |"]
        for c in r.checks:
            details = c.errors + c.warnings or ([f"skipped: {c.skipped}"] if c.skipped else [c.summary])
            lines.append(f"| {c.name}: {c.title} | {c.status} | {'<br>'.join(_cell(d) for d in details)} |")
        chart = _bar_chart(r.figures.get("rows_by_hour") or r.figures.get("archive_rows_by_hour"))
        if chart:
            lines += ["", "Rows per hour:", "", "```text", *chart, "```"]
        key = {k: r.figures[k] for k in ("futures_share", "null_ratios_top", "long_duration_rows", "added_ts_outside_day") if k in r.figures}
        if key:
            lines += ["", "Figures: " + ", ".join(f"`{k}` = {_cell(json.dumps(v))}" for k, v in key.items())]
    return "\n".join(lines) + "\n"


def _bar_chart(rows_by_hour: dict[str, int] | None, width: int = 40) -> list[str]:
    if not rows_by_hour:
        return []
    top = max(rows_by_hour.values()) or 1
    out = []
    for hour in range(24):
        key = f"{hour:02d}"
        if key not in rows_by_hour:
            out.append(f"{key} (missing)")
        else:
            count = rows_by_hour[key]
            out.append(f"{key} {'█' * max(round(count / top * width), 1 if count else 0):<{width}} {count}")
    return out


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# -- helpers ------------------------------------------------------------------------------------
class _Tally:
    """Row problems of one kind: counted, with the first few rows as examples."""

    def __init__(self, sampled: int) -> None:
        self.sampled = sampled
        self.found: dict[str, list[tuple[int, Any]]] = {}

    def add(self, problem: str, row: int, value) -> None:
        self.found.setdefault(problem, []).append((row, value))

    def messages(self) -> list[str]:
        out = []
        for problem, hits in self.found.items():
            examples = ", ".join(f"row {row}: {_short(value)}" for row, value in hits[:3])
            out.append(f"{problem} in {len(hits)} of {self.sampled} sampled rows ({examples})")
        return out


def _manifest_type_problems(data: dict) -> list[str]:
    def is_int(v):
        return type(v) is int

    expect = {
        "row_count": is_int, "parquet_size_bytes": is_int, "hours_found": is_int, "hours_expected": is_int,
        "column_count": is_int, "bad_line_count": is_int, "lines_exported": is_int, "lines_read": is_int,
        "parquet_sha256": lambda v: isinstance(v, str) and len(v) == 64,
        "layout": lambda v: isinstance(v, str), "schema_fingerprint": lambda v: isinstance(v, str),
        "date_utc": lambda v: isinstance(v, str), "archive_day": lambda v: isinstance(v, str),
        "missing_hours": lambda v: isinstance(v, list) and all(map(is_int, v)),
        "rows_by_hour": lambda v: isinstance(v, dict) and all(map(is_int, v.values())),
        "bad_lines": lambda v: isinstance(v, list), "source_files": lambda v: isinstance(v, list) and all(isinstance(s, dict) for s in v),
        "dropped_columns": lambda v: isinstance(v, list), "day_over_at_export": lambda v: type(v) is bool,
    }
    return [f"{key} ({_short(data[key])})" for key, ok in expect.items() if key in data and not ok(data[key])]


def _leaves(schema: dict[str, pl.DataType], prefix: str = ""):
    """(flat name, dtype) of every non-struct column, struct fields unnested (flat and nested alike)."""
    for name, dtype in schema.items():
        if isinstance(dtype, pl.Struct):
            yield from _leaves({f.name: f.dtype for f in dtype.fields}, prefix + name + SEPARATOR)
        else:
            yield prefix + name, dtype


def _flatten(frame: pl.DataFrame) -> pl.DataFrame:
    """Struct columns unnested into ``a__b`` columns: the flat view the row checks read."""
    exprs = []

    def walk(expr: pl.Expr, name: str, dtype: pl.DataType) -> None:
        if isinstance(dtype, pl.Struct):
            for f in dtype.fields:
                walk(expr.struct.field(f.name), name + SEPARATOR + f.name, f.dtype)
        else:
            exprs.append(expr.alias(name))

    for name, dtype in frame.schema.items():
        walk(pl.col(name), name, dtype)
    return frame.select(exprs)


def _infer_layout(schema: dict[str, pl.DataType]) -> str:
    for layout in LAYOUTS:
        if fingerprint(schema) == fingerprint(schema_for(layout)):
            return layout
    return "nested" if any(isinstance(dtype, pl.Struct) for dtype in schema.values()) else "flat"


def _in_block(column: str, block: str) -> bool:
    """``column`` is ``block`` itself or one of its ``block__*`` columns."""
    return column == block or column.startswith(block + SEPARATOR)


def _block_columns(columns, block: str) -> list[str]:
    return [c for c in columns if _in_block(c, block)]


def _hours(keys) -> str:
    keys = sorted(keys)
    return ", ".join(keys) if keys else "none"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _dotted(name: str) -> str:
    return name.replace(SEPARATOR, ".")


def _some(items: list[str], limit: int = 8, sep: str = ", ") -> str:
    shown = sep.join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
