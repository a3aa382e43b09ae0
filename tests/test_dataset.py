"""The read API: list_days (the state of each day of a range) and scan (a LazyFrame over the
published days), locally and on moto's S3 server, with the R2 settings."""

from __future__ import annotations

import json
import shutil
import warnings
from datetime import date
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from instrumetriq_polars import (
    ConfigError, DatasetError, DatasetWarning, InstrumetriqError, export_day, list_days, scan,
)
from instrumetriq_polars.dataset import day_summary, polars_storage_options
from instrumetriq_polars.folder import PartitionFolder
from instrumetriq_polars.storage import r2_storage_options
from instrumetriq_polars.synthetic import write_archive_day

# the moto server and R2 settings of the S3 tests (fixtures, used by name)
from .support.s3 import BUCKET, KEY_ID, SECRET
from .support.versions import as_version_1

DAY = date(2026, 1, 15)


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, Path]:
    """One exported day folder per layout (24 rows each); tests copy them under other dates."""
    root = tmp_path_factory.mktemp("templates")
    write_archive_day(root / "archive", DAY, entries_per_hour=1, seed=5)
    return {layout: Path(export_day(DAY, str(root / "archive"), str(root / layout), layout=layout).location)
            for layout in ("flat", "nested")}


def put_day(root: Path, day: str, template: Path, **manifest_changes) -> Path:
    """A published copy of ``template`` as ``root/day``, its manifest naming ``day`` (plus changes)."""
    folder = root / day
    shutil.copytree(template, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update({"date_utc": day, "archive_day": day.replace("-", ""), **manifest_changes})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def states(entries) -> dict[str, str]:
    return {str(entry.day): entry.state for entry in entries}


def day_rows(folder: Path) -> pl.DataFrame:
    """A day's data as pyarrow reads it (not through scan)."""
    return pl.from_arrow(pq.read_table(folder / "data.parquet"))


@pytest.fixture
def mixed_root(tmp_path, templates) -> Path:
    """A root with a day in every state, plus files that are not days."""
    root = tmp_path / "tier3_daily"
    flat = templates["flat"]
    put_day(root, "2026-01-10", flat)
    put_day(root, "2026-01-11", flat)
    (put_day(root, "2026-01-12", flat) / "manifest.json").unlink()                   # data without manifest
    (root / "2026-01-13").mkdir()
    (root / "2026-01-13" / ".export.lock").write_text("4242 host1")                  # an export starting
    (put_day(root, "2026-01-14", flat) / "manifest.json").write_text('{"date_utc": ')  # not JSON
    put_day(root, "2026-01-15", flat, date_utc="2026-01-01")                            # another day's manifest
    put_day(root, "2026-01-16", flat, schema_fingerprint="sha256:" + "0" * 64)           # another exporter
    put_day(root, "2026-01-17", flat, layout="wide")
    (put_day(root, "2026-01-18", flat) / "data.parquet").unlink()
    with open(put_day(root, "2026-01-19", flat) / "data.parquet", "ab") as f:
        f.write(b"junk")
    put_day(root, "2026-01-21", flat)                                                   # 2026-01-20: no folder
    (root / "verify_report.md").write_text("# report\n")
    (root / "notes").mkdir()
    (root / "notes" / "2026-01-10").mkdir()                                               # deeper: not a day
    return root


def test_list_days_gives_each_day_its_state_and_reason(mixed_root, templates):
    entries = list_days(str(mixed_root))
    assert states(entries) == {
        "2026-01-10": "published", "2026-01-11": "published", "2026-01-12": "unpublished",
        "2026-01-13": "unpublished", "2026-01-14": "bad manifest", "2026-01-15": "bad manifest",
        "2026-01-16": "foreign", "2026-01-17": "foreign", "2026-01-18": "damaged", "2026-01-19": "damaged",
        "2026-01-21": "published",
    }  # without a range: the day folders there are, none for 2026-01-20
    reasons = {str(entry.day): entry.reason for entry in entries}
    size = (templates["flat"] / "data.parquet").stat().st_size
    assert reasons["2026-01-12"] == "data.parquet without manifest.json: being published, or its export was killed"
    assert reasons["2026-01-13"] == "no manifest.json"
    assert reasons["2026-01-14"].startswith("manifest.json is not valid JSON (")
    assert reasons["2026-01-15"] == "manifest.json is for 2026-01-01, not for its folder's date"
    assert reasons["2026-01-16"] == (
        f"schema fingerprint sha256:{'0' * 64} is not a declared one for the flat layout (exporter instrumetriq_polars 0.1.0)")
    assert reasons["2026-01-17"] == "layout 'wide' is not one this package writes"
    assert reasons["2026-01-18"] == "manifest.json without data.parquet"
    assert reasons["2026-01-19"] == f"data.parquet holds {size + 4} bytes, manifest.json says {size}"
    published = entries[0]
    assert published.published and published.reason == "" and published.manifest.row_count == 24
    assert published.data_url == f"{mixed_root}/2026-01-10/data.parquet" and published.data_size == size


@pytest.mark.parametrize("field, value, kind", [
    ("schema_fingerprint", {"sha256": "..."}, "a string"), ("export_version", ["tier3-polars-1"], "a string"),
    ("layout", None, "a string"), ("parquet_size_bytes", "1024", "an integer"), ("row_count", True, "an integer"),
    ("rows_by_hour", [24], "an object"),
])
def test_a_manifest_field_of_the_wrong_type_is_a_bad_manifest(tmp_path, templates, field, value, kind):
    put_day(tmp_path, "2026-01-10", templates["flat"], **{field: value})
    [entry] = list_days(str(tmp_path))
    assert (entry.state, entry.reason) == ("bad manifest", f"manifest.json has fields of the wrong type or negative counts: {field} ({value!r})")


def test_list_days_ranges_are_inclusive_and_name_missing_days(mixed_root):
    assert states(list_days(str(mixed_root), "2026-01-19", date(2026, 1, 22))) == {
        "2026-01-19": "damaged", "2026-01-20": "missing", "2026-01-21": "published", "2026-01-22": "missing"}
    # an open end is the first or the last day folder
    assert list(states(list_days(str(mixed_root), start="2026-01-20"))) == ["2026-01-20", "2026-01-21"]
    assert list(states(list_days(str(mixed_root), end="2026-01-09"))) == []  # before the first day folder
    assert states(list_days(str(mixed_root), end="2026-01-11")) == {"2026-01-10": "published", "2026-01-11": "published"}
    # a day folder is that day
    assert states(list_days(f"{mixed_root}/2026-01-12")) == {"2026-01-12": "unpublished"}
    assert states(list_days(f"{mixed_root}/2026-01-10", "2026-01-10", "2026-01-10")) == {"2026-01-10": "published"}


@pytest.mark.parametrize("args, message", [
    (("2026-01-15", "2026-01-14"), "end 2026-01-14 is before start 2026-01-15"),
    (("2026-1-5", None), "start: invalid date '2026-1-5': expected YYYY-MM-DD"),
    ((None, "2026-02-30"), "end: invalid date '2026-02-30': no such calendar day"),
])
def test_bad_ranges_are_one_line_errors(mixed_root, args, message):
    with pytest.raises(DatasetError) as error:
        list_days(str(mixed_root), *args)
    assert str(error.value) == message


def test_bad_locations_are_one_line_errors(mixed_root, tmp_path):
    with pytest.raises(DatasetError) as error:
        list_days(str(tmp_path / "nowhere"))
    assert str(error.value) == f"dataset root {tmp_path}/nowhere does not exist (nothing is there); check the location"
    with pytest.raises(DatasetError) as error:
        list_days(str(mixed_root / "verify_report.md"))
    assert str(error.value) == f"dataset root {mixed_root}/verify_report.md is a file, not a folder of partition folders (YYYY-MM-DD, YYYY-MM-DD/HH or YYYY-MM)"
    with pytest.raises(DatasetError) as error:
        scan(f"{mixed_root}/2026-01-10", "2026-01-10", "2026-01-11")
    assert str(error.value) == f"{mixed_root}/2026-01-10 is the day folder of 2026-01-10; give the dataset root {mixed_root} to read other days"
    assert issubclass(DatasetError, InstrumetriqError)


def test_scan_reads_the_published_days_and_warns_about_the_others(mixed_root):
    with pytest.warns(DatasetWarning) as caught:
        frame = scan(str(mixed_root), "2026-01-09", "2026-01-22").collect()
    assert len(caught) == 1
    assert str(caught[0].message) == (
        f"scan {mixed_root} from 2026-01-09 to 2026-01-22: 11 of 14 days not read: "
        "2026-01-09 (missing: no day folder); "
        "2026-01-12 (unpublished: data.parquet without manifest.json: being published, or its export was killed); "
        "2026-01-13 (unpublished: no manifest.json); 2026-01-14 (bad manifest: manifest.json is not valid JSON "
        "(Expecting value: line 1 column 14 (char 13))); 2026-01-15 (bad manifest: manifest.json is for 2026-01-01, "
        f"not for its folder's date); 2026-01-16 (foreign: schema fingerprint sha256:{'0' * 64} is not a declared one "
        "for the flat layout (exporter instrumetriq_polars 0.1.0)); 2026-01-17 (foreign: layout 'wide' is not one this "
        "package writes); 2026-01-18 (damaged: manifest.json without data.parquet); 2026-01-19 (damaged: data.parquet "
        f"holds {(mixed_root / '2026-01-19/data.parquet').stat().st_size} bytes, manifest.json says "
        f"{(mixed_root / '2026-01-10/data.parquet').stat().st_size}); 2026-01-20 (missing: no day folder); "
        "2026-01-22 (missing: no day folder); reading the published days only")
    assert caught[0].filename == __file__  # points at the caller
    expected = pl.concat([day_rows(mixed_root / day) for day in ("2026-01-10", "2026-01-11", "2026-01-21")])
    assert frame.equals(expected) and frame.height == 72


def test_runs_of_skipped_days_are_one_range(tmp_path, templates):
    root = tmp_path / "root"
    put_day(root, "2026-01-31", templates["flat"])
    with pytest.warns(DatasetWarning) as caught:
        assert scan(str(root), "2026-01-01").collect().height == 24
    assert str(caught[0].message) == (
        f"scan {root} from 2026-01-01 to the last day: 30 of 31 days not read: "
        "2026-01-01..2026-01-30 (missing: no day folder); reading the published days only")


def test_strict_scan_refuses_a_range_with_unpublished_days(mixed_root):
    with pytest.raises(DatasetError) as error:
        scan(str(mixed_root), "2026-01-11", "2026-01-13", strict=True)
    assert str(error.value) == (
        f"scan {mixed_root} from 2026-01-11 to 2026-01-13: 2 of 3 days not read: 2026-01-12 (unpublished: "
        "data.parquet without manifest.json: being published, or its export was killed); 2026-01-13 (unpublished: no "
        "manifest.json); strict=True reads a range only when every day of it is published complete: export those days, "
        "narrow the range, or read partial days with partial='include'")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fully published range: no warning
        assert scan(str(mixed_root), "2026-01-10", "2026-01-11", strict=True).collect().height == 48


def test_a_range_without_a_published_day_is_an_error(mixed_root):
    with pytest.raises(DatasetError) as error:
        scan(str(mixed_root), "2026-01-12", "2026-01-13")
    assert str(error.value) == (
        f"scan {mixed_root} from 2026-01-12 to 2026-01-13: no published day to read (2 of 2 days not read: "
        "2026-01-12 (unpublished: data.parquet without manifest.json: being published, or its export was killed); "
        "2026-01-13 (unpublished: no manifest.json)); check the location and the dates")
    with pytest.raises(DatasetError) as error:
        scan(str(mixed_root), end="2026-01-01")
    assert str(error.value) == f"scan {mixed_root} from the first day to 2026-01-01: no published day to read (no day folder); check the location and the dates"


def test_days_of_different_export_formats_are_not_mixed(tmp_path, templates):
    root = tmp_path / "root"
    for day in ("2026-01-01", "2026-01-02", "2026-01-04"):  # published by export version 1
        as_version_1(put_day(root, day, templates["flat"]), legacy_fingerprint=day == "2026-01-01")
    as_version_1(put_day(root, "2026-01-03", templates["nested"]))
    put_day(root, "2026-01-05", templates["flat"])  # by version 2: typed timestamps, lineage columns
    assert states(list_days(str(root))) == dict.fromkeys([f"2026-01-0{d}" for d in range(1, 6)], "published")
    with pytest.raises(DatasetError) as error:
        scan(str(root))
    assert str(error.value) == (
        f"scan {root}: the days are of different export formats, whose columns differ "
        "(layout flat, tier3-polars-1: 2026-01-01..2026-01-02, 2026-01-04; layout nested, tier3-polars-1: 2026-01-03; "
        "layout flat, tier3-polars-2: 2026-01-05); scan each part on its own (start=, end=), "
        "or re-export the odd days in one layout, replacing them (force)")
    # each part reads on its own, with its own columns
    assert scan(str(root), "2026-01-03", "2026-01-03").collect_schema().names()[:2] == ["symbol", "snapshot_ts"]
    assert len(scan(str(root), "2026-01-03", "2026-01-03").collect_schema()) == 13
    version_1 = scan(str(root), "2026-01-01", "2026-01-02").collect()
    assert version_1.width == 277 and version_1.schema["snapshot_ts"] == pl.String and version_1.height == 48
    version_2 = scan(str(root), "2026-01-05", "2026-01-05").collect()
    assert version_2.width == 279 and version_2.schema["snapshot_ts"] == pl.Datetime("us", "UTC")
    assert version_2["snapshot_ts"].to_list() == version_1["snapshot_ts"].str.to_datetime(time_zone="UTC").head(24).to_list()


def test_a_day_of_an_unknown_export_version_is_foreign(tmp_path, templates):
    """A day a newer exporter wrote (its columns unknown here) is not read, whatever its fingerprint says."""
    put_day(tmp_path, "2026-01-10", templates["flat"], export_version="tier3-polars-3")
    as_version_1(put_day(tmp_path, "2026-01-11", templates["flat"]))
    (tmp_path / "2026-01-11" / "manifest.json").write_text(
        (tmp_path / "2026-01-11" / "manifest.json").read_text().replace("tier3-polars-1", "tier3-polars-2"))
    entries = {str(entry.day): entry for entry in list_days(str(tmp_path))}
    assert (entries["2026-01-10"].state, entries["2026-01-10"].reason) == (
        "foreign", "export_version 'tier3-polars-3' is not one this package reads (exporter instrumetriq_polars 0.1.0)")
    # version 1 columns under a version 2 manifest: its fingerprint is not version 2's (missing_hours [] reads either way)
    assert entries["2026-01-11"].state == "foreign" and "not a declared one for the flat layout" in entries["2026-01-11"].reason


def test_polars_storage_options_from_fsspec_options():
    r2 = {"key": "id", "secret": "s", "endpoint_url": "https://acct.r2.cloudflarestorage.com",
          "client_kwargs": {"region_name": "auto"}, "fixed_upload_size": True,
          "config_kwargs": {"retries": {"mode": "standard"}}}
    assert polars_storage_options("s3://b/tier3/daily", r2) == {
        "aws_access_key_id": "id", "aws_secret_access_key": "s",
        "aws_endpoint_url": "https://acct.r2.cloudflarestorage.com", "aws_region": "auto"}
    assert polars_storage_options("s3://b/x", {"endpoint_url": "http://127.0.0.1:9", "anon": True}) == {
        "aws_endpoint_url": "http://127.0.0.1:9", "aws_skip_signature": "true", "aws_allow_http": "true"}
    assert polars_storage_options("s3://b/x", {"aws_region": "eu-west-1", "token": "t"}) == {
        "aws_region": "eu-west-1", "aws_session_token": "t"}
    assert polars_storage_options("/data/tier3", {"key": "id"}) is None
    assert polars_storage_options("gs://b/x", {"token": "t"}) == {"token": "t"}
    with pytest.raises(ConfigError) as error:
        polars_storage_options("s3://b/x", {"key": "id", "profile": "prod"})
    assert str(error.value) == "storage option 'profile' has no equivalent for Polars' S3 reader; give scan() Polars' own aws_* options instead"


# -- on S3 (moto), with the R2 settings --------------------------------------------------------
R2_ROOT = f"{BUCKET}/tier3/daily"


def test_scan_on_s3_with_the_r2_settings(s3, templates, tmp_path, server_requests):
    local = tmp_path / "local"
    put_day(local, "2026-01-14", templates["flat"])
    put_day(local, "2026-01-15", templates["flat"])
    put_day(local, "2026-01-17", templates["flat"])
    (local / "2026-01-17" / "manifest.json").unlink()
    s3.put(str(local) + "/", R2_ROOT, recursive=True)
    server_requests.clear()

    entries = list_days(f"s3://{R2_ROOT}", "2026-01-14", "2026-01-17")
    assert states(entries) == {"2026-01-14": "published", "2026-01-15": "published", "2026-01-16": "missing",
                               "2026-01-17": "unpublished"}
    assert entries[0].data_url == f"s3://{R2_ROOT}/2026-01-14/data.parquet"
    # cheap: one listing of the root, then the two manifests; no data read
    listings = [r for r in server_requests if "list-type=2" in r]
    assert len(listings) == 1 and "delimiter=&" in listings[0]
    assert sorted(r for r in server_requests if r not in listings) == [
        f"GET /{R2_ROOT}/2026-01-14/manifest.json", f"GET /{R2_ROOT}/2026-01-15/manifest.json"]

    with pytest.warns(DatasetWarning, match=r"2026-01-16 \(missing: no day folder\); 2026-01-17 \(unpublished"):
        frame = scan(f"s3://{R2_ROOT}", "2026-01-14", "2026-01-17").collect()  # Polars' own reader, R2 settings
    assert frame.equals(pl.concat([day_rows(local / "2026-01-14"), day_rows(local / "2026-01-15")]))
    # the day published since (its manifest written last) is seen by the next call in this process
    s3.put_file(str(templates["flat"] / "manifest.json"), f"{R2_ROOT}/2026-01-17/manifest.json")
    s3.pipe_file(f"{R2_ROOT}/2026-01-17/manifest.json",
                 json.dumps({**json.loads(s3.cat_file(f"{R2_ROOT}/2026-01-17/manifest.json")), "date_utc": "2026-01-17"}).encode())
    assert states(list_days(f"s3://{R2_ROOT}", "2026-01-17", "2026-01-17")) == {"2026-01-17": "published"}


def test_scan_on_s3_with_storage_options_given(s3, moto, templates, tmp_path, monkeypatch):
    local = tmp_path / "local"
    put_day(local, "2026-01-14", templates["nested"])
    s3.put(str(local) + "/", R2_ROOT, recursive=True)
    for var in ("R2_ENDPOINT", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)  # no R2 settings: the options given are all there is
    options = {"key": KEY_ID, "secret": SECRET, "endpoint_url": moto.endpoint}
    frame = scan(f"s3://{R2_ROOT}", storage_options=options).collect()
    assert frame.equals(day_rows(local / "2026-01-14")) and frame.width == 15
    with pytest.raises(ConfigError, match="^R2 settings missing: R2_ENDPOINT, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY;"):
        scan(f"s3://{R2_ROOT}")


def test_day_summary_reads_either_layout_and_shows_missing_hours(tmp_path, templates):
    root = tmp_path / "root"
    flat = day_summary(str(put_day(root, "2026-01-14", templates["flat"])), "2026-01-14")
    nested = day_summary(str(put_day(root, "2026-01-15", templates["nested"])), "2026-01-15")
    assert flat[0] == "read back through scan: 24 rows, 279 columns (manifest.json: 24 rows, layout flat)"
    assert nested[0] == "read back through scan: 24 rows, 15 columns (manifest.json: 24 rows, layout nested)"
    assert flat[1:] == nested[1:]  # the same entries, read through the struct fields
    rows = day_rows(root / "2026-01-14")
    btc = rows["twitter_sentiment_windows__last_cycle__tag_counts"].map.get("btc").drop_nulls()
    assert flat[-1] == f"twitter_sentiment_windows.last_cycle.tag_counts['btc']: in {btc.len()} of 24 rows, {btc.sum()} in all"

    archive = tmp_path / "archive"
    write_archive_day(archive, date(2026, 1, 10), entries_per_hour=1, hours=[h for h in range(24) if h not in (3, 17)])
    export_day("2026-01-10", str(archive), str(root), allow_incomplete=True)
    assert day_summary(str(root), "2026-01-10")[1:4] == [
        "rows per archive hour (the archive_hour column):",
        "  00-11: 1 1 1 - 1 1 1 1 1 1 1 1",
        "  12-23: 1 1 1 1 1 - 1 1 1 1 1 1",
    ]
    with pytest.raises(DatasetError, match="^scan .* 2026-01-11: no published day to read"):
        day_summary(str(root), "2026-01-11")


def test_a_day_folder_reads_a_manifest_written_after_it_listed_the_folder(s3):
    """The same class of defect in PartitionFolder (export and verify read manifests through it): s3fs'
    cat_file trusted the folder listing it had cached, and read a manifest written since as absent."""
    s3.pipe_file(f"{R2_ROOT}/2026-01-15/data.parquet", b"PAR1")
    folder = PartitionFolder(f"s3://{R2_ROOT}", date(2026, 1, 15), r2_storage_options())
    assert [info["name"].rsplit("/", 1)[1] for info in folder.listing()] == ["data.parquet"]
    s3.pipe_file(f"{R2_ROOT}/2026-01-15/manifest.json", b"{}")  # another writer publishes
    assert folder.read_manifest_bytes() == b"{}"
