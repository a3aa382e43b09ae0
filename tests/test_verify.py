"""The verifier against real exports: a clean day passes, and each tampering makes its check fire,
from the API and from the command, on both layouts."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import fsspec
import polars as pl
import pyarrow.parquet as pq
import pytest

import instrumetriq_polars.source as source_module
from instrumetriq_polars import Manifest, VerifyError, VerifyResult, export_day, verify_day
from instrumetriq_polars.cli import main
from instrumetriq_polars.errors import ManifestError
from instrumetriq_polars.schema import LAYOUTS, schema_for
from instrumetriq_polars.verify import CHECKS, render_report, split_day_folder

from .support.s3 import BUCKET, SECRET
from .support.verifying import (
    archive, exports, flat_root,  # fixtures
    AFTER, DAY, ROWS, day_dir, messages, read_manifest, verify, write_manifest,
)

META_FIELDS = sum(name.startswith("meta__") for name in schema_for("flat"))


# -- fixtures and helpers -----------------------------------------------------------------------
@pytest.fixture
def nested_root(exports, tmp_path) -> Path:
    return Path(shutil.copytree(exports["nested"], tmp_path / "nested"))


def edit_manifest(root: Path, **changes) -> None:
    write_manifest(root, {**read_manifest(root), **changes})


def read_data(root: Path) -> pl.DataFrame:
    return pl.read_parquet(day_dir(root) / "data.parquet")


def reseal(root: Path) -> None:
    """Make the manifest's sha256 and size agree with data.parquet as it is now, so that only the
    checks looking inside the file can notice a change."""
    raw = (day_dir(root) / "data.parquet").read_bytes()
    edit_manifest(root, parquet_sha256=hashlib.sha256(raw).hexdigest(), parquet_size_bytes=len(raw))


def rewrite_data(root: Path, frame: pl.DataFrame, **write_options) -> None:
    """Replace data.parquet (sha256 and size resealed)."""
    frame.write_parquet(day_dir(root) / "data.parquet", compression="zstd", **write_options)
    reseal(root)


def set_field(frame: pl.DataFrame, layout: str, block: str, name: str, row: int, value) -> pl.DataFrame:
    """``block.name`` of one row set to ``value``, in either layout."""
    hit = pl.col("_i") == row
    frame = frame.with_row_index("_i")
    if layout == "flat":
        column = f"{block}__{name}"
        frame = frame.with_columns(pl.when(hit).then(value).otherwise(pl.col(column)).alias(column))
    else:
        frame = frame.with_columns(pl.col(block).struct.with_fields(pl.when(hit).then(value).otherwise(pl.field(name)).alias(name)))
    return frame.drop("_i")


def failing(result: VerifyResult) -> set[str]:
    return {c.name for c in result.checks if c.status == "FAIL"}


def rewrite_hour(archive: Path, hour: int, change) -> None:
    """Apply ``change(entries)`` to one hour file of an archive copy."""
    path = archive / DAY.strftime("%Y%m%d") / f"{hour:02d}.jsonl.gz"
    entries = [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines() if line.strip()]
    change(entries)
    path.write_bytes(gzip.compress(("\n".join(json.dumps(e) for e in entries) + "\n").encode(), mtime=0))


def export_copy(archive: Path, tmp_path: Path, change_hour: int, change) -> tuple[Path, Path]:
    """Copy the archive, change one hour, export it; returns (archive copy, export root)."""
    copy = Path(shutil.copytree(archive, tmp_path / "archive"))
    rewrite_hour(copy, change_hour, change)
    out = tmp_path / "out"
    export_day(DAY, str(copy), str(out), today=AFTER)
    return copy, out


# -- a clean day --------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", LAYOUTS)
def test_clean_day_passes_every_check(exports, layout):
    result = verify(exports[layout])
    assert result.status == "PASS", result.summary()
    assert result.ok and result.errors == [] and result.warnings == []
    assert [c.name for c in result.checks] == [spec.name for spec in CHECKS]
    assert all(c.status == "PASS" for c in result.checks)
    assert result.layout == layout
    figures = result.figures
    data = day_dir(exports[layout]) / "data.parquet"
    assert figures["data_size_bytes"] == data.stat().st_size
    assert figures["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert figures["parquet_rows"] == figures["manifest_row_count"] == ROWS
    assert sum(figures["rows_by_hour"].values()) == ROWS
    assert figures["rows_sampled"] == ROWS  # the default sample covers a small day entirely
    with_futures = read_data(exports["flat"])["futures_raw__contract"].is_not_null().sum()
    assert figures["rows_with_futures"] == with_futures
    assert figures["futures_share"] == round(with_futures / ROWS, 4)
    assert figures["count_map_columns"] == 8
    assert "futures_raw.contract" in figures["null_ratios_top"]


def test_added_ts_on_the_previous_day_is_not_an_error(exports):
    # entries written just after midnight began ~2 hours earlier: their added_ts is on Jan 14
    result = verify(exports["flat"])
    assert result.figures["added_ts_outside_day"] > 0
    assert result.check("content").status == "PASS"
    assert "partitioned by archive folder" in result.check("content").summary


def test_location_may_be_the_day_folder(exports):
    result = verify_day(DAY, str(day_dir(exports["nested"])))
    assert result.status == "PASS"
    assert result.location == str(day_dir(exports["nested"]))


def test_sample_is_seeded_and_sized(exports):
    def sampled(seed):
        result = verify(exports["flat"], sample_size=5, seed=seed)
        assert result.figures["rows_sampled"] == 5
        return result.figures["sampled_rows"]

    rows = sampled(3)
    assert len(set(rows)) == 5 and all(0 <= r < ROWS for r in rows) and rows == sorted(rows)
    assert sampled(3) == rows  # a rerun looks at the same rows
    assert sampled(4) != rows


# -- tampering: every case, both layouts, from the API and from the command ---------------------
def flip_byte(root: Path, layout: str) -> None:
    path = day_dir(root) / "data.parquet"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def truncate_data(root: Path, layout: str) -> None:
    path = day_dir(root) / "data.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def wrong_sha(root: Path, layout: str) -> None:
    edit_manifest(root, parquet_sha256="0" * 64)


def wrong_row_count(root: Path, layout: str) -> None:
    edit_manifest(root, row_count=ROWS - 1)


def wrong_rows_by_hour(root: Path, layout: str) -> None:
    manifest = read_manifest(root)
    manifest["rows_by_hour"]["03"] += 3
    write_manifest(root, manifest)


def remove_manifest(root: Path, layout: str) -> None:
    (day_dir(root) / "manifest.json").unlink()


def remove_data(root: Path, layout: str) -> None:
    (day_dir(root) / "data.parquet").unlink()


def other_schema(root: Path, layout: str) -> None:
    rewrite_data(root, read_data(root).with_columns(pl.lit(1).alias("surprise")))


def other_declared_fingerprint(root: Path, layout: str) -> None:
    edit_manifest(root, schema_fingerprint="sha256:" + "0" * 64)


def drop_symbol(root: Path, layout: str) -> None:
    rewrite_data(root, read_data(root).drop("symbol"))


def null_meta(root: Path, layout: str) -> None:
    frame = read_data(root)
    meta = [c for c in frame.columns if c == "meta" or c.startswith("meta__")]  # the struct, or the flat columns
    rewrite_data(root, frame.with_columns(pl.lit(None, frame.schema[c]).alias(c) for c in meta))


def long_durations(rows: range):
    """``meta.duration_sec`` over 9,000 s in the given rows (the longest, 12,345 s, in the last)."""
    def tamper(root: Path, layout: str) -> None:
        frame = read_data(root)
        for row in rows:
            frame = set_field(frame, layout, "meta", "duration_sec", row, 9500.0 + (row == rows[-1]) * 2845.0)
        rewrite_data(root, frame)
    return tamper


def damage_last_row_group(root: Path, layout: str) -> None:
    """Three row groups; the page header of the last one's largest column chunk overwritten. The
    footer is intact, so only reading that row group finds the damage."""
    path = day_dir(root) / "data.parquet"
    read_data(root).write_parquet(path, compression="zstd", row_group_size=16)
    meta = pq.read_metadata(path)
    assert meta.num_row_groups == 3
    group = meta.row_group(2)
    chunk = max((group.column(j) for j in range(group.num_columns)), key=lambda c: c.total_compressed_size)
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    raw = bytearray(path.read_bytes())
    raw[start:start + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))
    reseal(root)


def untouched(root: Path, layout: str) -> None:
    pass


@dataclass(frozen=True)
class Case:
    tamper: Callable[[Path, str], None]
    status: str  # the day's status, and the status of ``check``
    check: str | None = None  # the check that must fire
    message: str | dict[str, str] = ""  # in that check's errors or warnings; per layout when a dict; {layout} filled in
    also: tuple[tuple[str, str], ...] = ()  # (check, message) that must fire too
    failing: frozenset[str] | None = frozenset()  # every failing check (None: not certain, e.g. a random byte)


CASES = {
    "clean day": Case(untouched, "PASS"),
    "flipped byte": Case(flip_byte, "FAIL", "sha256", "the file was changed or damaged after export; re-export the day, replacing it (force)",
                         failing=None),
    "truncated data.parquet": Case(
        truncate_data, "FAIL", "parquet", "data.parquet footer cannot be read", also=(("manifest", "the file was replaced or truncated"),),
        failing=frozenset({"manifest", "sha256", "parquet"})),
    "wrong sha in manifest": Case(wrong_sha, "FAIL", "sha256", "manifest.json says 0000000000000000...", failing=frozenset({"sha256"})),
    "wrong row_count in manifest": Case(
        wrong_row_count, "FAIL", "row_count", f"manifest.json says row_count {ROWS - 1} but data.parquet holds {ROWS} rows",
        also=(("row_count", f"rows_by_hour sums to {ROWS}, not row_count {ROWS - 1}"),), failing=frozenset({"row_count"})),
    "wrong rows_by_hour in manifest": Case(
        wrong_rows_by_hour, "FAIL", "row_count", f"manifest.json rows_by_hour sums to {ROWS + 3}, not row_count {ROWS}",
        also=(("hours", "source_files says hour 03 gave 2 rows, rows_by_hour says 5"),), failing=frozenset({"row_count", "hours"})),
    "missing manifest": Case(remove_manifest, "FAIL", "files", "manifest.json is missing from", failing=frozenset({"files"})),
    "missing data file": Case(remove_data, "FAIL", "files", "data.parquet is missing from", failing=frozenset({"files"})),
    "parquet of another schema": Case(
        other_schema, "FAIL", "schema", "data.parquet schema differs from the declared {layout} schema: 1 unexpected column: surprise",
        failing=frozenset({"schema"})),
    "manifest declares another schema_fingerprint": Case(
        other_declared_fingerprint, "FAIL", "schema",
        "manifest.json declares schema_fingerprint sha256:0000000000000000..., the declared {layout} schema's is sha256:",
        failing=frozenset({"schema"})),
    "required column missing": Case(drop_symbol, "FAIL", "schema", "required columns missing: symbol", failing=frozenset({"schema"})),
    "damaged row group, footer intact": Case(
        damage_last_row_group, "FAIL", "parquet", "1 of 3 row groups cannot be read: row group 2 (", failing=frozenset({"parquet"})),
    "NULL meta": Case(
        null_meta, "FAIL", "null_ratios", {
            "flat": f"meta is NULL in {ROWS} of {ROWS} rows (all of its {META_FIELDS} meta__* columns are NULL): "
                    "it is never NULL in a valid export",
            "nested": f"meta is NULL in {ROWS} of {ROWS} rows (the meta struct column, or every one of its {META_FIELDS} fields, "
                      "is NULL): it is never NULL in a valid export",
        },
        also=(("content", "required field 'meta' holds no declared value"),), failing=frozenset({"null_ratios", "content"})),
    "many long durations (warning only)": Case(
        long_durations(range(5, 11)), "WARN", "content",
        f"meta.duration_sec > 9000 s in 6 of {ROWS} sampled rows (longest 12,345 s, row 10)"),
    # a few long cycles are the collector's normal (~2%): no warning that fires on every day
    "two long durations (usual)": Case(long_durations(range(9, 11)), "PASS"),
}


@pytest.mark.parametrize("via", ["api", "cli"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", list(CASES))
def test_tampered_day(name, layout, via, exports, tmp_path, capsys):
    case = CASES[name]
    root = Path(shutil.copytree(exports[layout], tmp_path / layout))
    case.tamper(root, layout)
    message = case.message[layout] if isinstance(case.message, dict) else case.message.format(layout=layout)
    expected = ([(case.check, message)] if case.check else []) + list(case.also)
    if via == "api":
        result = verify(root)
        assert result.status == case.status, result.summary()
        assert result.ok is (case.status != "FAIL")
        if case.failing is not None:
            assert failing(result) == case.failing, result.summary()
        if case.check:
            assert result.check(case.check).status == case.status
        for check, text in expected:
            assert text in messages(result, check), result.summary()
        for check in result.checks:  # a summary says what passed: none for a check that failed or did not run
            assert (check.summary != "") is (check.status in ("PASS", "WARN")), (check.name, check.status, check.summary)
    else:
        code = main(["verify", "--local", str(root), "--date", DAY.isoformat()])
        out, err = capsys.readouterr()
        assert code == (1 if case.status == "FAIL" else 0), out + err
        assert out.startswith(f"{DAY} {case.status}: ")
        lines = out.splitlines()
        for check, text in expected:
            kind = "WARN" if case.status == "WARN" else "FAIL"
            assert any(line.startswith(f"  {kind} {check}: ") and text in line for line in lines), out
        assert not (root / "verify_report.md").exists()  # no report unless --report


def test_checks_that_need_the_file_say_why_they_skipped(flat_root):
    path = day_dir(flat_root) / "data.parquet"
    path.write_bytes(path.read_bytes()[:1000])
    result = verify(flat_root)
    assert result.check("schema").status == "SKIP"
    assert result.check("schema").skipped == (
        "data.parquet is missing or its footer is unreadable (see checks 'files' and 'parquet')")
    assert result.check("null_ratios").skipped == "data.parquet rows could not be read (see check 'parquet')"
    path.unlink()
    result = verify(flat_root)
    assert result.check("sha256").skipped == "data.parquet is missing or empty (see check 'files')"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_missing_required_column_is_reported_once(exports, tmp_path, layout):
    """The schema check reports it; the row checks that need the column skip and say so."""
    root = Path(shutil.copytree(exports[layout], tmp_path / layout))
    drop_symbol(root, layout)
    result = verify(root)
    assert failing(result) == {"schema"}
    assert result.check("schema").errors[0] == "required columns missing: symbol"
    for name in ("null_ratios", "content"):
        assert result.check(name).status == "SKIP"
        assert result.check(name).skipped == "symbol is missing from data.parquet (see check 'schema')"
        assert result.check(name).errors == []


def test_missing_futures_contract_column_is_reported_once(flat_root):
    rewrite_data(flat_root, read_data(flat_root).drop("futures_raw__contract"))
    result = verify(flat_root)
    assert failing(result) == {"schema"}
    assert "1 column missing: futures_raw.contract" in messages(result, "schema")
    assert result.check("futures").skipped == "futures_raw.contract is missing from data.parquet (see check 'schema')"


def test_empty_data_file_fails_files(flat_root):
    (day_dir(flat_root) / "data.parquet").write_bytes(b"")
    result = verify(flat_root)
    assert "data.parquet is empty (0 bytes)" in messages(result, "files")
    assert result.check("sha256").status == "SKIP"


def test_failed_check_has_no_summary_in_json(flat_root, archive, capsys):
    rewrite_data(flat_root, set_field(read_data(flat_root), "flat", "spot_raw", "mid", 10, 1.0))
    assert main(["verify", "--local", str(flat_root), "--date", DAY.isoformat(), "--json", "--against-archive", str(archive)]) == 1
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["days"][0]["checks"]}
    assert checks["archive"]["status"] == "FAIL" and checks["archive"]["summary"] == ""
    assert checks["sha256"]["status"] == "PASS" and checks["sha256"]["summary"].startswith("sha256 ")


# -- the manifest ---------------------------------------------------------------------------------
def test_inconsistent_hours_completeness(flat_root):
    edit_manifest(flat_root, missing_hours=["05"], is_partial=False)
    result = verify(flat_root)
    assert failing(result) == {"hours"}
    text = messages(result, "hours")
    assert "hours_found 24 + 1 missing_hours is not hours_expected 24" in text
    assert "is_partial is false but the manifest records 1 missing hour and 0 bad lines" in text
    assert "rows_by_hour lists hours" in text


def test_partial_day_is_a_warning(archive, tmp_path):
    copy = Path(shutil.copytree(archive, tmp_path / "archive"))
    (copy / DAY.strftime("%Y%m%d") / "05.jsonl.gz").unlink()
    export_day(DAY, str(copy), str(tmp_path / "out"), allow_incomplete=True, today=AFTER)
    result = verify(tmp_path / "out")
    assert result.status == "WARN" and result.ok
    assert "partial day: hour 05 is missing" in messages(result, "hours")
    assert "05 (missing)" in render_report([result])


def test_missing_manifest(flat_root):
    (day_dir(flat_root) / "manifest.json").unlink()
    result = verify(flat_root)
    assert result.status == "FAIL"
    assert "manifest.json is missing" in messages(result, "files")
    assert "the day is not published" in messages(result, "files")
    assert result.check("row_count").status == "SKIP"
    assert "manifest.json is missing or unusable" in result.check("row_count").skipped
    # the file itself is still examined, its layout read from the columns
    assert result.layout == "flat"
    assert result.check("schema").status == "PASS"
    assert result.check("sha256").figures["sha256"]


def test_manifest_not_json(flat_root):
    (day_dir(flat_root) / "manifest.json").write_text("{not json")
    result = verify(flat_root)
    assert "manifest.json is not valid JSON" in messages(result, "manifest")


def test_manifest_without_required_fields(flat_root):
    manifest = read_manifest(flat_root)
    del manifest["parquet_sha256"], manifest["rows_by_hour"]
    write_manifest(flat_root, manifest)
    result = verify(flat_root)
    text = messages(result, "manifest")
    assert "manifest.json lacks required fields" in text
    assert "parquet_sha256" in text and "rows_by_hour" in text


@pytest.mark.parametrize("raw, message", [
    (b"{not json", "manifest.json is not valid JSON (Expecting property name"),
    (b"\xff{}", "manifest.json is not valid JSON ("),
    (b"[1, 2]", "manifest.json is not a JSON object"),
    (b"{}", "manifest.json lacks required fields: date_utc, created_ts_utc,"),
])
def test_manifest_that_cannot_be_parsed_is_a_manifest_error(raw, message):
    with pytest.raises(ManifestError) as caught:
        Manifest.from_json(raw)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_mistyped_manifest_is_a_manifest_error(flat_root):
    data = {**read_manifest(flat_root), "row_count": "48", "day_over_at_export": 1}
    with pytest.raises(ManifestError, match=r"^manifest.json has fields of the wrong type or negative counts: row_count \('48'\), day_over_at_export \(1\)$"):
        Manifest.from_dict(data)
    write_manifest(flat_root, data)
    assert "manifest.json has fields of the wrong type or negative counts: row_count ('48')" in messages(verify(flat_root), "manifest")


def test_manifest_of_another_day(flat_root):
    edit_manifest(flat_root, date_utc="2026-01-14")
    result = verify(flat_root)
    assert "is for date_utc 2026-01-14, but the folder is 2026-01-15" in messages(result, "manifest")


def test_manifest_not_a_json_object(flat_root):
    (day_dir(flat_root) / "manifest.json").write_text("[1, 2]")
    result = verify(flat_root)
    assert "manifest.json is not a JSON object; re-export the day, replacing it (force)" in messages(result, "manifest")


def test_export_before_the_day_was_over_is_a_warning(flat_root):
    edit_manifest(flat_root, day_over_at_export=False, is_partial=True)
    result = verify(flat_root)
    assert result.status == "WARN", result.summary()
    assert "exported before the UTC day was over (day_over_at_export false)" in messages(result, "hours")
    edit_manifest(flat_root, is_partial=False)
    text = messages(verify(flat_root), "hours")
    assert "is_partial is false but the manifest records 0 missing hours and 0 bad lines, and an export before the day was over" in text


def test_nothing_published_for_the_day(exports):
    result = verify_day("2026-01-14", str(exports["flat"]))
    assert result.status == "FAIL"
    assert "nothing published" in messages(result, "files") and "does not exist" in messages(result, "files")


# -- schema and columns -------------------------------------------------------------------------
def test_parquet_of_another_schema_names_the_columns(flat_root):
    frame = read_data(flat_root)
    frame = frame.drop("scores__final").with_columns(
        pl.col("meta__universe_page").cast(pl.String), pl.lit(1).alias("surprise"))
    rewrite_data(flat_root, frame)
    result = verify(flat_root)
    assert failing(result) == {"schema"}
    text = messages(result, "schema")
    assert "differs from the declared flat schema" in text
    assert "1 column missing: scores.final" in text
    assert "1 unexpected column: surprise" in text
    assert "meta.universe_page is String, declared Int64" in text
    assert result.check("schema").figures["schema_fingerprint"] != result.check("schema").figures["declared_fingerprint"]


def test_nested_file_under_a_flat_manifest(flat_root, exports):
    nested = (day_dir(exports["nested"]) / "data.parquet").read_bytes()
    (day_dir(flat_root) / "data.parquet").write_bytes(nested)
    edit_manifest(flat_root, parquet_sha256=hashlib.sha256(nested).hexdigest(), parquet_size_bytes=len(nested))
    result = verify(flat_root)
    assert "data.parquet is in the nested layout but the manifest says flat" in messages(result, "schema")


def test_dropped_column_present(flat_root):
    rewrite_data(flat_root, read_data(flat_root).with_columns(pl.lit(None, pl.String).alias("labels")))
    result = verify(flat_root)
    assert "columns that are always dropped are present: labels" in messages(result, "dropped_columns")


def test_count_map_that_is_not_a_map(flat_root):
    column = "twitter_sentiment_windows__last_cycle__tag_counts"
    pairs = pl.List(pl.Struct({"key": pl.String, "value": pl.Int64}))  # what a writer unaware of MAP makes
    rewrite_data(flat_root, read_data(flat_root).with_columns(pl.col(column).cast(pairs)))
    result = verify(flat_root)
    text = messages(result, "count_maps")
    assert "count maps must be Parquet MAP columns: twitter_sentiment_windows.last_cycle.tag_counts is List(Struct(" in text


# -- contents -----------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", LAYOUTS)
def test_null_block_is_reported_once(exports, tmp_path, layout):
    root = Path(shutil.copytree(exports[layout], tmp_path / layout))
    null_meta(root, layout)
    result = verify(root)
    assert result.figures["required_null_rows"]["meta"] == ROWS
    # the meta fields are reported once, as the NULL block, not again as all-NULL columns
    assert not any(c.startswith("meta.") for c in result.figures["all_null_columns"])
    assert ("meta__*" in messages(result, "null_ratios")) is (layout == "flat")


def test_bad_row_contents(flat_root):
    frame = read_data(flat_root).with_row_index("i").with_columns(
        pl.when(pl.col("i") == 3).then(pl.lit(-2.5)).otherwise(pl.col("derived__spread_bps")).alias("derived__spread_bps"),
        pl.when(pl.col("i") == 5).then(pl.lit(" ")).otherwise(pl.col("symbol")).alias("symbol"),
        pl.when(pl.col("i") == 7).then(None).otherwise(pl.col("meta__added_ts")).alias("meta__added_ts"),  # in _extra
        *(pl.when(pl.col("i") == 9).then(None).otherwise(pl.col(f"spot_raw__{k}")).alias(f"spot_raw__{k}")
          for k in ("mid", "bid", "ask", "last")),
    ).drop("i")
    rewrite_data(flat_root, frame)
    result = verify(flat_root)
    assert failing(result) == {"content"}
    check = result.check("content")
    # the export refuses a blank symbol (normalize.required_problem): such a row is an error ...
    assert check.errors == [f"required field 'symbol' is blank (' ') in 1 of {ROWS} sampled rows (row 5: ' '): "
                            "the export never publishes such a row; re-export the day, replacing it (force)"]
    # ... and exports the rest as archived: warnings
    warnings = "\n".join(check.warnings)
    assert f"derived.spread_bps is negative (a spread cannot be; exported as archived) in 1 of {ROWS} sampled rows (row 3: -2.5)" in warnings
    assert "meta.added_ts is missing or not an ISO 8601 timestamp in 1 of" in warnings and "row 7: None" in warnings
    assert "no spot price (spot_raw has no mid, bid, ask or last)" in warnings and "row 9" in warnings


def test_futures_block_without_contract_or_with_infinity(flat_root):
    frame = read_data(flat_root).with_row_index("i")
    with_futures = frame.filter(pl.col("futures_raw__contract").is_not_null())["i"].to_list()
    first, second = with_futures[:2]
    frame = frame.with_columns(
        pl.when(pl.col("i") == first).then(None).otherwise(pl.col("futures_raw__contract")).alias("futures_raw__contract"),
        pl.when(pl.col("i") == second).then(float("inf")).otherwise(pl.col("futures_raw__funding_now")).alias("futures_raw__funding_now"),
    ).drop("i")
    rewrite_data(flat_root, frame)
    result = verify(flat_root)
    # the export keeps both as archived: a missing contract is a warning, an infinity a legal value
    assert result.status == "WARN" and result.check("futures").status == "WARN", result.summary()
    assert result.check("futures").warnings == [
        f"futures_raw is present but futures_raw.contract is empty in 1 of {len(with_futures)} rows (rows {first}): "
        "exported as archived; check the collector"]
    assert result.figures["futures_share"] == round(len(with_futures) / ROWS, 4)
    assert result.figures["futures_without_contract"] == 1


# -- against the archive ------------------------------------------------------------------------
@pytest.mark.parametrize("layout", LAYOUTS)
def test_against_archive_passes_on_a_clean_export(exports, archive, layout):
    result = verify(exports[layout], against_archive=str(archive))
    assert result.status == "PASS", result.summary()
    check = result.check("archive")
    assert check.status == "PASS"
    assert check.figures["archive_rows"] == ROWS and check.figures["rows_compared"] == ROWS
    assert check.figures["rows_differing"] == 0
    assert check.figures["archive_rows_by_hour"] == result.figures["rows_by_hour"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_altered_row_is_caught_only_by_the_cross_check(exports, archive, tmp_path, layout):
    root = Path(shutil.copytree(exports[layout], tmp_path / layout))
    mid = read_data(root).row(10, named=True)
    mid = mid["spot_raw__mid"] if layout == "flat" else mid["spot_raw"]["mid"]
    rewrite_data(root, set_field(read_data(root), layout, "spot_raw", "mid", 10, mid * 2))
    assert verify(root).status == "PASS"  # self-consistent: sha, counts, schema all agree
    result = verify(root, against_archive=str(archive))
    assert failing(result) == {"archive"}
    text = messages(result, "archive")
    assert f"1 of {ROWS} sampled rows differ from their archive entries" in text
    assert f"row 10 (20260115/05.jsonl.gz line 1) differs at spot_raw.mid: parquet {mid * 2!r}, archive {mid!r}" in text


def test_cross_check_does_not_share_the_exporters_normalise(archive, tmp_path, monkeypatch):
    """A normalise bug that loses a value: the export and the verifier's read_hour both have it, so
    only a comparison with the source line as json.loads reads it can see the loss."""
    normalize = source_module.normalize

    def losing(entry, *args, **kwargs):
        entry["spot_raw"].pop("mid", None)
        return normalize(entry, *args, **kwargs)

    monkeypatch.setattr(source_module, "normalize", losing)
    out = tmp_path / "out"
    export_day(DAY, str(archive), str(out), today=AFTER)
    result = verify(out, against_archive=str(archive))
    assert failing(result) == {"archive"}
    check = result.check("archive")
    assert check.figures["archive_rows_by_hour"] == result.figures["rows_by_hour"]  # the counts agree
    assert check.figures["rows_differing"] == ROWS
    assert "row 0 (20260115/00.jsonl.gz line 1) lacks spot_raw.mid (archive: " in messages(result, "archive")


def test_cross_check_sees_an_integer_a_float64_would_round(archive, tmp_path):
    """An integer beyond 2**53 in a float field is exported exact, in _extra: the cross-check passes.
    An export that rounded it into the column is caught: the comparison widens no such integer."""
    big = 2**64 + 1
    copy, out = export_copy(archive, tmp_path, 5, lambda entries: entries[0]["spot_raw"].update(mid=big))
    assert verify(out, against_archive=str(copy), sample_size=ROWS).status == "PASS"
    frame = read_data(out)  # row 10 is 05.jsonl.gz line 1: round the integer into its column, as a float
    assert json.loads(frame["_extra"][10]) == {"spot_raw": {"mid": big}} and frame["spot_raw__mid"][10] is None
    frame = set_field(frame, "flat", "spot_raw", "mid", 10, float(big))
    rewrite_data(out, frame.with_columns(pl.when(pl.int_range(pl.len()) == 10).then(None).otherwise(pl.col("_extra")).alias("_extra")))
    result = verify(out, against_archive=str(copy), sample_size=ROWS)
    assert failing(result) == {"archive"}
    assert f"row 10 (20260115/05.jsonl.gz line 1) differs at spot_raw.mid: parquet {float(big)!r}, archive {big!r}" in messages(result, "archive")


def test_cross_check_reads_a_line_with_a_byte_order_mark_as_the_exporter_does(archive, tmp_path):
    copy = Path(shutil.copytree(archive, tmp_path / "archive"))
    hour = copy / "20260115" / "04.jsonl.gz"
    lines = gzip.decompress(hour.read_bytes()).split(b"\n")
    hour.write_bytes(gzip.compress(b"\n".join(["\ufeff".encode() + line if line else line for line in lines])))
    out = tmp_path / "out"
    export_day(DAY, str(copy), str(out), today=AFTER)
    result = verify(out, against_archive=str(copy), sample_size=ROWS)
    assert result.check("archive").status == "PASS", messages(result, "archive")


def test_cross_check_counts_rows_per_hour(flat_root, archive, tmp_path):
    copy = Path(shutil.copytree(archive, tmp_path / "archive"))
    rewrite_hour(copy, 7, lambda entries: entries.pop())
    result = verify(flat_root, against_archive=str(copy))
    text = messages(result, "archive")
    assert f"the archive gives {ROWS - 1} rows for 2026-01-15 but data.parquet holds {ROWS}" in text
    assert "hour 07: archive 1, manifest 2" in text


def test_cross_check_merges_extra_back(archive, tmp_path):
    def odd_entry(entries):
        entries[1]["surprise"] = {"nested": [1, 2]}
        entries[1]["meta"]["source"] = 42  # mistyped: goes to _extra
        entries[1]["diag"] = {}  # empty object: NULL
        entries[1]["norm"] = {}  # dropped when empty

    copy, out = export_copy(archive, tmp_path, 2, odd_entry)
    row = read_data(out).row(5, named=True)  # hour 02, second line
    assert json.loads(row["_extra"]) == {"surprise": {"nested": [1, 2]}, "meta": {"source": 42}}
    result = verify(out, against_archive=str(copy))
    assert result.check("archive").status == "PASS", messages(result, "archive")


def test_cross_check_with_a_missing_archive_day(exports, tmp_path):
    result = verify(exports["flat"], against_archive=str(tmp_path / "nowhere"))
    assert "cannot cross-check: no archive folder for 2026-01-15" in messages(result, "archive")


# -- the command --------------------------------------------------------------------------------
def test_cli_pass_writes_the_report_only_where_asked(flat_root, tmp_path, capsys):
    assert main(["verify", "--local", str(flat_root), "--date", "2026-01-15"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2026-01-15 PASS: 48 rows, flat") and "report:" not in out
    assert sorted(p.name for p in flat_root.iterdir()) == ["2026-01-15"]  # the dataset root holds only day folders
    path = tmp_path / "reports" / "verify.md"  # its folder is created
    assert main(["verify", "--local", str(flat_root), "--date", "2026-01-15", "--report", str(path)]) == 0
    assert f"report: {path}" in capsys.readouterr().out
    assert sorted(p.name for p in flat_root.iterdir()) == ["2026-01-15"]
    report = path.read_text()
    assert "| 2026-01-15 | **PASS** | 48 |" in report
    assert "| sha256: SHA-256 of data.parquet equals parquet_sha256 | PASS |" in report
    assert "Rows per hour:" in report and "00 " + "█" * 40 + " 2" in report


def test_cli_accepts_the_day_folder_as_in_the_guide(flat_root, capsys):
    assert main(["verify", "--local", str(day_dir(flat_root))]) == 0
    assert "2026-01-15 PASS" in capsys.readouterr().out
    assert not (flat_root / "verify_report.md").exists()


def test_cli_fail_exits_1_with_reasons(flat_root, capsys):
    edit_manifest(flat_root, parquet_sha256="f" * 64)
    report = flat_root / "custom.md"
    assert main(["verify", "--local", str(flat_root), "--date", "2026-01-15", "--report", str(report)]) == 1
    out = capsys.readouterr().out
    assert "2026-01-15 FAIL" in out and "  FAIL sha256: data.parquet sha256 is" in out
    assert "| 2026-01-15 | **FAIL** |" in report.read_text()


def test_cli_json(flat_root, archive, capsys):
    code = main(["verify", "--local", str(flat_root), "--date", "2026-01-15", "--json", "--against-archive", str(archive)])
    assert code == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["passed"] == 1 and data["failed"] == 0
    day = data["days"][0]
    assert day["status"] == "PASS" and day["date"] == "2026-01-15"
    assert [c["name"] for c in day["checks"]] == [spec.name for spec in CHECKS] + ["archive"]
    assert day["figures"]["parquet_rows"] == ROWS
    assert "2026-01-15 PASS" in captured.err  # the human summary moves to stderr


def test_cli_several_dates_one_failing(flat_root, tmp_path, capsys):
    path = tmp_path / "report.md"
    code = main(["verify", "--local", str(flat_root), "--from-date", "2026-01-14", "--to-date", "2026-01-15", "--report", str(path)])
    assert code == 1
    out = capsys.readouterr().out
    assert "2026-01-14 FAIL" in out and "2026-01-15 PASS" in out and "1 of 2 days passed" in out
    report = path.read_text()
    assert "## 2026-01-14: FAIL" in report and "## 2026-01-15: PASS" in report


def test_cli_any_fsspec_location(exports, tmp_path, capsys):
    fs = fsspec.filesystem("memory")
    root = f"/verify-{uuid.uuid4().hex[:8]}"
    try:
        for name in ("data.parquet", "manifest.json"):
            fs.pipe_file(f"{root}/2026-01-15/{name}", (day_dir(exports["nested"]) / name).read_bytes())
        report = tmp_path / "report.md"
        code = main(["verify", "--path", f"memory://{root}", "--date", "2026-01-15", "--report", str(report)])
        assert code == 0
        assert "2026-01-15 PASS: 48 rows, nested" in capsys.readouterr().out
        assert "memory://" in report.read_text()
    finally:
        fs.rm(root, recursive=True)


USAGE_HINT = "check the path: give the dataset root (the folder holding the YYYY-MM-DD day folders) or one day folder"


@pytest.mark.parametrize("argv, message", [
    (["verify", "--local", "{root}", "--date", "2026-02-30"], "error: invalid date '2026-02-30': no such calendar day"),
    (["verify", "--local", "{root}", "--from-date", "2026-01-15"], "error: --from-date and --to-date go together"),
    (["verify", "--local", "{root}/nowhere", "--date", "2026-01-15"], f"error: --local {{root}}/nowhere does not exist; {USAGE_HINT}"),
    (["verify", "--path", "{root}/nowhere", "--date", "2026-01-15"], f"error: --path {{root}}/nowhere does not exist; {USAGE_HINT}"),
    (["verify", "--path", "file://{root}/nowhere", "--date", "2026-01-15"],
     f"error: --path file://{{root}}/nowhere does not exist; {USAGE_HINT}"),
    (["verify", "--local", "{root}/nowhere/2026-01-15"],
     f"error: --local {{root}}/nowhere/2026-01-15: its dataset root {{root}}/nowhere does not exist; {USAGE_HINT}"),
    (["verify", "--local", "{root}/2026-01-15/manifest.json", "--date", "2026-01-15"],
     f"error: --local {{root}}/2026-01-15/manifest.json is not a directory; {USAGE_HINT}"),
    (["verify", "--local", "{root}/2026-01-15", "--date", "2026-01-14"],
     "error: {root}/2026-01-15 is the day folder of 2026-01-15; to verify other dates, give its parent (the dataset root)"),
    (["verify", "--local", "{root}", "--date", "2026-01-15", "--sample-size", "0"], "error: --sample-size must be at least 1, not 0"),
])
def test_cli_usage_errors_exit_2(flat_root, capsys, argv, message):
    assert main([a.replace("{root}", str(flat_root)) for a in argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == message.replace("{root}", str(flat_root)) + "\n"  # one line
    assert not (flat_root / "nowhere").exists() and not (flat_root / "verify_report.md").exists()


def test_cli_missing_root_creates_nothing(tmp_path, capsys):
    """The audit's case: a missing --path used to fail the day and create the folder for its report."""
    root = tmp_path / "nonexistent"
    assert main(["verify", "--path", str(root), "--date", "2026-01-15"]) == 2
    assert capsys.readouterr().err.startswith(f"error: --path {root} does not exist;")
    assert not root.exists()


def test_cli_unpublished_day_folder_fails_the_day(flat_root, tmp_path, capsys):
    folder = flat_root / "2026-01-14"
    assert main(["verify", "--local", str(folder), "--report", str(tmp_path / "report.md")]) == 1
    out = capsys.readouterr().out
    assert out.startswith("2026-01-14 FAIL") and f"nothing published: {folder} does not exist" in out
    assert not folder.exists() and "## 2026-01-14: FAIL" in (tmp_path / "report.md").read_text()


def test_split_day_folder_is_the_one_rule():
    assert split_day_folder("/data/tier3_daily/2026-01-15/") == ("/data/tier3_daily", DAY)
    assert split_day_folder("s3://bucket/tier3/daily/2026-01-15") == ("s3://bucket/tier3/daily", DAY)
    assert split_day_folder("2026-01-15") == (".", DAY)
    assert split_day_folder("/2026-01-15") == ("/", DAY)
    assert split_day_folder("/data/tier3_daily") == ("/data/tier3_daily", None)
    assert split_day_folder("/data/2026-13-01") == ("/data/2026-13-01", None)  # not a date: a dataset root


def test_api_day_folder_of_another_date(exports):
    with pytest.raises(VerifyError, match="is the day folder of 2026-01-15, not 2026-01-14: give the dataset root"):
        verify_day("2026-01-14", str(day_dir(exports["flat"])))


def test_cli_without_a_location_uses_the_default_root(tmp_path, monkeypatch, capsys):
    """No root given: the daily default, as export and status have it (issue 22: one spelling, the
    same defaults); here it does not exist: cannot check, exit 2."""
    monkeypatch.chdir(tmp_path)
    assert main(["verify", "--date", "2026-01-15"]) == 2
    assert capsys.readouterr().err.startswith("error: --out-dir output/tier3_daily does not exist;")


def test_cli_r2_without_settings_is_one_error_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("R2_ENDPOINT", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_BUCKET"):
        monkeypatch.delenv(var, raising=False)
    assert main(["verify", "--r2", "--date", "2026-01-15"]) == 2  # cannot check (issue 22's exit codes)
    err = capsys.readouterr().err
    assert err.startswith("error: R2 settings missing") and err.count("\n") == 1


# -- R2 (a moto S3 server on 127.0.0.1) ---------------------------------------------------------
def test_cli_r2_verifies_the_bucket(exports, s3, tmp_path, capsys):
    """``verify --r2`` against the run's moto server (conftest's ``s3``: R2 settings in the environment)."""
    from s3fs import S3FileSystem

    folder = f"{BUCKET}/tier3/daily/{DAY}"
    for name in ("data.parquet", "manifest.json"):
        s3.pipe_file(f"{folder}/{name}", (day_dir(exports["flat"]) / name).read_bytes())

    assert main(["verify", "--r2", "--date", DAY.isoformat()]) == 0
    out = capsys.readouterr().out
    assert "2026-01-15 PASS: 48 rows, flat" in out and f"12/12 checks passed (s3://{folder})" in out

    manifest = json.loads(s3.cat_file(f"{folder}/manifest.json"))
    s3.pipe_file(f"{folder}/manifest.json", json.dumps({**manifest, "parquet_sha256": "a" * 64}).encode())
    S3FileSystem.clear_instance_cache()
    assert main(["verify", "--r2", "--date", DAY.isoformat(), "--report", str(tmp_path / "r2.md")]) == 1
    captured = capsys.readouterr()
    assert "FAIL sha256: data.parquet sha256 is" in captured.out
    assert SECRET not in captured.out + captured.err + (tmp_path / "r2.md").read_text()
