"""The archive-day scan (source.py) and the lazy plan over it (pipeline.py): the scan's figures are
those of one pull to the end, a second pull is refused, and pushed-down filters and projections
give the rows an eager filter gives."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import polars as pl
import pytest

import instrumetriq_polars.export as export_module
from instrumetriq_polars import export_day
from instrumetriq_polars.archive import open_archive_day
from instrumetriq_polars.pipeline import frame_source, lazy_day, lazy_entries
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
