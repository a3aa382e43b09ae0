"""The archive-day scan (source.py) and the lazy plan over it (pipeline.py): the scan's figures are
those of one pull to the end, a second pull is refused, and pushed-down filters and projections
give the rows an eager filter gives."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
from collections import Counter

import polars as pl
import pyarrow.parquet as pq
import pytest

import instrumetriq_polars.tiers.daily as export_module
import instrumetriq_polars.write.parquet as pipeline
from instrumetriq_polars import export_day
from instrumetriq_polars.archive import open_archive_day
from instrumetriq_polars.pipeline import frame_source, lazy_day, lazy_entries, sink
from instrumetriq_polars.source import ArchiveDayScan

from .conftest import DAY


def archived_entries(archive) -> dict[int, list[dict]]:
    """Each hour's entries as the standard library reads the files (the reference, not the exporter)."""
    folder = archive / DAY.strftime("%Y%m%d")
    return {hour: [json.loads(line) for line in gzip.decompress((folder / f"{hour:02d}.jsonl.gz").read_bytes()).splitlines() if line.strip()]
            for hour in range(24)}


def test_the_scan_hands_over_the_figures_of_the_hours_it_yielded(small_archive):
    entries = archived_entries(small_archive)
    reported = []
    scan = ArchiveDayScan(open_archive_day(str(small_archive), DAY), progress=reported.append)
    rows = lazy_day(scan.frames, "flat").collect()
    account, hours = scan.result()
    assert hours == reported and [h.hour for h in hours] == list(range(24))
    assert [h.rows for h in hours] == [len(entries[hour]) for hour in range(24)]
    assert account.lines_read == rows.height == sum(map(len, entries.values())) and not account.bad_lines
    assert account.schema_versions == Counter(str(e["meta"]["schema_version"]) for hour in entries.values() for e in hour)


def test_a_second_pull_is_refused_and_counts_nothing(small_archive):
    scan = ArchiveDayScan(open_archive_day(str(small_archive), DAY))
    plan = lazy_day(scan.frames, "flat")
    rows = plan.collect().height
    account, hours = scan.result()
    figures = (account.lines_read, dict(account.schema_versions), [h.rows for h in hours])
    with pytest.raises(RuntimeError, match="asked for its frames a second time"):
        plan.collect()
    account, hours = scan.result()
    assert (account.lines_read, dict(account.schema_versions), [h.rows for h in hours]) == figures
    assert account.lines_read == sum(h.rows for h in hours) == rows


def test_a_plan_that_scans_the_day_twice_is_refused(small_archive):
    scan = ArchiveDayScan(open_archive_day(str(small_archive), DAY))
    plan = lazy_day(scan.frames, "nested")
    with pytest.raises(RuntimeError, match="asked for its frames a second time"):
        pl.concat([plan, plan]).collect()


def test_no_figures_from_a_scan_not_pulled_to_the_end(small_archive):
    scan = ArchiveDayScan(open_archive_day(str(small_archive), DAY))
    with pytest.raises(RuntimeError, match="was never pulled: its figures are incomplete"):
        scan.result()
    assert lazy_day(scan.frames, "flat").head(4).collect().height == 4  # 3 entries an hour: 2 hours read
    with pytest.raises(RuntimeError, match="was stopped after 2 of 24 hours: its figures are incomplete"):
        scan.result()


def test_an_export_whose_plan_runs_twice_fails_and_publishes_nothing(small_archive, tmp_path, monkeypatch):
    """Were the source pulled twice, every figure of the manifest would be counted twice: the
    export fails instead."""
    sink = export_module.sink

    def twice(plan, out):
        plan.collect()
        sink(plan, out)

    monkeypatch.setattr(export_module, "sink", twice)
    with pytest.raises(RuntimeError, match="asked for its frames a second time"):
        export_day(DAY, str(small_archive), str(tmp_path / "out"))
    assert not (tmp_path / "out" / DAY.isoformat()).exists()


def test_a_filter_on_a_column_the_projection_leaves_out(small_archive):
    frames = list(ArchiveDayScan(open_archive_day(str(small_archive), DAY)).frames())
    every = pl.concat(frames)
    cut = sorted(every["snapshot_ts"])[every.height // 2]
    expected = every.filter(pl.col("snapshot_ts") >= cut)["symbol"].to_list()
    assert 0 < len(expected) < every.height
    late = pl.col("snapshot_ts") >= cut
    assert lazy_entries(lambda: iter(frames)).filter(late).select("symbol").collect()["symbol"].to_list() == expected
    flat = lazy_day(lambda: iter(frames), "flat").filter(late).select("symbol", "spot_raw__mid").collect()
    assert flat.to_dict(as_series=False) == every.filter(late).select("symbol", pl.col("spot_raw").struct.field("mid").alias("spot_raw__mid")).to_dict(as_series=False)
    # the IO source as Polars may call it: a predicate on a column that is not projected
    out = pl.concat(frame_source(lambda: iter(frames))(["symbol"], late, None, None))
    assert out.columns == ["symbol"] and out["symbol"].to_list() == expected


def _sink_bytes(frames: list[pl.DataFrame], layout: str = "flat") -> bytes:
    out = io.BytesIO()
    sink(lazy_day(lambda: iter(frames), layout), out)
    return out.getvalue()


@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_row_groups_hold_exactly_row_group_size_rows_whatever_the_batches(small_archive, monkeypatch, layout):
    """Rows are written in groups of ROW_GROUP_SIZE (the last smaller), and the same rows give the
    same bytes however they arrive: hour by hour, in one frame, or in odd slices."""
    monkeypatch.setattr(pipeline, "ROW_GROUP_SIZE", 10)
    hours = list(ArchiveDayScan(open_archive_day(str(small_archive), DAY)).frames())
    every = pl.concat(hours)
    odd = [every.slice(start, 7) for start in range(0, every.height, 7)]
    written = {name: _sink_bytes(frames, layout) for name, frames in (("hours", hours), ("one", [every]), ("odd", odd))}
    assert written["hours"] == written["one"] == written["odd"]
    meta = pq.ParquetFile(io.BytesIO(written["hours"])).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [10] * 7 + [2]  # 72 rows
    assert pl.read_parquet(io.BytesIO(written["hours"])).equals(lazy_day(lambda: iter(hours), layout).collect())


def test_timestamp_columns_are_byte_stream_split(small_archive, tmp_path):
    """The encoding that keeps typed timestamps small (README "The dataset"); an empty day is a
    valid file of the declared schema."""
    export_day(DAY, str(small_archive), str(tmp_path / "out"))
    meta = pq.ParquetFile(tmp_path / "out" / DAY.isoformat() / "data.parquet").metadata
    encodings = {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i).encodings for i in range(meta.num_columns)}
    stamps = [path for path in encodings if path in ("snapshot_ts", "meta__added_ts", "spot_prices.list.element.ts")]
    assert len(stamps) == 3 and all("BYTE_STREAM_SPLIT" in encodings[path] for path in stamps)
    assert "BYTE_STREAM_SPLIT" not in encodings["spot_prices.list.element.mid"]
    empty = _sink_bytes([])
    assert pl.read_parquet(io.BytesIO(empty)).schema == pl.Schema(pl.read_parquet_schema(tmp_path / "out" / DAY.isoformat() / "data.parquet"))


def test_the_same_day_gives_the_same_bytes_with_any_number_of_threads(small_archive, tmp_path):
    """Polars' batches may come in another order of completion with more threads; the file may not."""
    code = ("import sys; from instrumetriq_polars import export_day; "
            "print(export_day('2026-01-15', sys.argv[1], sys.argv[2], layout=sys.argv[3]).manifest.parquet_sha256)")
    for layout in ("flat", "nested"):
        shas = set()
        for threads in ("1", "4"):
            env = {**os.environ, "POLARS_MAX_THREADS": threads}
            run = subprocess.run([sys.executable, "-c", code, str(small_archive), str(tmp_path / f"{layout}-{threads}"), layout],
                                 capture_output=True, text=True, env=env, check=True)
            data = (tmp_path / f"{layout}-{threads}" / DAY.isoformat() / "data.parquet").read_bytes()
            assert run.stdout.strip() == hashlib.sha256(data).hexdigest()
            shas.add(run.stdout.strip())
        assert len(shas) == 1


@pytest.mark.parametrize("failing", [0, 3, 23])
def test_an_hour_file_that_cannot_be_read_stops_the_scan_after_the_hours_before_it(small_archive, monkeypatch, failing):
    """The reader thread reads ahead past the end of an hour; an hour file it cannot read still
    fails the scan where that hour comes, once every hour before it was built and reported."""
    import instrumetriq_polars.source as source
    from instrumetriq_polars.errors import ArchiveError

    fetch = source.fetch_hour

    def flaky(day, hour_file):
        if hour_file.hour == failing:
            raise ArchiveError(f"could not read {source.hour_label(day, hour_file)}: gone")
        return fetch(day, hour_file)

    monkeypatch.setattr(source, "fetch_hour", flaky)
    reported, heights = [], []
    scan = ArchiveDayScan(open_archive_day(str(small_archive), DAY), progress=reported.append)
    with pytest.raises(ArchiveError, match=f"/{failing:02d}.jsonl.gz: gone"):
        for frame in scan.frames():
            heights.append(frame.height)
    assert [report.hour for report in reported] == list(range(failing))
    assert len(heights) == failing and all(heights)
    with pytest.raises(RuntimeError, match=f"stopped after {failing} of 24 hours"):
        scan.result()
