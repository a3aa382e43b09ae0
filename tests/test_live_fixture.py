"""The real fixture replayed member by member through the live follower: 147 deliveries, the full
lines byte for byte, and rows equal to export-hourly's rows of the same hour."""

from __future__ import annotations

import gzip
from datetime import datetime, timezone

import polars as pl
import pytest

from instrumetriq_polars import export_hour
from instrumetriq_polars.live import follow, read, to_polars
from instrumetriq_polars.live.follower import Follower, FollowOptions
from instrumetriq_polars.members import read_members

from .conftest import SAMPLE, require_shared

NAME = "20260101/20.jsonl.gz"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """The fixture's 147 members appended one by one to one hour file, the follower polled after each."""
    data = require_shared(SAMPLE).read_bytes()
    members = read_members(data, one_line=True, final=True).members
    root = tmp_path_factory.mktemp("live_fixture")
    archive, state = root / "archive", root / "state"
    (archive / "20260101").mkdir(parents=True)
    path = archive / NAME
    clock = lambda: datetime(2026, 1, 1, 20, 30, tzinfo=timezone.utc).timestamp()  # noqa: E731 - the hour is open
    f = Follower(str(archive), str(state), FollowOptions(clock=clock))
    deliveries = []
    try:
        for m in members:
            with open(path, "ab") as out:
                out.write(data[m.start:m.end])
            deliveries.append([d.record for d in f.poll() if d.seq is not None])
    finally:
        f.close()
    return archive, state, members, deliveries


def test_147_deliveries_one_per_member(replayed):
    _, _, members, deliveries = replayed
    assert [len(d) for d in deliveries] == [1] * 147
    records = [d[0] for d in deliveries]
    assert [r["seq"] for r in records] == list(range(1, 148))
    assert [(r["start"], r["end"]) for r in records] == [(m.start, m.end) for m in members]
    assert len({r["sid"] for r in records}) == 147


def test_full_fields_are_the_lines_byte_for_byte(replayed):
    archive, state, members, _ = replayed
    lines = [e.row for b in read(str(state), fields="full", archive=str(archive)) for e in b.entries]
    assert lines == [m.text for m in members]
    with gzip.open(SAMPLE, "rb") as f:
        assert b"".join(lines) == f.read()


def test_rows_equal_export_hourly_rows(replayed, tmp_path):
    archive, state, _, _ = replayed
    result = export_hour("2026-01-01T20", str(archive), str(tmp_path / "tier2"), now=datetime(2026, 1, 2, tzinfo=timezone.utc))
    published = pl.read_parquet(f"{result.location}/data.parquet")
    entries = [e for b in read(str(state), fields="full", archive=str(archive)) for e in b.entries]
    live_rows = to_polars(entries, "full")
    assert live_rows["seq"].to_list() == list(range(1, 148))
    assert live_rows.drop("seq").schema == published.schema
    assert live_rows.drop("seq").equals(published)
    # the tier1 projection agrees with the same rows' columns
    tier1 = to_polars(entries, "tier1")
    pairs = {"symbol": "symbol", "mid": "spot_raw__mid", "score": "scores__final", "expired_ts": "meta__expired_ts",
             "liquidity_usd": "spot_raw__liq_qv_usd", "change_24h_pct": "spot_raw__ticker24_chg",
             "posts_total": "twitter_sentiment_windows__last_cycle__posts_total",
             "is_silent": "twitter_sentiment_windows__last_cycle__sentiment_activity__is_silent",
             "archive_day": "archive_day", "archive_hour": "archive_hour"}
    for mine, theirs in pairs.items():
        assert tier1[mine].to_list() == published[theirs].to_list(), mine
    first_mid = published["spot_prices"].list.first().struct.field("mid")
    assert tier1["sp_first_mid"].to_list() == first_mid.to_list()
    assert tier1["sp_n"].to_list() == published["spot_prices"].list.len().cast(pl.Int64).to_list()
    # a list of columns mixes both
    cols = to_polars(entries, ["symbol", "spot_raw__mid", "sp_return"])
    assert cols.columns == ["seq", "symbol", "spot_raw__mid", "sp_return"] and cols.height == 147


def test_follow_full_from_a_fresh_state_matches(replayed, tmp_path):
    archive, _, members, _ = replayed
    lines = [e.row for b in follow(str(archive), str(tmp_path / "s"), start="beginning", fields="full", follow=False)
             for e in b.entries]
    assert lines == [m.text for m in members]
