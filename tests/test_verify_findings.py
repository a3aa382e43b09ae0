"""What verify used to miss, and a warning it gave every night: negative counts in the manifest,
an export's leftover temporary files, a data file of another day, and columns NULL in every row
(a warning only when that is news against the previous published day)."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from datetime import date
from pathlib import Path

import fsspec
import polars as pl
import pytest

from instrumetriq_polars import Manifest, export_day, verify_day
from instrumetriq_polars.cli import main
from instrumetriq_polars.folder import PartitionFolder, is_export_leftover
from instrumetriq_polars.errors import ManifestError, StorageError
from instrumetriq_polars.synthetic import write_archive_day
from instrumetriq_polars.verify import render_report

from .support.versions import as_version_1
from .support.verifying import (
    archive, exports, flat_root,  # fixtures
    AFTER, CLEAN_SEED, DAY, ROWS, day_dir, messages, read_manifest, verify, write_manifest,
)

BEFORE = date(2026, 1, 14)


def archive_of(tmp_path: Path, day: date) -> Path:
    """A synthetic archive holding ``day``."""
    source = tmp_path / f"archive-{day}"
    write_archive_day(source, day, entries_per_hour=2, seed=CLEAN_SEED)
    return source


def export_other_day(root: Path, tmp_path: Path, day: date, layout: str = "flat") -> Path:
    """Export a synthetic ``day`` into the dataset ``root``; returns its day folder."""
    export_day(day, str(archive_of(tmp_path, day)), str(root), layout=layout, today=AFTER)
    return root / day.isoformat()


# -- negative counts ----------------------------------------------------------------------------
def test_negative_count_in_rows_by_hour_fails_even_when_source_files_agree(flat_root):
    manifest = read_manifest(flat_root)
    manifest["rows_by_hour"].update({"03": -1, "04": 5})  # the sum is still ROWS
    for source in manifest["source_files"]:
        source["rows"] = manifest["rows_by_hour"][f"{source['hour']:02d}"]
    write_manifest(flat_root, manifest)
    result = verify(flat_root)
    assert result.status == "FAIL"
    assert ("manifest.json has fields of the wrong type or negative counts: rows_by_hour ({'00': 2, '01': 2,"
            in messages(result, "manifest")), result.summary()
    assert "source_files" in messages(result, "manifest")  # its rows -1 is a negative count too


@pytest.mark.parametrize("field, value", [
    ("row_count", -48), ("parquet_size_bytes", -1), ("bad_line_count", -1), ("lines_read", -5),
    ("missing_hours", [-1]), ("mistyped_fields", {"meta.source": -2}), ("schema_versions", {"7": -48}),
])
def test_every_count_of_the_manifest_is_never_negative(flat_root, field, value):
    data = {**read_manifest(flat_root), field: value}
    with pytest.raises(ManifestError, match=rf"^manifest.json has fields of the wrong type or negative counts: {field} \("):
        Manifest.from_dict(data)


# -- leftover temporary files -------------------------------------------------------------------
LEFTOVERS = [".data.parquet.tmp-4242-0123abcd", ".manifest.json.tmp-4242-0123abcd", ".export.lock"]


@pytest.mark.parametrize("names", [[name] for name in LEFTOVERS] + [LEFTOVERS], ids=["data", "manifest", "lock", "all"])
def test_leftover_temporary_files_are_a_warning(flat_root, capsys, names):
    for name in names:
        (day_dir(flat_root) / name).write_bytes(b"x" * 10)
    (day_dir(flat_root) / "notes.txt").write_text("not an export's file")  # not reported
    result = verify(flat_root)
    assert result.status == "WARN" and result.check("files").status == "WARN", result.summary()
    assert result.figures["leftover_files"] == sorted(names)
    [warning] = result.check("files").warnings
    assert warning.startswith(f"{day_dir(flat_root)} holds {len(names)} temporary file{'s' if len(names) > 1 else ''} of an export: ")
    assert all(f"{name} (10 B)" in warning for name in names)
    assert warning.endswith(f"an export of {DAY} is running now, or one was killed. The published files are not affected; "
                            f"if no export is running, delete them, or run the export of {DAY} again: it removes those of runs that are gone")
    assert main(["verify", "--local", str(flat_root), "--date", DAY.isoformat()]) == 0
    assert "  WARN files: " in capsys.readouterr().out


def test_leftover_temporary_key_on_an_fsspec_store(exports):
    fs = fsspec.filesystem("memory")
    root = f"/verify-{uuid.uuid4().hex[:8]}"
    try:
        for name in ("data.parquet", "manifest.json"):
            fs.pipe_file(f"{root}/{DAY}/{name}", (day_dir(exports["flat"]) / name).read_bytes())
        fs.pipe_file(f"{root}/{DAY}/.data.parquet.tmp-77-feedbeef", b"partial")
        result = verify_day(DAY, f"memory://{root}")
        assert result.status == "WARN" and result.figures["leftover_files"] == [".data.parquet.tmp-77-feedbeef"]
    finally:
        fs.rm(root, recursive=True)


def test_a_folder_that_cannot_be_listed_is_still_verified(flat_root, monkeypatch):
    """Read access without list access (an object-store policy): the files are checked all the same."""
    def refuse(self):
        raise StorageError(f"could not list {self.url}: AccessDenied", self.url)

    monkeypatch.setattr(PartitionFolder, "listing", refuse)
    result = verify(flat_root)
    assert result.check("files").status == "PASS" and result.figures["leftover_files"] is None


def test_the_names_verify_reports_are_those_the_export_writes(archive, tmp_path):
    """Looked at while an export runs (from its progress callback): every file in the day folder
    besides the published two is one ``is_export_leftover`` names."""
    out = tmp_path / "out"
    seen = []
    export_day(DAY, str(archive), str(out), today=AFTER,
               progress=lambda hour: seen.append(sorted(p.name for p in (out / DAY.isoformat()).iterdir())))
    during = {name for names in seen for name in names}
    assert any(name.startswith(".data.parquet.tmp-") for name in during) and ".export.lock" in during, during
    assert all(is_export_leftover(name) for name in during - {"data.parquet", "manifest.json"})


# -- a data file of another day -----------------------------------------------------------------
@pytest.mark.parametrize("version", [1, 2])
def test_data_of_another_day_with_its_manifest_edited(tmp_path, version):
    """Export version 2's rows name their archive day: another day's file is an error, a neighbouring
    day's too. Version 1's rows do not: only the dates in them can tell, a warning."""
    root = tmp_path / "out"
    other = export_other_day(root, tmp_path, date(2026, 1, 10))
    if version == 1:
        as_version_1(other)
    folder = Path(shutil.copytree(other, root / DAY.isoformat()))
    shutil.rmtree(other)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "date_utc": DAY.isoformat(), "archive_day": f"{DAY:%Y%m%d}"}))
    result = verify_day(DAY, str(root))
    if version == 2:
        assert result.status == "FAIL" and result.errors == [
            "row_count: archive_day holds 2026-01-10, outside 2026-01-15: rows of another archive day are in this file; "
            "re-export the day, replacing it (force)"], result.summary()
    else:
        assert result.status == "WARN", result.summary()
    assert result.figures["rows_far_from_day"] == ROWS
    [warning] = [w for w in result.check("content").warnings if "more than a day away" in w]
    assert warning.startswith(f"{ROWS} of {ROWS} sampled rows are dated more than a day away from {DAY} (meta.added_ts, else snapshot_ts; row 0: '2026-01-09T")
    assert warning.endswith("the data may be another day's; compare with the archive (against_archive)")


def test_rows_from_the_evening_before_are_not_far(exports):
    result = verify(exports["flat"])
    assert result.figures["added_ts_outside_day"] > 0 and result.figures["rows_far_from_day"] == 0
    assert result.status == "PASS"


# -- columns NULL in every row ------------------------------------------------------------------
def null_column(root: Path, folder: date = DAY, column: str = "scores__final") -> None:
    """``column`` of that day NULL in every row (a nested struct column: the struct), resealed."""
    path = root / folder.isoformat() / "data.parquet"
    frame = pl.read_parquet(path)
    frame.with_columns(pl.lit(None, frame.schema[column]).alias(column)).write_parquet(path, compression="zstd")
    raw = path.read_bytes()
    manifest = json.loads((path.parent / "manifest.json").read_text())
    manifest.update(parquet_sha256=hashlib.sha256(raw).hexdigest(), parquet_size_bytes=len(raw))
    (path.parent / "manifest.json").write_text(json.dumps(manifest))


def test_all_null_column_without_an_earlier_day_is_a_figure(flat_root):
    null_column(flat_root)
    result = verify(flat_root)
    assert result.status == "PASS", result.summary()
    assert result.figures["all_null_columns"] == ["scores.final"] and result.figures["all_null_previous_day"] is None
    assert result.figures["null_ratios_top"]["scores.final"] == 1.0
    assert result.check("null_ratios").summary.endswith("1 column NULL in every row (no earlier published day to compare with)")
    assert 'Figures: `futures_share` = ' in render_report([result]) and '`all_null_columns` = ["scores.final"]' in render_report([result])


def test_column_newly_null_in_every_row_is_a_warning(flat_root, tmp_path, capsys):
    export_other_day(flat_root, tmp_path, BEFORE)
    null_column(flat_root)
    result = verify(flat_root)
    assert result.status == "WARN", result.summary()
    assert result.check("null_ratios").warnings == [
        f"1 column is NULL in every row but held values on {BEFORE} (the previous published day): scores.final: "
        "check that the collector still writes them"]
    assert result.figures["all_null_new"] == ["scores.final"] and result.figures["all_null_previous_day"] == BEFORE.isoformat()


@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_column_null_on_both_days_is_no_news(exports, tmp_path, layout):
    root = Path(shutil.copytree(exports["flat"], tmp_path / "root"))
    export_other_day(root, tmp_path, BEFORE, layout)
    null_column(root, BEFORE, "scores__final" if layout == "flat" else "scores")  # nested: the whole struct
    null_column(root)
    result = verify_day(DAY, str(root))
    assert result.status == "PASS", result.summary()
    assert result.figures["all_null_columns"] == ["scores.final"] and result.figures["all_null_new"] == []
    assert result.check("null_ratios").summary.endswith(f"1 column NULL in every row (none newly since {BEFORE})")


def test_the_previous_published_day_is_looked_for(flat_root, tmp_path):
    """An unpublished folder (no manifest) is passed over; an unreadable previous day gives no news."""
    earlier = date(2026, 1, 12)
    export_other_day(flat_root, tmp_path, earlier)
    (flat_root / BEFORE.isoformat()).mkdir()  # an export interrupted before its manifest
    (flat_root / "verify_report.md").write_text("not a day")
    null_column(flat_root)
    result = verify(flat_root)
    assert result.figures["all_null_previous_day"] == earlier.isoformat() and result.figures["all_null_new"] == ["scores.final"]
    (flat_root / earlier.isoformat() / "data.parquet").write_bytes(b"PAR1 damaged")
    result = verify(flat_root)
    assert result.status == "PASS" and result.figures["all_null_previous_day"] is None


def test_real_days_verify_without_warnings(sample_archive, tmp_path):
    """The real sample (conftest.sample_archive) exported as two consecutive days: the columns it
    never fills are a figure, and the second day is a PASS, not a WARN every night."""
    source = Path(sample_archive)
    archive = Path(shutil.copytree(source, tmp_path / "archive"))
    shutil.copytree(archive / "20260101", archive / "20251231")
    out = tmp_path / "out"
    for day in ("2025-12-31", "2026-01-01"):
        export_day(day, str(archive), str(out), today=date(2026, 1, 2))
    result = verify_day("2026-01-01", str(out), against_archive=str(archive))
    assert result.status == "PASS", result.summary()
    assert len(result.figures["all_null_columns"]) >= 1 and result.figures["all_null_new"] == []
