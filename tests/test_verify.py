"""The verifier against real exports: a clean day passes, and each tampering makes its check fire."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import uuid
from datetime import date
from pathlib import Path

import fsspec
import polars as pl
import pytest

from instrumetriq_polars import VerifyResult, export_day, verify_day
from instrumetriq_polars.cli import main
from instrumetriq_polars.schema import LAYOUTS
from instrumetriq_polars.synthetic import write_archive_day
from instrumetriq_polars.verify import CHECKS, render_report

DAY = date(2026, 1, 15)
AFTER = date(2026, 1, 16)  # "today" for the exports: DAY is a finished day whatever the clock says
#: With this seed none of the day's 48 entries ran longer than 9000 s, so the clean day is a PASS
#: (the generator makes ~2% long cycles; the default seed 7 has one).
CLEAN_SEED = 4
ROWS = 48


# -- fixtures and helpers -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("verify_archive")
    write_archive_day(root, DAY, entries_per_hour=2, seed=CLEAN_SEED)
    return root


@pytest.fixture(scope="module")
def exports(archive, tmp_path_factory) -> dict[str, Path]:
    """One clean export root per layout (never tampered with: tests copy them)."""
    roots = {}
    for layout in LAYOUTS:
        root = tmp_path_factory.mktemp(f"verify_export_{layout}")
        export_day(DAY, str(archive), str(root), layout=layout, today=AFTER)
        roots[layout] = root
    return roots


@pytest.fixture
def flat_root(exports, tmp_path) -> Path:
    return Path(shutil.copytree(exports["flat"], tmp_path / "flat"))


@pytest.fixture
def nested_root(exports, tmp_path) -> Path:
    return Path(shutil.copytree(exports["nested"], tmp_path / "nested"))


def day_dir(root: Path) -> Path:
    return root / DAY.isoformat()


def read_manifest(root: Path) -> dict:
    return json.loads((day_dir(root) / "manifest.json").read_text())


def write_manifest(root: Path, data: dict) -> None:
    (day_dir(root) / "manifest.json").write_text(json.dumps(data, indent=2))


def edit_manifest(root: Path, **changes) -> None:
    write_manifest(root, {**read_manifest(root), **changes})


def read_data(root: Path) -> pl.DataFrame:
    return pl.read_parquet(day_dir(root) / "data.parquet")


def rewrite_data(root: Path, frame: pl.DataFrame) -> None:
    """Replace data.parquet and make the manifest's sha256 and size agree, so that only the checks
    looking inside the file can notice."""
    path = day_dir(root) / "data.parquet"
    frame.write_parquet(path, compression="zstd")
    raw = path.read_bytes()
    edit_manifest(root, parquet_sha256=hashlib.sha256(raw).hexdigest(), parquet_size_bytes=len(raw))


def verify(root: Path, **options) -> VerifyResult:
    return verify_day(DAY, str(root), **options)


def failing(result: VerifyResult) -> set[str]:
    return {c.name for c in result.checks if c.status == "FAIL"}


def messages(result: VerifyResult, name: str) -> str:
    check = result.check(name)
    return "\n".join(check.errors + check.warnings)


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


# -- damaged files ------------------------------------------------------------------------------
def test_flipped_byte_fails_the_sha256_check(flat_root):
    path = day_dir(flat_root) / "data.parquet"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    result = verify(flat_root)
    assert result.status == "FAIL"
    assert "sha256" in failing(result)
    text = messages(result, "sha256")
    assert "manifest.json says" in text and "changed or damaged after export" in text
    assert "--force" in text


def test_truncated_parquet_fails_size_sha_and_readability(flat_root):
    path = day_dir(flat_root) / "data.parquet"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    result = verify(flat_root)
    assert {"manifest", "sha256", "parquet"} <= failing(result)
    assert "footer cannot be read" in messages(result, "parquet")
    assert "truncated or not Parquet" in messages(result, "parquet")
    assert f"parquet_size_bytes {len(raw):,}" in messages(result, "manifest")
    # the checks that need the file's contents say why they did not run
    assert result.check("schema").status == "SKIP"
    assert "footer is unreadable" in result.check("schema").skipped
    assert result.check("null_ratios").status == "SKIP"


def test_empty_data_file_fails_files(flat_root):
    (day_dir(flat_root) / "data.parquet").write_bytes(b"")
    result = verify(flat_root)
    assert "data.parquet is empty (0 bytes)" in messages(result, "files")
    assert result.check("sha256").status == "SKIP"


def test_wrong_sha_in_manifest_fails_only_the_sha256_check(flat_root):
    edit_manifest(flat_root, parquet_sha256="0" * 64)
    result = verify(flat_root)
    assert failing(result) == {"sha256"}
    assert "manifest.json says 0000000000000000..." in messages(result, "sha256")


def test_wrong_row_count_in_manifest(flat_root):
    edit_manifest(flat_root, row_count=ROWS - 1)
    result = verify(flat_root)
    assert failing(result) == {"row_count"}
    text = messages(result, "row_count")
    assert f"says row_count {ROWS - 1} but data.parquet holds {ROWS} rows" in text
    assert f"rows_by_hour sums to {ROWS}, not row_count {ROWS - 1}" in text


def test_wrong_rows_by_hour_in_manifest(flat_root):
    manifest = read_manifest(flat_root)
    manifest["rows_by_hour"]["03"] += 3
    write_manifest(flat_root, manifest)
    result = verify(flat_root)
    assert "row_count" in failing(result)
    assert f"rows_by_hour sums to {ROWS + 3}, not row_count {ROWS}" in messages(result, "row_count")
    assert "source_files says hour 03 gave 2 rows, rows_by_hour says 5" in messages(result, "hours")


def test_inconsistent_hours_completeness(flat_root):
    edit_manifest(flat_root, missing_hours=[5], is_partial=False)
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


def test_manifest_of_another_day(flat_root):
    edit_manifest(flat_root, date_utc="2026-01-14")
    result = verify(flat_root)
    assert "is for date_utc 2026-01-14, but the folder is 2026-01-15" in messages(result, "manifest")


def test_missing_data_file(flat_root):
    (day_dir(flat_root) / "data.parquet").unlink()
    result = verify(flat_root)
    assert "data.parquet is missing" in messages(result, "files")
    assert "data.parquet is missing or empty" in result.check("sha256").skipped


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
def test_null_meta_flat(flat_root):
    frame = read_data(flat_root)
    meta = [c for c in frame.columns if c.startswith("meta__")]
    rewrite_data(flat_root, frame.with_columns(pl.lit(None, frame.schema[c]).alias(c) for c in meta))
    result = verify(flat_root)
    assert "null_ratios" in failing(result)
    text = messages(result, "null_ratios")
    assert f"meta is NULL in {ROWS} of {ROWS} rows (all of its {len(meta)} meta__* columns are NULL)" in text
    assert "never NULL in a valid export" in text
    assert "meta.added_ts is missing or not an ISO 8601 timestamp" in messages(result, "content")
    # the meta__* columns are reported once, as the NULL block, not again as all-NULL columns
    assert not any(c.startswith("meta.") for c in result.figures["all_null_columns"])


def test_null_meta_nested(nested_root):
    frame = read_data(nested_root)
    rewrite_data(nested_root, frame.with_columns(pl.lit(None, frame.schema["meta"]).alias("meta")))
    result = verify(nested_root)
    assert f"meta is NULL in {ROWS} of {ROWS} rows" in messages(result, "null_ratios")


def test_column_null_in_every_row_is_a_warning(flat_root):
    rewrite_data(flat_root, read_data(flat_root).with_columns(pl.lit(None, pl.Float64).alias("scores__final")))
    result = verify(flat_root)
    assert result.status == "WARN" and result.ok
    assert "1 column is NULL in every row: scores.final" in messages(result, "null_ratios")
    assert result.figures["null_ratios_top"]["scores.final"] == 1.0


def test_bad_row_contents(flat_root):
    frame = read_data(flat_root).with_row_index("i").with_columns(
        pl.when(pl.col("i") == 3).then(pl.lit(-2.5)).otherwise(pl.col("derived__spread_bps")).alias("derived__spread_bps"),
        pl.when(pl.col("i") == 5).then(pl.lit(" ")).otherwise(pl.col("symbol")).alias("symbol"),
        pl.when(pl.col("i") == 7).then(pl.lit("yesterday-ish")).otherwise(pl.col("meta__added_ts")).alias("meta__added_ts"),
        *(pl.when(pl.col("i") == 9).then(None).otherwise(pl.col(f"spot_raw__{k}")).alias(f"spot_raw__{k}")
          for k in ("mid", "bid", "ask", "last")),
    ).drop("i")
    rewrite_data(flat_root, frame)
    result = verify(flat_root)
    assert failing(result) == {"content"}
    text = messages(result, "content")
    assert f"derived.spread_bps is negative (a spread cannot be) in 1 of {ROWS} sampled rows (row 3: -2.5)" in text
    assert "symbol is empty in 1 of" in text and "row 5: ' '" in text
    assert "meta.added_ts is missing or not an ISO 8601 timestamp in 1 of" in text and "row 7: 'yesterday-ish'" in text
    assert "no spot data (spot_raw has no mid, bid, ask or last)" in text and "row 9" in text


def test_long_duration_is_a_warning_only(archive, tmp_path, capsys):
    def long_cycle(entries):
        entries[0]["meta"]["duration_sec"] = 12345.0

    _, out = export_copy(archive, tmp_path, 5, long_cycle)
    result = verify(out)
    assert result.status == "WARN" and result.ok and result.errors == []
    text = messages(result, "content")
    assert f"meta.duration_sec > 9000 s in 1 of {ROWS} sampled rows (longest 12,345 s" in text
    assert "not critical" in text
    assert result.figures["long_duration_rows"] == 1
    assert main(["verify", "--local", str(out), "--date", DAY.isoformat()]) == 0
    assert "2026-01-15 WARN" in capsys.readouterr().out


def test_futures_block_validity(flat_root):
    frame = read_data(flat_root).with_row_index("i")
    with_futures = frame.filter(pl.col("futures_raw__contract").is_not_null())["i"].to_list()
    first, second = with_futures[:2]
    frame = frame.with_columns(
        pl.when(pl.col("i") == first).then(None).otherwise(pl.col("futures_raw__contract")).alias("futures_raw__contract"),
        pl.when(pl.col("i") == second).then(float("inf")).otherwise(pl.col("futures_raw__funding_now")).alias("futures_raw__funding_now"),
    ).drop("i")
    rewrite_data(flat_root, frame)
    result = verify(flat_root)
    assert failing(result) == {"futures"}
    text = messages(result, "futures")
    assert f"futures_raw.contract is empty in 1 of {len(with_futures)} rows (rows {first})" in text
    assert f"futures_raw.funding_now is not finite (NaN or infinite) in 1 row (row {second}: inf)" in text
    assert result.figures["futures_share"] == round(len(with_futures) / ROWS, 4)


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


def test_altered_row_is_caught_only_by_the_cross_check(flat_root, archive):
    frame = read_data(flat_root).with_row_index("i").with_columns(
        pl.when(pl.col("i") == 10).then(pl.col("spot_raw__mid") * 2).otherwise(pl.col("spot_raw__mid")).alias("spot_raw__mid")
    ).drop("i")
    rewrite_data(flat_root, frame)
    assert verify(flat_root).status == "PASS"  # self-consistent: sha, counts, schema all agree
    result = verify(flat_root, against_archive=str(archive))
    assert failing(result) == {"archive"}
    text = messages(result, "archive")
    assert f"1 of {ROWS} sampled rows differ from their archive entries" in text
    assert "row 10 (20260115/05.jsonl.gz line 1) differs at spot_raw.mid" in text


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

    copy, out = export_copy(archive, tmp_path, 2, odd_entry)
    row = read_data(out).row(5, named=True)  # hour 02, second line
    assert json.loads(row["_extra"]) == {"surprise": {"nested": [1, 2]}, "meta": {"source": 42}}
    result = verify(out, against_archive=str(copy))
    assert result.check("archive").status == "PASS", messages(result, "archive")


def test_cross_check_with_a_missing_archive_day(exports, tmp_path):
    result = verify(exports["flat"], against_archive=str(tmp_path / "nowhere"))
    assert "cannot cross-check: no archive folder for 2026-01-15" in messages(result, "archive")


# -- the command --------------------------------------------------------------------------------
def test_cli_pass_writes_the_report(flat_root, capsys):
    assert main(["verify", "--local", str(flat_root), "--date", "2026-01-15"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2026-01-15 PASS: 48 rows, flat")
    report = (flat_root / "verify_report.md").read_text()
    assert "| 2026-01-15 | **PASS** | 48 |" in report
    assert "| sha256: SHA-256 of data.parquet equals parquet_sha256 | PASS |" in report
    assert "Rows per hour:" in report and "00 " + "█" * 40 + " 2" in report


def test_cli_accepts_the_day_folder_as_in_the_guide(flat_root, capsys):
    assert main(["verify", "--local", str(day_dir(flat_root))]) == 0
    assert "2026-01-15 PASS" in capsys.readouterr().out
    assert (flat_root / "verify_report.md").exists()


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


def test_cli_several_dates_one_failing(flat_root, capsys):
    code = main(["verify", "--local", str(flat_root), "--from-date", "2026-01-14", "--to-date", "2026-01-15"])
    assert code == 1
    out = capsys.readouterr().out
    assert "2026-01-14 FAIL" in out and "2026-01-15 PASS" in out and "1 of 2 days passed" in out
    report = (flat_root / "verify_report.md").read_text()
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


@pytest.mark.parametrize("argv, message", [
    (["verify", "--local", "{root}", "--date", "2026-02-30"], "error: invalid date '2026-02-30'"),
    (["verify", "--local", "{root}", "--from-date", "2026-01-15"], "error: --from-date and --to-date go together"),
    (["verify", "--local", "{root}/nowhere", "--date", "2026-01-15"], "is not a directory"),
    (["verify", "--local", "{root}", "--date", "2026-01-15", "--sample-size", "0"], "--sample-size must be at least 1"),
])
def test_cli_usage_errors_exit_2(flat_root, capsys, argv, message):
    assert main([a.replace("{root}", str(flat_root)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_needs_a_location(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", "--date", "2026-01-15"])
    assert exit_info.value.code == 2
    assert "one of the arguments --local --path --r2 is required" in capsys.readouterr().err


def test_cli_r2_without_settings_is_one_error_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("R2_ENDPOINT", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_BUCKET"):
        monkeypatch.delenv(var, raising=False)
    assert main(["verify", "--r2", "--date", "2026-01-15"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: R2 settings missing") and err.count("\n") == 1


# -- R2 (a moto S3 server on 127.0.0.1) ---------------------------------------------------------
def test_cli_r2_verifies_the_bucket(exports, tmp_path, monkeypatch, capsys):
    socket = pytest.importorskip("socket")
    moto_server = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint, secret = f"http://127.0.0.1:{port}", "verify-secret-never-printed"
        monkeypatch.setenv("HOME", str(tmp_path))
        for var, value in (("R2_ENDPOINT", endpoint), ("R2_ACCESS_KEY_ID", "verify-key"),
                           ("R2_SECRET_ACCESS_KEY", secret), ("R2_BUCKET", "verify-bucket")):
            monkeypatch.setenv(var, value)
        s3fs.S3FileSystem.clear_instance_cache()
        fs = s3fs.S3FileSystem(key="verify-key", secret=secret, endpoint_url=endpoint, skip_instance_cache=True)
        fs.mkdir("verify-bucket")
        folder = f"verify-bucket/tier3/daily/{DAY}"
        for name in ("data.parquet", "manifest.json"):
            fs.pipe_file(f"{folder}/{name}", (day_dir(exports["flat"]) / name).read_bytes())

        assert main(["verify", "--r2", "--date", DAY.isoformat()]) == 0
        out = capsys.readouterr().out
        assert "2026-01-15 PASS: 48 rows, flat" in out and f"12/12 checks passed (s3://{folder})" in out

        manifest = json.loads(fs.cat_file(f"{folder}/manifest.json"))
        fs.pipe_file(f"{folder}/manifest.json", json.dumps({**manifest, "parquet_sha256": "a" * 64}).encode())
        s3fs.S3FileSystem.clear_instance_cache()
        assert main(["verify", "--r2", "--date", DAY.isoformat(), "--report", str(tmp_path / "r2.md")]) == 1
        captured = capsys.readouterr()
        assert "FAIL sha256: data.parquet sha256 is" in captured.out
        assert secret not in captured.out + captured.err + (tmp_path / "r2.md").read_text()
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()
