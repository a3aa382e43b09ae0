"""Tier 2: an archive hour file exported as its own partition ``ROOT/YYYY-MM-DD/HH/``, through the
day's stages: the same rows as the day's export of that hour, the day's publishing rules, the
completeness guard, the CLI, and the upload to a real S3 server (moto's, from test_s3)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from instrumetriq_polars import ArchiveError, ConflictError, Manifest, export_day
from instrumetriq_polars.errors import LockHeldError
from instrumetriq_polars.tiers.hourly import (
    GRACE, catch_up_hours, check_hour_guard, export_hour, hour_range, last_complete_hour, parse_hour,
)
from instrumetriq_polars.write.lock import PartitionLock
from instrumetriq_polars.synthetic import write_archive_day
from instrumetriq_polars.verify import CHECKS, verify_hour

from .conftest import DAY
from .support.s3 import BUCKET, run

HOUR = "2026-01-15T05"
AFTER = datetime(2026, 1, 16, 12, tzinfo=timezone.utc)  # long after the day: every hour complete


@pytest.fixture
def archive(tmp_path):
    root = tmp_path / "archive"
    write_archive_day(root, DAY, entries_per_hour=3)
    return root


def _manifest(folder) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def test_an_hour_holds_exactly_the_days_rows_of_that_hour(archive, tmp_path):
    result = export_hour(HOUR, str(archive), str(tmp_path / "hourly"), now=AFTER)
    folder = tmp_path / "hourly" / "2026-01-15" / "05"
    assert result.status == "published" and result.location == str(folder)
    assert sorted(os.listdir(folder)) == ["data.parquet", "manifest.json"]
    stated = _manifest(folder)
    assert (stated["partition"], stated["hour_utc"], stated["tier"], stated["date_utc"]) == ("hour", 5, "tier2", "2026-01-15")
    assert (stated["hours_expected"], stated["hours_found"], stated["missing_hours"], stated["coverage_ratio"]) == (1, 1, [], 1.0)
    assert stated["rows_by_hour"] == {"05": 3} and stated["is_partial"] is False and stated["day_over_at_export"] is True
    assert [s["file"] for s in stated["source_files"]] == ["20260115/05.jsonl.gz"]
    assert Manifest.from_dict(stated) == result.manifest
    day = export_day(DAY, str(archive), str(tmp_path / "daily"))
    start = sum(day.manifest.rows_by_hour[f"{h:02d}"] for h in range(5))
    day_rows = pl.read_parquet(f"{day.location}/data.parquet").slice(start, 3)
    hour_rows = pl.read_parquet(folder / "data.parquet")
    assert hour_rows.columns == day_rows.columns and hour_rows.equals(day_rows)
    assert "YYYY" not in result.summary() and result.summary().startswith("2026-01-15T05: published: 3 rows, 1/1 hours")


def test_an_hour_is_idempotent_and_refuses_other_data(archive, tmp_path):
    out = str(tmp_path / "hourly")
    first = export_hour(HOUR, str(archive), out, now=AFTER)
    again = export_hour(HOUR, str(archive), out, now=AFTER)
    assert again.status == "already published" and again.manifest.parquet_sha256 == first.manifest.parquet_sha256
    write_archive_day(archive, DAY, entries_per_hour=2, hours=[5], seed=3)
    with pytest.raises(ConflictError, match=r"2026-01-15/05/.*already published with different data"):
        export_hour(HOUR, str(archive), out, now=AFTER)
    assert export_hour(HOUR, str(archive), out, now=AFTER, force=True).status == "published"


def test_the_hour_being_written_is_refused_or_exported_partial_then_completed(archive, tmp_path):
    out = str(tmp_path / "hourly")
    start = parse_hour(HOUR)
    during = start + timedelta(minutes=30)
    with pytest.raises(ArchiveError, match="current hour 2026-01-15T05 .*still being written"):
        export_hour(HOUR, str(archive), out, now=during)
    with pytest.raises(ArchiveError, match="in the future"):
        export_hour(HOUR, str(archive), out, now=start - timedelta(minutes=1))
    partial = export_hour(HOUR, str(archive), out, now=during, allow_incomplete=True)
    assert partial.manifest.is_partial and partial.manifest.day_over_at_export is False
    # the collector appends to the file after the partial export: the next run completes the hour
    path = archive / "20260115" / "05.jsonl.gz"
    lines = gzip.decompress(path.read_bytes()).splitlines()
    path.write_bytes(gzip.compress(b"\n".join(lines + lines[:1]) + b"\n"))
    done = export_hour(HOUR, str(archive), out, now=start + timedelta(hours=1) + GRACE)
    assert (done.status, done.manifest.row_count, done.manifest.is_partial) == ("completed", 4, False)


def test_within_the_grace_period_the_next_hour_file_decides(archive, tmp_path):
    start = parse_hour(HOUR)
    just_after = start + timedelta(hours=1, seconds=30)
    assert check_hour_guard(start, str(archive), False, just_after) is True  # 06.jsonl.gz exists
    (archive / "20260115" / "06.jsonl.gz").unlink()
    with pytest.raises(ArchiveError, match=r"ended at 06:00 UTC .* may still grow until 06:02"):
        check_hour_guard(start, str(archive), False, just_after)
    assert check_hour_guard(start, str(archive), False, start + timedelta(hours=1) + GRACE) is True
    # hour 23: the next hour's file is in the next day's folder
    last = parse_hour("2026-01-15T23")
    with pytest.raises(ArchiveError, match="may still grow"):
        check_hour_guard(last, str(archive), False, last + timedelta(hours=1, seconds=5))
    write_archive_day(archive, DAY + timedelta(days=1), entries_per_hour=1, hours=[0])
    assert check_hour_guard(last, str(archive), False, last + timedelta(hours=1, seconds=5)) is True


def test_a_missing_hour_file_is_an_error_even_with_allow_incomplete(archive, tmp_path):
    (archive / "20260115" / "05.jsonl.gz").unlink()
    for allow in (False, True):
        with pytest.raises(ArchiveError, match=r"no hour file 05.jsonl.gz in .*20260115"):
            export_hour(HOUR, str(archive), str(tmp_path / "hourly"), now=AFTER, allow_incomplete=allow)
    assert not (tmp_path / "hourly").exists()


def test_an_hour_has_its_own_lock(archive, tmp_path):
    out = tmp_path / "hourly"
    with PartitionLock(str(out / "2026-01-15" / "05"), "2026-01-15/05"):
        with pytest.raises(LockHeldError, match="another export of 2026-01-15/05 is running"):
            export_hour(HOUR, str(archive), str(out), now=AFTER)
        assert export_hour("2026-01-15T06", str(archive), str(out), now=AFTER).status == "published"


def test_hour_arguments():
    assert parse_hour("2026-01-15T05") == datetime(2026, 1, 15, 5, tzinfo=timezone.utc)
    for bad in ("2026-01-15T24", "2026-01-15 05", "2026-02-30T01", "2026-01-15T5", "2026-01-15T05\n"):
        with pytest.raises(ArchiveError, match="invalid hour"):
            parse_hour(bad)
    assert [h.hour for h in hour_range("2026-01-15T22", "2026-01-16T01")] == [22, 23, 0, 1]
    with pytest.raises(ArchiveError, match="before"):
        hour_range("2026-01-15T05", "2026-01-15T04")
    now = datetime(2026, 1, 15, 10, 5, tzinfo=timezone.utc)
    assert last_complete_hour(now).hour == 9
    assert last_complete_hour(now - timedelta(minutes=4)).hour == 8  # 10:01: hour 09 is in its grace period
    assert [h.hour for h in catch_up_hours(3, now)] == [7, 8, 9]


def test_cli_exports_hours_and_ranges(archive, tmp_path, capfd):
    out = tmp_path / "hourly"
    code, stdout, err = run(capfd, "export-hourly", "--from-hour", "2026-01-15T22", "--to-hour", "2026-01-15T23",
                            "--hour", HOUR, "--archive-path", str(archive), "--out-dir", str(out))
    assert code == 0, err
    assert [line.split(":")[0] for line in stdout.splitlines()] == ["2026-01-15T05", "2026-01-15T22", "2026-01-15T23"]
    assert "3 hours: 3 exported, 0 completed, 0 already published, 0 skipped, 0 failed" in err
    assert sorted(os.listdir(out / "2026-01-15")) == ["05", "22", "23"]
    code, _, err = run(capfd, "export-hourly", "--hour", "2026-01-15T25", "--archive-path", str(archive), "--out-dir", str(out))
    assert code == 2 and err.strip() == "error: invalid hour '2026-01-15T25': expected YYYY-MM-DDTHH (UTC), e.g. 2026-01-15T05"
    code, _, err = run(capfd, "export-hourly", "--from-hour", HOUR, "--archive-path", str(archive), "--out-dir", str(out))
    assert code == 2 and "--from-hour and --to-hour go together" in err


def test_cli_uploads_an_hour_to_r2(s3, archive, tmp_path, capfd):  # noqa: F811 - the s3 fixture
    args = ["export-hourly", "--hour", HOUR, "--archive-path", str(archive), "--out-dir", str(tmp_path / "hourly"), "--upload"]
    code, stdout, err = run(capfd, *args)
    assert code == 0, err
    prefix = f"{BUCKET}/tier2/hourly/2026-01-15/05"
    s3.invalidate_cache()
    assert sorted(p.rsplit("/", 1)[-1] for p in s3.find(prefix)) == ["data.parquet", "manifest.json"]
    manifest = Manifest.from_json(s3.cat_file(f"{prefix}/manifest.json"))
    assert (manifest.partition, manifest.hour_utc, manifest.row_count) == ("hour", 5, 3)
    assert stdout.splitlines()[-1].startswith("2026-01-15T05: published") and f"s3://{prefix}" in stdout
    code, stdout, err = run(capfd, *args)
    assert code == 0 and "already published" in stdout.splitlines()[-1]


def test_verify_an_hour_every_day_check_and_the_archive(archive, tmp_path, capfd):
    out = tmp_path / "hourly"
    export_hour(HOUR, str(archive), str(out), now=AFTER)
    result = verify_hour(HOUR, str(out), against_archive=str(archive))
    assert result.status == "PASS", result.summary()
    assert [c.name for c in result.checks] == [c.name for c in CHECKS] + ["archive"]
    assert result.check("archive").figures["archive_rows_by_hour"] == {"05": 3}  # that hour file only
    assert verify_hour(HOUR, str(out / "2026-01-15" / "05")).status == "PASS"  # the hour folder itself
    # a manifest moved to another hour's folder is caught
    export_hour("2026-01-15T06", str(archive), str(out), now=AFTER)
    shutil.copy(out / "2026-01-15" / "05" / "manifest.json", out / "2026-01-15" / "06" / "manifest.json")
    moved = verify_hour("2026-01-15T06", str(out))
    assert any("is for hour 2026-01-15/05, but the folder is 2026-01-15/06" in e for e in moved.errors)
    code, stdout, _ = run(capfd, "verify", "--local", str(out), "--from-hour", "2026-01-15T05", "--to-hour", "2026-01-15T07")
    assert code == 1
    assert [line.split(":")[0].split(" ") for line in stdout.splitlines() if not line.startswith(" ")] == [
        ["2026-01-15T05", "PASS"], ["2026-01-15T06", "FAIL"], ["2026-01-15T07", "FAIL"]]
    assert "nothing published: " in stdout and "run the export for 2026-01-15T07" in stdout


def test_verify_an_hour_on_r2(s3, archive, tmp_path, capfd):  # noqa: F811 - the s3 fixture
    run(capfd, "export-hourly", "--hour", HOUR, "--archive-path", str(archive), "--out-dir", str(tmp_path / "h"), "--upload")
    code, stdout, err = run(capfd, "verify", "--r2", "--hour", HOUR, "--against-archive", str(archive))
    assert code == 0, stdout + err
    assert stdout.startswith(f"2026-01-15T05 PASS: 3 rows") and f"s3://{BUCKET}/tier2/hourly/2026-01-15/05" in stdout
