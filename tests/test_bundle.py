"""Monthly bundles: a month's published days streamed into ``ROOT/YYYY-MM/``: the rows of the days
in date order, a manifest listing every day, missing days and month-to-date bundles partial,
rebuilt when the days change, and through R2 (moto's server) both ways."""

from __future__ import annotations

import json
import os
import shutil
from datetime import date, timedelta

import polars as pl
import pytest

from instrumetriq_polars import DamagedDayError, DatasetError, Manifest, export_day, upload_day
from instrumetriq_polars.tiers.monthly import bundle_month, month_days, parse_month
from instrumetriq_polars.errors import ArchiveError
from instrumetriq_polars.synthetic import write_archive_day
from instrumetriq_polars.verify import verify_month

from .support.s3 import BUCKET, run

JAN = date(2026, 1, 1)
FEB_10 = date(2026, 2, 10)  # "today" for January: the month is over


def _copy_day(daily, source: date, target: date) -> None:
    """A published day folder of ``target`` holding ``source``'s data (its manifest's dates moved)."""
    shutil.copytree(daily / source.isoformat(), daily / target.isoformat())
    path = daily / target.isoformat() / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(date_utc=target.isoformat(), archive_day=target.strftime("%Y%m%d"))
    path.write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def january(tmp_path_factory):
    """A daily root with every day of January 2026 published: three exported days (1 entry an
    hour, different seeds), the other 28 folders copies of them."""
    base = tmp_path_factory.mktemp("january")
    for n in range(3):
        day = JAN + timedelta(days=n)
        write_archive_day(base / "archive", day, entries_per_hour=1, seed=n)
        export_day(day, str(base / "archive"), str(base / "daily"))
    for n in range(3, 31):
        _copy_day(base / "daily", JAN + timedelta(days=n % 3), JAN + timedelta(days=n))
    return base


@pytest.fixture
def daily(january, tmp_path):
    root = tmp_path / "daily"
    shutil.copytree(january / "daily", root)
    return root


def _encodings(path) -> dict[str, tuple]:
    """Column path -> (encodings, compression) of each column chunk of the file's first row group."""
    import pyarrow.parquet as pq

    group = pq.ParquetFile(path).metadata.row_group(0)
    return {group.column(i).path_in_schema: (tuple(sorted(group.column(i).encodings)), group.column(i).compression)
            for i in range(group.num_columns)}


def test_a_bundle_is_written_as_its_days_are(daily, tmp_path):
    """One Parquet writer for every tier: the bundle's column chunks have its days' encodings
    (timestamps BYTE_STREAM_SPLIT, floats PLAIN, the rest dictionary) and compression."""
    bundle_month("2026-01", str(daily), str(tmp_path / "monthly"), today=FEB_10)
    bundle, day = _encodings(tmp_path / "monthly" / "2026-01" / "data.parquet"), _encodings(daily / "2026-01-01" / "data.parquet")
    assert bundle == day
    assert bundle["spot_prices.list.element.ts"][0] == ("BYTE_STREAM_SPLIT", "RLE")
    assert {compression for _, compression in bundle.values()} == {"ZSTD"}


def test_a_bundle_is_the_days_rows_in_date_order(daily, tmp_path):
    result = bundle_month("2026-01", str(daily), str(tmp_path / "monthly"), today=FEB_10)
    folder = tmp_path / "monthly" / "2026-01"
    assert result.status == "published" and sorted(os.listdir(folder)) == ["data.parquet", "manifest.json"]
    days = [pl.read_parquet(daily / (JAN + timedelta(days=n)).isoformat() / "data.parquet") for n in range(31)]
    assert pl.read_parquet(folder / "data.parquet").equals(pl.concat(days))
    stated = json.loads((folder / "manifest.json").read_text())
    assert (stated["partition"], stated["date_utc"], stated["missing_days"], stated["is_partial"]) == ("month", "2026-01", [], False)
    assert stated["row_count"] == sum(d.height for d in days) == sum(stated["rows_by_hour"].values())
    assert [s["date"] for s in stated["source_files"]] == [(JAN + timedelta(days=n)).isoformat() for n in range(31)]
    for source in stated["source_files"]:
        day = Manifest.from_json((daily / source["date"] / "manifest.json").read_bytes())
        assert (source["parquet_sha256"], source["rows"], source["is_partial"]) == (day.parquet_sha256, day.row_count, day.is_partial)
    assert result.summary().startswith("2026-01: published: 744 rows, 31/31 days")


def test_missing_days_make_the_bundle_partial_and_are_listed(daily, tmp_path, capfd):
    shutil.rmtree(daily / "2026-01-05")
    (daily / "2026-01-20" / "manifest.json").unlink()  # not published: being exported, or killed
    code, out, err = run(capfd, "bundle", "--month", "2026-01", "--from-dir", str(daily), "--out-dir", str(tmp_path / "monthly"))
    assert code == 0, err
    manifest = Manifest.from_json((tmp_path / "monthly" / "2026-01" / "manifest.json").read_bytes())
    assert manifest.missing_days == ["2026-01-05", "2026-01-20"] and manifest.is_partial
    assert len(manifest.source_files) == 29 and "PARTIAL" in out and "29/31 days" in out
    assert "warning: 2026-01: days not published, not in the bundle: 2026-01-05, 2026-01-20" in err


def test_the_current_month_is_a_month_to_date_bundle(daily, tmp_path):
    result = bundle_month("2026-01", str(daily), str(tmp_path / "monthly"), today=date(2026, 1, 11))
    m = result.manifest
    assert [s["date"] for s in m.source_files] == [(JAN + timedelta(days=n)).isoformat() for n in range(10)]
    assert m.day_over_at_export is False and m.is_partial and m.missing_days == []
    assert month_days(JAN, date(2026, 1, 11)) == ([JAN + timedelta(days=n) for n in range(10)], False)
    with pytest.raises(ArchiveError, match="no day of it is over yet"):
        bundle_month("2026-01", str(daily), str(tmp_path / "monthly"), today=JAN)
    # the month goes on: the next run rebuilds the bundle with the new days, without --force
    later = bundle_month("2026-01", str(daily), str(tmp_path / "monthly"), today=date(2026, 1, 12))
    assert later.status == "published" and len(later.manifest.source_files) == 11


def test_a_bundle_is_rebuilt_only_when_its_days_changed(january, daily, tmp_path):
    out = str(tmp_path / "monthly")
    first = bundle_month("2026-01", str(daily), out, today=FEB_10)
    again = bundle_month("2026-01", str(daily), out, today=FEB_10)
    assert again.status == "already published" and again.manifest == first.manifest
    archive = tmp_path / "archive"
    write_archive_day(archive, date(2026, 1, 2), entries_per_hour=2, seed=42)
    export_day(date(2026, 1, 2), str(archive), str(daily), force=True)  # the day re-exported with other data
    rebuilt = bundle_month("2026-01", str(daily), out, today=FEB_10)
    assert rebuilt.status == "published" and rebuilt.manifest.row_count == first.manifest.row_count + 24
    assert rebuilt.manifest.source_files[1]["parquet_sha256"] != first.manifest.source_files[1]["parquet_sha256"]


def test_a_damaged_day_is_not_bundled(daily, tmp_path):
    path = daily / "2026-01-03" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["row_count"] += 1
    path.write_text(json.dumps(manifest))
    with pytest.raises(DamagedDayError, match="hold 744 rows, their manifests say 745"):
        bundle_month("2026-01", str(daily), str(tmp_path / "monthly"), today=FEB_10)
    assert not (tmp_path / "monthly" / "2026-01").exists()


def test_no_published_day_and_bad_months_are_refused(daily, tmp_path, capfd):
    with pytest.raises(DatasetError, match="no published day"):
        bundle_month("2025-12", str(daily), str(tmp_path / "monthly"), today=FEB_10)
    for bad in ("2026-13", "2026-1", "202601", "2026-01\n"):
        with pytest.raises(ArchiveError, match="invalid month"):
            parse_month(bad)
    code, _, err = run(capfd, "bundle", "--month", "2026-13", "--from-dir", str(daily))
    assert code == 2 and err.strip() == "error: invalid month '2026-13': expected YYYY-MM"


def test_a_bundle_from_r2_days_uploaded_to_r2(s3, january, tmp_path, capfd):  # noqa: F811 - the s3 fixture
    local = tmp_path / "daily"
    for n in range(3):  # January 1-3 published on R2; the rest of the month is missing there
        day = JAN + timedelta(days=n)
        result = export_day(day, str(january / "archive"), str(local))
        upload_day(result, f"s3://{BUCKET}/tier3/daily")
    args = ["bundle", "--month", "2026-01", "--from-r2", "--out-dir", str(tmp_path / "monthly"), "--upload"]
    code, out, err = run(capfd, *args)
    assert code == 0, err
    s3.invalidate_cache()
    prefix = f"{BUCKET}/tier3/monthly/2026-01"
    assert sorted(p.rsplit("/", 1)[-1] for p in s3.find(prefix)) == ["data.parquet", "manifest.json"]
    manifest = Manifest.from_json(s3.cat_file(f"{prefix}/manifest.json"))
    assert [s["date"] for s in manifest.source_files] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert len(manifest.missing_days) == 28 and manifest.is_partial and manifest.row_count == 72
    local_days = pl.concat([pl.read_parquet(local / f"2026-01-0{n}" / "data.parquet") for n in (1, 2, 3)])
    assert pl.read_parquet(tmp_path / "monthly" / "2026-01" / "data.parquet").equals(local_days)
    code, out, _ = run(capfd, *args)
    assert code == 0 and all("already published" in line for line in out.splitlines())


def test_verify_a_bundle(daily, tmp_path, capfd):
    out = tmp_path / "monthly"
    shutil.rmtree(daily / "2026-01-31")
    bundle_month("2026-01", str(daily), str(out), today=FEB_10)
    result = verify_month("2026-01", str(out), against_archive=str(tmp_path))
    assert result.status == "WARN" and not result.errors, result.summary()
    assert result.check("hours").warnings == ["partial bundle: 1 day not published when it was built: 2026-01-31"]
    assert all(w.startswith(("hours: ", "content: meta.duration_sec")) for w in result.warnings)  # long cycles: the generator's
    assert result.check("archive").skipped.startswith("a bundle is compared with its days")
    assert result.check("content").figures["rows_sampled"] == 200  # rows dated in the month are not "far"
    path = out / "2026-01" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["source_files"][0]["rows"] += 1
    path.write_text(json.dumps(manifest))
    code, stdout, _ = run(capfd, "verify", "--local", str(out), "--month", "2026-01")
    assert code == 1 and "FAIL hours: source_files lists 721 rows over the days, row_count is 720" in stdout


def test_verify_a_bundle_on_r2(s3, daily, tmp_path, capfd):  # noqa: F811 - the s3 fixture
    code, _, err = run(capfd, "bundle", "--month", "2026-01", "--from-dir", str(daily), "--out-dir", str(tmp_path / "m"), "--upload")
    assert code == 0, err
    code, stdout, err = run(capfd, "verify", "--r2", "--month", "2026-01")
    assert code == 0, stdout + err
    assert stdout.startswith(("2026-01 PASS: 744 rows", "2026-01 WARN: 744 rows")) and "FAIL" not in stdout and f"s3://{BUCKET}/tier3/monthly/2026-01" in stdout
