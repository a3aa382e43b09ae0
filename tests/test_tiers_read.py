"""Reading the other tiers: list_partitions and scan over an hourly root (``YYYY-MM-DD/HH/``) and a
monthly root (``YYYY-MM/``), locally and on moto's S3 server; roots of several tiers are refused."""

from __future__ import annotations

import json
import shutil
import warnings
from datetime import datetime, timezone

import polars as pl
import pytest

from instrumetriq_polars import DatasetError, DatasetWarning, list_days, list_partitions, scan

from .support.s3 import BUCKET
from .support.tiers import HOURS, put_month  # the roots themselves: conftest's tiers


def hour_rows(root, *hours) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(root / "2026-01-15" / hh / "data.parquet") for hh in hours])


def names(entries) -> dict[str, str]:
    return {entry.name: entry.state for entry in entries}


@pytest.fixture
def hourly(tiers, tmp_path):
    shutil.copytree(tiers / "hourly", tmp_path / "hourly")
    return tmp_path / "hourly"


def test_an_hourly_root_is_read_as_hours(hourly):
    entries = list_partitions(str(hourly))
    assert names(entries) == {f"2026-01-15T{hh}": "published" for hh in HOURS}
    assert [e.unit for e in entries] == ["hour"] * 3 and entries[0].key == datetime(2026, 1, 15, 3, tzinfo=timezone.utc)
    assert entries[0].data_url == f"{hourly}/2026-01-15/03/data.parquet"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert scan(str(hourly)).collect().equals(hour_rows(hourly, *HOURS))
        # one hour folder as the location: that hour
        assert scan(f"{hourly}/2026-01-15/04").collect().equals(hour_rows(hourly, "04"))
        assert scan(str(hourly), "2026-01-15T04", datetime(2026, 1, 15, 5, tzinfo=timezone.utc)).collect().equals(
            hour_rows(hourly, "04", "05"))


def test_hours_of_a_range_that_do_not_count_are_named(hourly):
    shutil.copytree(hourly / "2026-01-15" / "05", hourly / "2026-01-15" / "07")  # hour 05's manifest in 07's folder
    (hourly / "2026-01-15" / "04" / "manifest.json").unlink()
    with pytest.warns(DatasetWarning) as caught:
        frame = scan(str(hourly), "2026-01-15T03", "2026-01-15T07").collect()
    assert frame.equals(hour_rows(hourly, "03", "05"))
    assert str(caught[0].message) == (
        f"scan {hourly} from 2026-01-15T03 to 2026-01-15T07: 3 of 5 hours not read: 2026-01-15T04 (unpublished: "
        "data.parquet without manifest.json: being published, or its export was killed); 2026-01-15T06 (missing: no hour folder); "
        "2026-01-15T07 (bad manifest: manifest.json is for the hour 2026-01-15T05, not for its folder's hour); reading the published hours only")
    # a day as bounds: its hours 00 to 23; the day folder as the location: the same
    assert len(list_partitions(str(hourly), "2026-01-15", "2026-01-15")) == 24
    assert names(list_partitions(f"{hourly}/2026-01-15")) == names(list_partitions(str(hourly), "2026-01-15", "2026-01-15"))
    with pytest.raises(DatasetError, match=r"^scan .*: 22 of 24 hours not read: 2026-01-15T00\.\.2026-01-15T02 \(missing: no hour folder\); "):
        scan(str(hourly), "2026-01-15", "2026-01-15", strict=True)


def test_bounds_and_roots_of_another_tier_are_one_line_errors(hourly, tiers, tmp_path):
    with pytest.raises(DatasetError) as error:
        list_days(str(hourly))
    assert str(error.value) == (f"dataset root {hourly} holds hourly partitions (hour folders), not daily ones; "
                                "give the daily root, or tier='hourly'")
    with pytest.raises(DatasetError) as error:
        list_partitions(str(hourly), "2026-01")
    assert str(error.value) == "start: invalid date '2026-01': expected YYYY-MM-DD (the root holds hourly partitions)"
    with pytest.raises(DatasetError) as error:
        list_partitions(str(hourly), "2026-01-15T05", "2026-01-15T04")
    assert str(error.value) == "end 2026-01-15T04 is before start 2026-01-15T05"
    with pytest.raises(DatasetError, match=r"2026-01-15/04 is the hour folder of 2026-01-15T04; give the dataset root"):
        list_partitions(f"{hourly}/2026-01-15/04", "2026-01-15T05")
    # a day folder in an hourly root: two tiers in one root
    shutil.copytree(tiers / "daily" / "2026-01-14", hourly / "2026-01-14")
    with pytest.raises(DatasetError) as error:
        scan(str(hourly))
    assert str(error.value) == (f"dataset root {hourly} holds partitions of several tiers (daily, hourly); "
                                "one root holds one tier: give the root of the tier to read")


def test_a_monthly_root_is_read_as_bundles(tiers, tmp_path):
    monthly = tmp_path / "monthly"
    shutil.copytree(tiers / "monthly", monthly)
    january = pl.read_parquet(monthly / "2026-01" / "data.parquet")
    days = pl.concat([pl.read_parquet(tiers / "daily" / d / "data.parquet") for d in ("2026-01-14", "2026-01-15")])
    assert january.equals(days)
    with pytest.warns(DatasetWarning, match=r"1 of 3 months not read: 2026-02 \(missing: no month folder\); reading the published months only"):
        frame = scan(str(monthly), "2026-01", "2026-03").collect()
    assert frame.equals(pl.concat([january, january]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # without bounds: the month folders there are
        assert scan(str(monthly), partial="include").collect().equals(frame)  # the bundles are partial: named by default
    assert names(list_partitions(str(monthly), "2026-01-20", "2026-01", partial="include")) == {"2026-01": "partial"}  # a day names its month; its days are not all there
    assert scan(f"{monthly}/2026-03").collect().equals(january)
    with pytest.raises(DatasetError, match="holds monthly partitions .month folders., not hourly ones"):
        scan(str(monthly), tier="hourly")
    put_month(monthly, "2026-01", "2026-04")
    (monthly / "2026-04" / "manifest.json").write_text(
        json.dumps({**json.loads((monthly / "2026-04" / "manifest.json").read_text()), "date_utc": "2026-01"}))
    with pytest.raises(DatasetError, match=r"2026-04 \(bad manifest: manifest.json is for the month 2026-01, not for its folder's month\)"):
        scan(str(monthly), "2026-03", "2026-04", strict=True)


def test_hours_and_bundles_on_s3(s3, tiers, server_requests):  # noqa: F811 - the s3 fixture
    s3.put(str(tiers / "hourly") + "/", f"{BUCKET}/tier2/hourly", recursive=True)
    s3.put(str(tiers / "monthly") + "/", f"{BUCKET}/tier3/monthly", recursive=True)
    server_requests.clear()
    entries = list_partitions(f"s3://{BUCKET}/tier2/hourly", "2026-01-15T04", "2026-01-15T06")
    assert names(entries) == {"2026-01-15T04": "published", "2026-01-15T05": "published", "2026-01-15T06": "missing"}
    listings = [r for r in server_requests if "list-type=2" in r]
    assert len(listings) == 1 and "delimiter=&" in listings[0]  # one flat listing of the root
    with pytest.warns(DatasetWarning, match=r"2026-01-15T06 \(missing: no hour folder\)"):
        frame = scan(f"s3://{BUCKET}/tier2/hourly", "2026-01-15T04", "2026-01-15T06").collect()
    assert frame.equals(hour_rows(tiers / "hourly", "04", "05"))
    months = scan(f"s3://{BUCKET}/tier3/monthly", "2026-03", "2026-03").collect()
    assert months.equals(pl.read_parquet(tiers / "monthly" / "2026-03" / "data.parquet"))
