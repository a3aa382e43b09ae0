"""Alert rules: loading (one error naming the rule), each kind's Prometheus states on event time,
for / keep_firing_for / cooldown, state kept across a restart, live pushes equal a backtest."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
import polars as pl
import pytest

from instrumetriq_polars.errors import RuleError
from instrumetriq_polars.live.alerts import AlertEngine
from instrumetriq_polars.live.rules import load_rules, parse_duration, parse_rules

SCHEMA = {"symbol": pl.String, "expired_ts": pl.Datetime("us", "UTC"), "mid": pl.Float64,
          "spread_bps": pl.Float64, "sentiment_mean": pl.Float64}
T0 = datetime(2026, 1, 15, 10, 0, tzinfo=timezone.utc)


def rows(*items) -> pl.DataFrame:
    """(minutes after T0, symbol, mid, spread_bps[, sentiment]) -> a tier1-like frame."""
    data = [{"symbol": s, "expired_ts": T0 + timedelta(minutes=m), "mid": mid, "spread_bps": sp,
             "sentiment_mean": rest[0] if rest else 0.0} for m, s, mid, sp, *rest in items]
    return pl.DataFrame(data, schema=SCHEMA)


def ruleset(text: str):
    import tomllib
    return parse_rules(tomllib.loads(text), SCHEMA, "r.toml")


def run(engine: AlertEngine, *frames) -> list[tuple]:
    out = []
    for frame in frames:
        out += engine.push(frame)
    out += engine.flush()
    return [(a["rule"], a["status"], a["labels"].get("symbol"), a["at"][11:16]) for a in out]


WIDE = """
[[rule]]
name = "wide_spread"
where = "spread_bps > 50"
group_by = ["symbol"]
for = "20m"
keep_firing_for = "10m"
cooldown = "30m"
summary = "{symbol} spread {spread_bps:.0f} bps"
"""


def test_durations():
    assert parse_duration("1h30m", "for") == 5400
    assert parse_duration("90s", "for") == 90
    assert parse_duration(15, "for") == 15
    for bad in ("10x", "", "-5m", True, -1):
        with pytest.raises(ValueError):
            parse_duration(bad, "for")


@pytest.mark.parametrize("body, words", [
    ('name = "a"\nwhere = "spread_bps >"', ["rule 'a'", "where", "not a Polars SQL expression"]),
    ('name = "b"\nwhere = "nosuch > 1"', ["rule 'b'", "unknown field(s) nosuch"]),
    ('name = "c"\nwhere = "mid + 1"', ["rule 'c'", "must be a condition"]),
    ('name = "d"\nkind = "window"\nwhere = "n > 1"\nselect = "count(*) AS n"', ["rule 'd'", "window ="]),
    ('name = "e"\nwhere = "mid > 1"\nfor = "soon"', ["rule 'e'", "for must be a duration"]),
    ('name = "f"\nwhere = "mid > 1"\nnotify = ["pager"]', ["rule 'f'", "[notifier.pager]"]),
    ('name = "g"\nwhere = "mid > 1"\nsummary = "{price}"', ["rule 'g'", "{price}"]),
    ('name = "h"\nwhere = "mid > 1"\ncolour = "red"', ["rule 'h'", "unknown key(s) colour"]),
    ('name = "i"\nkind = "absent"', ["rule 'i'", "after ="]),
    ('name = "j"\nkind = "window"\nwindow = "1h"\nselect = "avg(mid) AS m"\nwhere = "q > 1"', ["rule 'j'", "unknown field(s) q"]),
])
def test_a_bad_rule_is_one_error_naming_it(tmp_path, body, words):
    path = tmp_path / "r.toml"
    path.write_text("[[rule]]\n" + body + "\n")
    with pytest.raises(RuleError) as info:
        load_rules(path, SCHEMA)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    for word in words:
        assert word in message
    assert info.value.path == str(path)


def test_file_errors(tmp_path):
    with pytest.raises(RuleError, match="cannot read"):
        load_rules(tmp_path / "missing.toml", SCHEMA)
    (tmp_path / "bad.toml").write_text("[[rule]\n")
    with pytest.raises(RuleError, match="not valid TOML"):
        load_rules(tmp_path / "bad.toml", SCHEMA)
    (tmp_path / "dup.toml").write_text('[[rule]]\nname="x"\nwhere="mid>1"\n[[rule]]\nname="x"\nwhere="mid>2"\n')
    with pytest.raises(RuleError, match="rule 'x'.*unique") as info:
        load_rules(tmp_path / "dup.toml", SCHEMA)
    assert info.value.rule == "x"


def test_entry_rule_for_keep_firing_for_and_cooldown():
    engine = AlertEngine(ruleset(WIDE), wall_clock=False)
    got = run(engine, rows(
        (0, "A", 1.0, 60.0), (0, "B", 1.0, 10.0),
        (10, "A", 1.0, 70.0),            # pending 10 min
        (20, "A", 1.0, 80.0),            # for (20 m) reached: firing at 10:20
        (30, "A", 1.0, 5.0),             # false: keep_firing_for 10 m starts
        (40, "A", 1.0, 5.0),             # 10 m since: resolved at 10:40, cooldown until 11:10
        (50, "A", 1.0, 90.0),            # true again: pending since 10:50
        (60, "B", 1.0, 0.0),             # A's condition still holds (no new A entry)
        (70, "A", 1.0, 90.0),            # for reached at 11:10, cooldown over at 11:10: firing
    ))
    assert got == [("wide_spread", "firing", "A", "10:20"), ("wide_spread", "resolved", "A", "10:40"),
                   ("wide_spread", "firing", "A", "11:10")]


def test_cooldown_holds_back_a_second_firing():
    text = WIDE.replace('for = "20m"', 'for = "0s"').replace('cooldown = "30m"', 'cooldown = "1h"')
    engine = AlertEngine(ruleset(text), wall_clock=False)
    got = run(engine, rows((0, "A", 1.0, 60.0), (10, "A", 1.0, 1.0), (20, "A", 1.0, 1.0),
                           (30, "A", 1.0, 60.0), (80, "A", 1.0, 60.0), (90, "A", 1.0, 61.0)))
    # fires at once, resolves 10 m after going false (keep_firing_for), is held pending until 11:20
    assert got == [("wide_spread", "firing", "A", "10:00"), ("wide_spread", "resolved", "A", "10:20"),
                   ("wide_spread", "firing", "A", "11:20")]
    summary = [a for a in engine.alerts() if a["status"] == "firing"][0]["summary"]
    assert summary == "A spread 61 bps"  # the latest matching entry's values


WINDOW = """
[notifier.hook]
type = "webhook"
url = "http://127.0.0.1:9/hook"

[[rule]]
name = "mid_jump"
kind = "window"
window = "30m"
select = ["max(mid) / min(mid) - 1 AS change", "count(*) AS n"]
where = "change > 0.05 AND n >= 2"
group_by = "symbol"
severity = "critical"
summary = "{symbol} moved {change:.1%} over {n} entries"
notify = ["sse", "hook"]
"""


def test_window_rule_slides_on_event_time():
    engine = AlertEngine(ruleset(WINDOW), wall_clock=False)
    got = run(engine, rows((0, "A", 100.0, 1.0), (10, "A", 101.0, 1.0), (20, "A", 107.0, 1.0),
                           (35, "A", 107.5, 1.0),   # window (10:05, 10:35]: 101..107.5: still > 5 %
                           (55, "A", 107.6, 1.0),   # (10:25, 10:55]: 107.5..107.6: resolved
                           (60, "B", 1.0, 1.0)))
    assert got == [("mid_jump", "firing", "A", "10:20"), ("mid_jump", "resolved", "A", "10:55")]
    assert engine.ruleset.notifiers["hook"].url == "http://127.0.0.1:9/hook"


ABSENT = """
[[rule]]
name = "feed_silent"
kind = "absent"
after = "25m"
summary = "no entry for {silent_s}s"

[[rule]]
name = "symbol_gone"
kind = "absent"
after = "15m"
group_by = ["symbol"]
"""


def test_absent_rule_on_event_time_in_a_backtest():
    engine = AlertEngine(ruleset(ABSENT), wall_clock=False)
    got = run(engine, rows((0, "A", 1.0, 1.0), (0, "B", 1.0, 1.0), (10, "A", 1.0, 1.0),
                           (20, "A", 1.0, 1.0), (60, "A", 1.0, 1.0), (70, "B", 1.0, 1.0)))
    # the backtest's clock stops where each silence reaches `after`, as a wall clock would
    assert got == [("symbol_gone", "firing", "B", "10:15"), ("symbol_gone", "firing", "A", "10:35"),
                   ("feed_silent", "firing", None, "10:45"),
                   ("feed_silent", "resolved", None, "11:00"), ("symbol_gone", "resolved", "A", "11:00"),
                   ("symbol_gone", "resolved", "B", "11:10")]


def test_absent_rule_on_the_wall_clock_live():
    engine = AlertEngine(ruleset(ABSENT), wall_clock=True, settle_s=1)
    engine.push(rows((0, "A", 1.0, 1.0)), now=1000.0)
    assert [a["rule"] for a in engine.tick(1000.0 + 15 * 60)] == ["symbol_gone"]
    fired = engine.tick(1000.0 + 25 * 60)
    assert [(a["rule"], a["status"]) for a in fired] == [("feed_silent", "firing")]
    engine.push(rows((30, "A", 1.0, 1.0)), now=1000.0 + 26 * 60)
    resolved = engine.tick(1000.0 + 27 * 60)
    assert sorted((a["rule"], a["status"]) for a in resolved) == [("feed_silent", "resolved"), ("symbol_gone", "resolved")]


def test_live_pushes_in_pieces_equal_a_backtest_and_a_restart_repeats_nothing():
    text = WIDE + WINDOW.split("[[rule]]", 1)[0].replace("[notifier.hook]", "[notifier.hook2]") + "[[rule]]" + WINDOW.split("[[rule]]", 1)[1]
    rules = ruleset(text.replace('notify = ["sse", "hook"]', 'notify = ["sse", "hook2"]'))
    items = []
    for minute in range(0, 240, 10):
        for number, symbol in enumerate("ABCD"):
            mid = 100 + ((minute * (number + 1)) % 17)
            spread = 60.0 if (minute // 30 + number) % 3 == 0 else 10.0
            items.append((minute, symbol, float(mid), spread))
    whole = rows(*items)
    backtest = AlertEngine(rules, wall_clock=False)
    expected = backtest.push(whole) + backtest.flush()
    assert len(expected) > 6
    live = AlertEngine(rules, wall_clock=True, settle_s=2)
    got, now = [], 0.0
    for index in range(0, whole.height, 3):   # bursts split over several pushes
        now += 0.5
        got += live.push(whole.slice(index, 3), now=now)
        if index == 48:  # restart: state written out and read back
            state = orjson.loads(orjson.dumps(live.state()))
            live = AlertEngine(rules, wall_clock=True, settle_s=2, state=state)
    got += live.tick(now + 5)
    assert [a["key"] for a in got] == [a["key"] for a in expected]
    assert got == expected
    assert len({a["key"] for a in got}) == len(got)
