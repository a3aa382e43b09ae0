"""Backtest equals live: the same generated day, exported to Tier 3 and read back through `scan`,
gives the same notifications as the live follower's tier1 rows pushed in batches; and the
`live rules check|backtest` commands (the real fixture, a bad rule, the exported day)."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from instrumetriq_polars import export_day
from instrumetriq_polars.live import FollowOptions, follow
from instrumetriq_polars.live.alerts import AlertEngine
from instrumetriq_polars.live.backtest import backtest, load, tier3_rows
from instrumetriq_polars.live.tier1 import tier1_frame
from instrumetriq_polars.synthetic import make_entry

from .conftest import DAY, SAMPLE, require_shared

RULES = """
[notifier.file]
type = "jsonl"
path = "alerts.jsonl"

[[rule]]
name = "tight_market"
where = "spread_bps < 12 AND liquidity_usd IS NOT NULL"
for = "20m"
keep_firing_for = "10m"
cooldown = "15m"
summary = "spread {spread_bps:.1f} bps ({symbol})"
notify = ["sse", "file"]

[[rule]]
name = "spread_regime"
kind = "window"
window = "45m"
select = ["avg(spread_bps) AS avg_spread", "count(*) AS n", "max(sp_realized_vol) AS vol"]
where = "avg_spread > 16.5 AND n >= 3"
keep_firing_for = "5m"
summary = "average spread {avg_spread:.2f} bps over {n} entries (max vol {vol:.4f})"
"""


def write_day(archive):
    """DAY as the collector writes it: one gzip member per entry (gzip.open "ab"), bursts of 2
    entries sharing one expired_ts every 20 minutes: 144 entries."""
    rng = random.Random(11)
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc)
    folder = archive / DAY.strftime("%Y%m%d")
    folder.mkdir(parents=True)
    for burst in range(72):
        when = start + timedelta(minutes=20 * burst, seconds=rng.uniform(0, 5))
        for _ in range(2):
            with gzip.open(folder / f"{when.hour:02d}.jsonl.gz", "ab") as f:
                f.write(json.dumps(make_entry(rng, when), separators=(",", ":")).encode() + b"\n")


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    root = tmp_path_factory.mktemp("backtest")
    archive = root / "archive"
    write_day(archive)
    export_day(DAY, str(archive), str(root / "tier3"))
    (root / "r.toml").write_text(RULES)
    return root


def live_notifications(root, rules_path) -> list[dict]:
    """The follower over the archive, its tier1 rows pushed as they come, batch by batch."""
    ruleset = load(rules_path)
    engine = AlertEngine(ruleset, wall_clock=True, settle_s=1.0)
    out, now = [], 1_000.0
    feed = follow(str(root / "archive"), str(root / "state"), start="beginning", follow=False,
                  options=FollowOptions(mode="poll"), batch_size=7)
    for batch in feed:
        rows = [e.tier1 for e in batch.entries]
        if rows:
            now += 0.1
            out += engine.push(tier1_frame(rows), now=now)
    out += engine.tick(now + 5)
    return out


@pytest.mark.slow
def test_backtest_equals_live_on_the_same_generated_day(day):
    ruleset, count, expected = backtest(day / "r.toml", str(day / "tier3"), DAY.isoformat(), DAY.isoformat())
    assert count == 144
    assert {a["rule"] for a in expected} == {"tight_market", "spread_regime"}
    assert {a["status"] for a in expected} == {"firing", "resolved"}
    got = live_notifications(day, day / "r.toml")
    assert got == expected
    # the rows themselves: Tier 3 through scan equals the live projection, spot_prices summary included
    rows = tier3_rows(str(day / "tier3"), DAY.isoformat(), DAY.isoformat())
    live = tier1_frame([e.tier1 for b in follow(str(day / "archive"), str(day / "state2"), start="beginning", follow=False,
                                               options=FollowOptions(mode="poll")) for e in b.entries])
    columns = [c for c in rows.columns if c not in ("seq", "archive_day", "archive_hour", "file_offset", "ingest_lag_ms", "problem")]
    key = ["expired_ts", "session_id"]
    assert rows.select(columns).sort(key).equals(live.select(columns).sort(key))


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "instrumetriq_polars", "live", "rules", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_rules_check_on_the_real_fixture_and_a_bad_rule(tmp_path):
    require_shared(SAMPLE)
    (tmp_path / "r.toml").write_text(RULES.replace('path = "alerts.jsonl"', f'path = "{tmp_path}/a.jsonl"'))
    done = cli("check", str(tmp_path / "r.toml"), "--entries", str(SAMPLE))
    assert done.returncode == 0, done.stderr
    assert "2 rules OK (tight_market, spread_regime); dry run on 147 entries" in done.stderr
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert lines and {line["rule"] for line in lines} <= {"tight_market", "spread_regime"}
    (tmp_path / "bad.toml").write_text('[[rule]]\nname = "oops"\nwhere = "spred_bps > 1"\n')
    bad = cli("check", str(tmp_path / "bad.toml"), "--entries", str(SAMPLE))
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [f"error: {tmp_path}/bad.toml: rule 'oops': where 'spred_bps > 1' names unknown field(s) spred_bps"]


@pytest.mark.slow
def test_rules_backtest_command(day):
    done = cli("backtest", str(day / "r.toml"), "--from-date", DAY.isoformat(), "--dataset", str(day / "tier3"))
    assert done.returncode == 0, done.stderr
    _, _, expected = backtest(day / "r.toml", str(day / "tier3"), DAY.isoformat(), DAY.isoformat())
    assert [orjson.loads(line)["key"] for line in done.stdout.splitlines()] == [a["key"] for a in expected]
    assert f"on 144 entries of {day / 'tier3'}" in done.stderr
