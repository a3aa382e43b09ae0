"""The cross-check against the archive: row counts with the exporter's own reader, and sampled
rows, rebuilt into entries, against their source lines as the standard library reads them.

Rebuilding an entry from a row (``entry_from_row``) lives here, once."""

from __future__ import annotations

import json
import math
from datetime import datetime

from ..archive import open_archive_day
from ..decode import BadLine, deep_json, open_hour
from ..errors import InstrumetriqError
from ..instants import as_instant, parse_instants
from ..manifest import hour_key
from ..source import fetch_hour, hour_label, read_hour
from ..schema import DROPPED_COLUMNS, EXTRA_COLUMN, FLAT_COLUMNS, LINEAGE_COLUMNS, SEPARATOR, TREE, Field, exact_float
from ..storage import storage_options_for
from .day import REEXPORT, CheckSpec, DayUnderCheck, Skip, first_line, plural, short, some
from .results import CheckResult


def check_archive(ctx: DayUnderCheck, check: CheckResult) -> None:
    """Re-read the day's hour files: row counts with the exporter's own reader (``read_hour``, in
    the export's chunks, so an oversized hour costs no more memory than in the export), and
    each sampled row against its source line parsed by ``json.loads``, not by the exporter."""
    try:
        options = storage_options_for(str(ctx.against_archive), ctx.archive_storage_options)
        if ctx.last_day != ctx.day:
            raise Skip("a bundle is compared with its days, not the archive: verify the month's days against the archive")
        archive_day = open_archive_day(str(ctx.against_archive), ctx.day, options)
        if ctx.partition is not None:  # an hour, YYYY-MM-DD/HH: its hour file only
            archive_day = archive_day.only_hour(int(ctx.partition[11:]))
    except InstrumetriqError as exc:
        check.errors.append(f"cannot cross-check: {exc}")
        return
    wanted = set(ctx.sample_indices()) if ctx.flat is not None else set()
    sources: dict[int, tuple[str, int, bytes, int]] = {}  # row -> (file, line number, the line as archived, hour)
    by_hour: dict[str, int] = {}
    bad: list[BadLine] = []
    row = 0
    for hour_file in archive_day.hour_files:
        label = hour_label(archive_day, hour_file)
        text = open_hour(fetch_hour(archive_day, hour_file), label)
        first_row = row
        for chunk, hour in read_hour(text):  # the exporter's reader: which lines are rows
            bad.extend(hour.account.bad_lines)
            sampled = sorted(wanted.intersection(range(row, row + len(hour.lines))))
            if sampled:
                lines = chunk.lines  # line N is lines[N - chunk.first_line], as the decoder numbers them
                for offset in sampled:
                    number = hour.lines[offset - row]
                    sources[offset] = (label, number, lines[number - chunk.first_line], hour_file.hour)
            row += len(hour.lines)
        by_hour[hour_key(hour_file.hour)] = row - first_row
    check.figures.update(archive_rows=row, archive_rows_by_hour=by_hour, archive_bad_lines=len(bad))

    if ctx.parquet is not None and ctx.parquet.metadata.num_rows != row:
        check.errors.append(f"the archive gives {row} rows for {ctx.day} but data.parquet holds {ctx.parquet.metadata.num_rows}; {REEXPORT}")
    manifest = ctx.manifest
    if manifest is not None:
        differ = [
            f"hour {h}: archive {by_hour.get(h, 'no file')}, manifest {manifest.rows_by_hour.get(h, 'not exported')}"
            for h in sorted(set(by_hour) | set(manifest.rows_by_hour)) if by_hour.get(h) != manifest.rows_by_hour.get(h)
        ]
        if differ:
            check.errors.append(f"rows per hour differ from the archive: {some(differ)}; {REEXPORT}")
        if len(bad) != manifest.bad_line_count:
            check.errors.append(f"the archive has {plural(len(bad), 'unreadable line')}, the manifest records {manifest.bad_line_count}")
    if ctx.flat is None:
        check.warnings.append("rows not compared: data.parquet rows could not be read (see check 'parquet')")
        return
    with deep_json():  # rows may nest as deep as the export reads (decode.MAX_DEPTH); the comparison recurses
        _compare_sample(ctx, check, sources)


def _compare_sample(ctx: DayUnderCheck, check: CheckResult, sources: dict[int, tuple[str, int, bytes, int]]) -> None:
    indices = ctx.sample_indices()
    differences = []
    for index, row in zip(indices, ctx.flat[indices].iter_rows(named=True)):
        if index not in sources:
            differences.append(f"row {index} has no archive entry")
            continue
        file, line, source, hour = sources[index]
        lineage = {name: row[name] for name in LINEAGE_COLUMNS if name in row}
        if lineage and lineage != {"archive_day": ctx.day, "archive_hour": hour}:
            differences.append(f"row {index} ({file} line {line}) says it came from archive_day {lineage.get('archive_day')}, "
                               f"archive_hour {lineage.get('archive_hour')}")
            continue
        try:
            # the archive was written by Python's json: its own parser is the reference
            expected = json.loads(source)  # bytes: a leading UTF-8 BOM is skipped, as the exporter does
        except ValueError as exc:
            differences.append(f"row {index}: {file} line {line} is not JSON to the standard library ({first_line(exc)})")
            continue
        try:
            actual = entry_from_row(row)
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
            f"{some(differences, 3, sep='; ')}; {REEXPORT}"
        )
    check.summary = f"{check.figures['archive_rows']} rows and rows per hour as in the archive; {len(indices)} sampled rows equal their entries"


def entry_from_row(row: dict, with_extra: bool = True) -> dict:
    """A flat row (or some of its columns) back into an entry: path by path, then (``with_extra``)
    its ``_extra`` merged back. Without ``_extra`` it is the entry as the export normalised it."""
    entry: dict = {}
    for name, value in row.items():
        if name == EXTRA_COLUMN or name in LINEAGE_COLUMNS:  # lineage: where the row came from, not a field
            continue
        path = FLAT_COLUMNS[name][1] if name in FLAT_COLUMNS else tuple(name.split(SEPARATOR))
        node = entry
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    extra = row.get(EXTRA_COLUMN)
    return _merge(entry, json.loads(extra)) if extra and with_extra else entry


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
    ``labels`` dropped (the export drops them), integers in float fields widened, timestamps as the
    instants they are (text that is no instant stays text). Undeclared values are compared as they are."""
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
            items = [
                {k: _leaf(v, item_spec.get(k), False) for k, v in item.items() if v is not None} if type(item) is dict else item
                for item in value
            ]
            for key in (k for k, child in item_spec.items() if child.type_name == "timestamp"):
                holders = [item for item in items if type(item) is dict and key in item]
                for item, instant in zip(holders, _instants([item[key] for item in holders])):
                    item[key] = instant
            return items
        return [_canonical(item, item_spec, in_list=True) for item in value]
    if type(value) is not dict:
        return value
    out = {}
    for key, item in value.items():
        item = _canonical(item, spec.get(key))
        if item is not None and not (item == {} and spec is TREE and key in DROPPED_COLUMNS):
            out[key] = item
    return out if out or in_list else None


def _leaf(value, spec: Field | None, instants: bool = True):
    """A declared leaf as compared: an integer in a float field as the float it stands for exactly
    (the export stores that float); one beyond 2**53 stays an integer (the export keeps it in
    ``_extra``), so a rounded export differs. With ``instants``, a timestamp as its instant."""
    if type(value) is int and spec is not None and spec.type_name == "float":
        exact = exact_float(value)
        return value if exact is None else exact
    if instants and spec is not None and spec.type_name == "timestamp":
        return _instants([value])[0]
    return value


def _instants(values: list) -> list:
    """Timestamps as compared: an instant (a typed value, or text the rule reads as one) as an
    aware datetime in UTC; anything else as it is (the export kept it, in ``_extra``)."""
    parsed = parse_instants([value for value in values if not isinstance(value, datetime)])[::-1]
    out = []
    for value in values:
        instant = as_instant(value) if isinstance(value, datetime) else parsed.pop()
        out.append(value if instant is None else instant)
    return out


def _difference(actual, expected, path: tuple) -> str | None:
    """Where two canonical values first differ, in words; None when equal (NaN equals NaN)."""
    where = ".".join(path) or "the entry"
    if isinstance(actual, dict) and isinstance(expected, dict):
        for key in sorted(set(actual) | set(expected), key=str):
            if key not in actual:
                return f"lacks {'.'.join(path + (key,))} (archive: {short(expected[key])})"
            if key not in expected:
                return f"has {'.'.join(path + (key,))} = {short(actual[key])}, which the archive entry lacks"
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
    return f"differs at {where}: parquet {short(actual)}, archive {short(expected)}"


#: Runs only with ``against_archive``, after the checks above.
ARCHIVE_CHECK = CheckSpec("archive", "cross-check against the archive", check_archive)

