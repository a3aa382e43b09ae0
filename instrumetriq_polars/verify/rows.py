"""The checks of a published day's columns and rows: schema, dropped columns, count maps, NULL
ratios, row content on the seeded sample, the futures block."""

from __future__ import annotations

from datetime import timedelta, timezone

import polars as pl

from ..instants import as_instant
from ..manifest import format_instant
from ..normalize import required_problem
from ..schema import (
    DROPPED_COLUMNS, EXTRA_COLUMN, LAYOUTS, REQUIRED_COLUMNS, SEPARATOR, VERSIONS, fingerprint, known_fingerprints,
    schema_for,
)
from .day import (
    REEXPORT, CheckSpec, DayUnderCheck, Skip, Tally, block_columns, dotted, in_block, leaf_columns, plural, registry, short,
    some,
)
from .crosscheck import entry_from_row
from .results import CheckResult

#: Cycles longer than this are long (the guide's Troubleshooting: longer than the usual 2-hour window).
LONG_DURATION_SEC = 9000
#: A few long cycles are normal (the collector's own share is ~2%); more than this share of the
#: sampled rows (and more than LONG_DURATION_USUAL of them) is a warning, so a normal day PASSes.
LONG_DURATION_SHARE = 0.10
LONG_DURATION_USUAL = 2
#: The dynamic-key count maps of each sentiment window: they must be Parquet MAP columns.
COUNT_MAP_NAMES = ("tag_counts", "cashtag_counts", "mention_counts", "url_domain_counts")
TOP_NULL_RATIOS = 10
ONE_DAY = timedelta(days=1)

#: The checks of this module, in the order they run.
CHECKS: list[CheckSpec] = []
_check = registry(CHECKS)


@_check("schema", "required columns and schema fingerprint")
def check_schema(ctx: DayUnderCheck, check: CheckResult) -> None:
    ctx.need_footer()
    actual = ctx.schema
    if ctx.layout is None:
        check.errors.append("cannot tell the layout: the manifest is unusable and the columns match neither flat nor nested")
        return
    expected = schema_for(ctx.layout, ctx.version)
    declared = fingerprint(expected)
    check.figures.update(schema_fingerprint=fingerprint(actual), declared_fingerprint=declared, column_count=len(actual),
                         layout_source=ctx.layout_source, export_format_version=ctx.version)
    leaves, expected_leaves = dict(leaf_columns(actual)), dict(leaf_columns(expected))
    required = [c for c in REQUIRED_COLUMNS if not block_columns(leaves, c)]
    if required:
        check.errors.append(f"required columns missing: {', '.join(required)}")
    if fingerprint(actual) != declared:
        other = next(((lay, v) for v in VERSIONS for lay in LAYOUTS
                      if (lay, v) != (ctx.layout, ctx.version) and fingerprint(schema_for(lay, v)) == fingerprint(actual)), None)
        if other:
            versions = (f" of export version {other[1]}", f", export version {ctx.version}") if other[1] != ctx.version else ("", "")
            check.errors.append(f"data.parquet is in the {other[0]} layout{versions[0]} but the manifest says {ctx.layout}"
                                f"{versions[1]}; {REEXPORT}")
        else:
            _schema_differences(check, ctx.layout, actual, expected, leaves, expected_leaves)
    manifest = ctx.manifest
    if manifest is not None and manifest.schema_fingerprint not in known_fingerprints(ctx.layout, ctx.version):
        check.errors.append(
            f"manifest.json declares schema_fingerprint {manifest.schema_fingerprint[:23]}..., the declared {ctx.layout} "
            f"schema's is {declared[:23]}... (export version {ctx.version}): the day was written with another schema version; {REEXPORT}"
        )
    if manifest is not None and manifest.column_count != len(expected):
        check.errors.append(f"manifest.json says column_count {manifest.column_count}, the {ctx.layout} layout has {len(expected)}")
    check.summary = f"{len(actual)} columns, {ctx.layout} layout, fingerprint {declared[:19]}..."


def _schema_differences(check, layout, actual, expected, leaves, expected_leaves) -> None:
    head = f"data.parquet schema differs from the declared {layout} schema"
    missing = [dotted(c) for c in expected_leaves if c not in leaves]
    unexpected = [dotted(c) for c in leaves if c not in expected_leaves]
    retyped = [f"{dotted(c)} is {leaves[c]!r}, declared {t!r}" for c, t in expected_leaves.items() if c in leaves and leaves[c] != t]
    if missing:
        check.errors.append(f"{head}: {plural(len(missing), 'column')} missing: {some(missing)}")
    if unexpected:
        check.errors.append(f"{head}: {plural(len(unexpected), 'unexpected column')}: {some(unexpected)}")
    if retyped:
        check.errors.append(f"{head}: {plural(len(retyped), 'column')} of another type: {some(retyped)}")
    if not (missing or unexpected or retyped):
        check.errors.append(f"{head}: the columns are in another order than declared")


@_check("dropped_columns", "dropped columns (norm, labels) absent")
def check_dropped(ctx: DayUnderCheck, check: CheckResult) -> None:
    ctx.need_footer()
    found = [c for c in ctx.schema if any(in_block(c, d) for d in DROPPED_COLUMNS)]
    check.figures["dropped_columns_found"] = found
    if found:
        check.errors.append(f"columns that are always dropped are present: {', '.join(found)} (the Tier 3 dataset drops {', '.join(DROPPED_COLUMNS)})")
    manifest = ctx.manifest
    if manifest is not None and sorted(manifest.dropped_columns) != sorted(DROPPED_COLUMNS):
        check.warnings.append(f"manifest.json lists dropped_columns {manifest.dropped_columns}, expected {list(DROPPED_COLUMNS)}")
    check.summary = f"{', '.join(DROPPED_COLUMNS)} absent"


@_check("count_maps", "count maps are MAP columns")
def check_count_maps(ctx: DayUnderCheck, check: CheckResult) -> None:
    ctx.need_footer()
    maps = {name: dtype for name, dtype in leaf_columns(ctx.schema) if name.rsplit(SEPARATOR, 1)[-1] in COUNT_MAP_NAMES}
    check.figures["count_map_columns"] = len(maps)
    if not maps:
        check.errors.append(f"no count map columns ({', '.join(COUNT_MAP_NAMES)}) found")
    wrong = [f"{dotted(name)} is {dtype!r}" for name, dtype in maps.items() if not isinstance(dtype, pl.Map)]
    if wrong:
        check.errors.append(f"count maps must be Parquet MAP columns: {some(wrong)}")
    check.summary = f"{len(maps)} count map columns, all MAP"


@_check("null_ratios", "NULL ratios: required blocks never NULL, columns newly all NULL")
def check_null_ratios(ctx: DayUnderCheck, check: CheckResult) -> None:
    flat = ctx.need_columns(REQUIRED_COLUMNS)
    rows = flat.height
    if not rows:
        raise Skip("data.parquet has no rows")
    nulls = flat.null_count().row(0, named=True)
    ratios = {name: count / rows for name, count in nulls.items()}
    top = sorted(((n, r) for n, r in ratios.items() if r > 0 and n != EXTRA_COLUMN), key=lambda item: (-item[1], item[0]))[:TOP_NULL_RATIOS]
    check.figures["null_ratios_top"] = {dotted(n): round(r, 4) for n, r in top}
    null_blocks = {}
    for block in REQUIRED_COLUMNS:
        columns = block_columns(flat.columns, block)
        count = flat.select(pl.all_horizontal([pl.col(c).is_null() for c in columns]).sum()).item()
        null_blocks[block] = count
        if count:
            if isinstance(ctx.schema.get(block), pl.Struct):  # nested layout: one struct column
                how = f" (the {block} struct column, or every one of its {len(columns)} fields, is NULL)"
            else:
                how = f" (all of its {len(columns)} {block}{SEPARATOR}* columns are NULL)" if len(columns) > 1 else ""
            check.errors.append(
                f"{block} is NULL in {count} of {rows} rows{how}: it is never NULL in a valid export "
                f"(such entries go to bad_lines); {REEXPORT}"
            )
    check.figures["required_null_rows"] = null_blocks
    reported = {c for block, count in null_blocks.items() if count for c in block_columns(flat.columns, block)}
    empty = [n for n, r in ratios.items() if r == 1.0 and n != EXTRA_COLUMN and n not in reported]
    _all_null_columns(ctx, check, empty)
    shown = ", ".join(f"{name} {ratio:.0%}" for name, ratio in list(check.figures["null_ratios_top"].items())[:3])
    check.summary = f"required blocks never NULL; most NULL: {shown or 'none'}"
    if empty:
        before = check.figures["all_null_previous_day"]
        compared = f"none newly since {before}" if before else "no earlier published day to compare with"
        check.summary += f"; {plural(len(empty), 'column')} NULL in every row ({compared})"


def _all_null_columns(ctx: DayUnderCheck, check: CheckResult, empty: list[str]) -> None:
    """Columns NULL in every row are a figure. On real days some always are (fields the collector
    does not fill), so a warning every night would teach people to ignore warnings: it is a warning
    only for a column that held a value on the previous published day (``previous_nulls``)."""
    check.figures["all_null_columns"] = [dotted(n) for n in empty]
    previous = ctx.previous_nulls(empty) if empty else None
    check.figures["all_null_previous_day"] = previous[0].isoformat() if previous else None
    news = [n for n in empty if previous and previous[1].get(n) is False]
    check.figures["all_null_new"] = [dotted(n) for n in news]
    if news:
        check.warnings.append(
            f"{plural(len(news), 'column')} {'is' if len(news) == 1 else 'are'} NULL in every row but held values on "
            f"{previous[0]} (the previous published day): {some([dotted(n) for n in news])}: check that the collector "
            "still writes them"
        )


@_check("content", "row content sanity (seeded sample)")
def check_content(ctx: DayUnderCheck, check: CheckResult) -> None:
    """Errors only for what the export never publishes: a required field that
    ``normalize.required_problem`` refuses (the export's own rule, on the row rebuilt into an
    entry). Legal oddities the export keeps are warnings: an unparseable ``meta.added_ts``, a
    negative spread, no spot price, a long cycle, most rows far from the day."""
    needed = ["meta__added_ts", "meta__duration_sec", "derived__spread_bps", "spot_raw__mid", "spot_raw__bid",
              "spot_raw__ask", "spot_raw__last"]
    flat = ctx.need_columns([*REQUIRED_COLUMNS, *needed])
    indices = ctx.sample_indices()
    if not indices:
        raise Skip("data.parquet has no rows")
    required = [c for block in REQUIRED_COLUMNS for c in block_columns(flat.columns, block)]
    sample = flat[indices].select(list(dict.fromkeys(required + needed)))
    errors, odd = Tally(len(indices)), Tally(len(indices))
    durations = []
    outside, far, dated = 0, [], 0
    for index, row in zip(indices, sample.iter_rows(named=True)):
        entry = entry_from_row({c: row[c] for c in required}, with_extra=False)
        for key in REQUIRED_COLUMNS:
            problem = required_problem(key, entry.get(key))
            if problem:
                errors.add(problem, index, entry.get(key))
        added = as_instant(row["meta__added_ts"])
        if added is None:
            odd.add("meta.added_ts is missing or not an ISO 8601 timestamp", index, row["meta__added_ts"])
        elif not ctx.day <= added.astimezone(timezone.utc).date() <= ctx.last_day:
            outside += 1
        instant = added or as_instant(row["snapshot_ts"])
        if instant is not None:
            dated += 1
            if not ctx.day - ONE_DAY <= instant.astimezone(timezone.utc).date() <= ctx.last_day + ONE_DAY:
                far.append((index, format_instant(instant)))
        duration = row["meta__duration_sec"]
        if duration is not None and duration > LONG_DURATION_SEC:
            durations.append((duration, index))
        spread = row["derived__spread_bps"]
        if spread is not None and spread < 0:
            odd.add("derived.spread_bps is negative (a spread cannot be; exported as archived)", index, spread)
        prices = [row[f"spot_raw__{k}"] for k in ("mid", "bid", "ask", "last")]
        if not any(p is not None for p in prices):
            odd.add("no spot price (spot_raw has no mid, bid, ask or last)", index, None)
    check.errors += [f"{m}: the export never publishes such a row; {REEXPORT}" for m in errors.messages()]
    check.warnings += odd.messages()
    if len(durations) > max(LONG_DURATION_USUAL, LONG_DURATION_SHARE * len(indices)):
        longest, where = max(durations)
        check.warnings.append(
            f"meta.duration_sec > {LONG_DURATION_SEC} s in {len(durations)} of {len(indices)} sampled rows "
            f"(longest {longest:,.0f} s, row {where}): more cycles than usual ran longer than the 2-hour window; not critical"
        )
    if dated and len(far) * 2 > dated:
        examples = ", ".join(f"row {i}: {short(v)}" for i, v in far[:3])
        check.warnings.append(
            f"{len(far)} of {dated} sampled rows are dated more than a day away from {ctx.day} (meta.added_ts, else "
            f"snapshot_ts; {examples}): the data may be another day's; compare with the archive (against_archive)"
        )
    check.figures.update(rows_sampled=len(indices), sample_seed=ctx.seed, sampled_rows=indices, long_duration_rows=len(durations),
                         max_duration_sec=max(durations)[0] if durations else None, added_ts_outside_day=outside,
                         rows_far_from_day=len(far))
    note = f"; {outside} with meta.added_ts on another day (expected: rows are partitioned by archive folder)" if outside else ""
    check.summary = f"{len(indices)} sampled rows sane{note}"


@_check("futures", "futures block: share of rows, contracts")
def check_futures(ctx: DayUnderCheck, check: CheckResult) -> None:
    """The share of rows with futures. A block without a contract is exported as archived: a
    warning. NaN and infinities are legal float values (Python's json writes them, the export keeps
    them), in futures_raw as in every float column."""
    contract = f"futures_raw{SEPARATOR}contract"
    flat = ctx.need_columns([contract])
    columns = block_columns(flat.columns, "futures_raw")
    rows = flat.height
    indexed = flat.with_row_index("_row").with_columns(
        pl.any_horizontal([pl.col(c).is_not_null() for c in columns]).alias("_present"))
    present = indexed.filter(pl.col("_present"))
    share = round(present.height / rows, 4) if rows else 0.0
    check.figures.update(rows_with_futures=present.height, futures_share=share)
    unset = present.filter(pl.col(contract).is_null() | (pl.col(contract).str.strip_chars() == ""))
    check.figures["futures_without_contract"] = unset.height
    if unset.height:
        check.warnings.append(
            f"futures_raw is present but futures_raw.contract is empty in {unset.height} of {present.height} rows "
            f"(rows {some([str(i) for i in unset['_row'].head(5)], 5)}): exported as archived; check the collector"
        )
    check.summary = f"{present.height} of {rows} rows have futures ({share:.0%}); contracts set"
