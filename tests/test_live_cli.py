"""The ``live`` commands: tail, status, replay, simulate (exit codes, output, signals)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import polars as pl
import pytest

from instrumetriq_polars.cli import main
from instrumetriq_polars.live import TIER1_FIELDS

from .conftest import ROOT, SAMPLE, require_shared
from .support.appends import NAME, append, entry_line, member

CLI = [sys.executable, "-m", "instrumetriq_polars", "live"]


@pytest.fixture
def archive(tmp_path):
    root = tmp_path / "archive"
    append(root, NAME, b"".join(member(entry_line(i, symbol="ETHUSDT" if i % 2 else "BTCUSDT")) for i in range(4)))
    return root


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(["live", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_tail_no_follow_prints_each_entry_and_resumes_after_the_cursor(archive, tmp_path, capsys):
    state = tmp_path / "state"
    code, out, _ = run(capsys, "tail", "--archive-path", archive, "--state-dir", state, "--no-follow")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["seq"] for r in lines] == [1, 2, 3, 4]
    assert lines[0]["position"] == {"file": NAME, "start": 0, "end": len(member(entry_line(0))), "day": "2026-01-01", "hour": 5}
    assert lines[1]["row"]["symbol"] == "ETHUSDT" and lines[1]["late"] is False
    append(archive, NAME, member(entry_line(4)))
    code, out, _ = run(capsys, "tail", "--archive-path", archive, "--state-dir", state, "--no-follow")
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [5]  # after the acknowledged cursor
    code, out, _ = run(capsys, "tail", "--archive-path", archive, "--state-dir", state, "--no-follow", "--from-seq", 2,
                       "--symbols", "ETHUSDT", "--fields", "seq,symbol,mid", "--consumer", "other")
    assert [json.loads(line)["row"] for line in out.splitlines()] == [{"seq": 2, "symbol": "ETHUSDT", "mid": 101.0},
                                                                      {"seq": 4, "symbol": "ETHUSDT", "mid": 103.0}]
    code, out, _ = run(capsys, "tail", "--archive-path", archive, "--state-dir", state, "--no-follow", "--start", "beginning",
                       "--fields", "full", "--consumer", "raw")
    first = out.splitlines()[0].encode()
    assert first.endswith(b',"entry":' + entry_line(0).rstrip(b"\n") + b"}")
    assert json.loads(first)["entry"]["meta"]["session_id"] == json.loads(entry_line(0))["meta"]["session_id"]


def test_usage_errors_exit_2(archive, tmp_path, capsys):
    code, _, err = run(capsys, "tail", "--archive-path", archive, "--state-dir", tmp_path / "s", "--from-seq", 0)
    assert code == 2 and err.count("\n") == 1 and "--from-seq" in err
    code, _, err = run(capsys, "tail", "--archive-path", archive, "--state-dir", tmp_path / "s", "--from-seq", 1, "--start", "now")
    assert code == 2
    code, _, err = run(capsys, "simulate", "--count", 1)
    assert code == 2 and "--archive-path" in err
    code, _, err = run(capsys, "tail", "--archive-path", tmp_path / "nowhere", "--state-dir", tmp_path / "s2", "--no-follow")
    assert code == 1 and "does not exist" in err and "Traceback" not in err


def test_second_follower_of_a_state_folder_is_one_error_line(archive, tmp_path, capsys):
    from instrumetriq_polars.live.journal import StateLock

    state = tmp_path / "state"
    state.mkdir()
    with StateLock(str(state)):
        code, out, err = run(capsys, "tail", "--archive-path", archive, "--state-dir", state, "--no-follow")
    assert code == 1 and not out and "another follower" in err and err.count("\n") == 1


def test_status_exit_codes_and_json(archive, tmp_path, capsys):
    state = tmp_path / "state"
    code, _, err = run(capsys, "status", "--state-dir", state)
    assert code == 1 and "no live state folder" in err
    run(capsys, "tail", "--archive-path", archive, "--state-dir", state, "--no-follow")
    code, out, _ = run(capsys, "status", "--state-dir", state, "--json")
    result = json.loads(out)
    assert code == 0 and result["last_seq"] == 4 and result["bytes_behind"] == 0 and not result["problems"]
    append(archive, NAME, b"\x00junk" * 10 + member(entry_line(9)))  # damage, then an entry
    code, out, _ = run(capsys, "status", "--state-dir", state, "--json")
    assert code == 0 and json.loads(out)["bytes_behind"] > 0  # behind, within the lag allowed
    run(capsys, "tail", "--archive-path", archive, "--state-dir", state, "--no-follow")
    code, out, _ = run(capsys, "status", "--state-dir", state)
    assert code == 1 and "PROBLEM: damaged" in out and "last seq 5" in out
    code, out, _ = run(capsys, "status", "--state-dir", state, "--json", "--stale-after", 0)
    assert code == 1 and any(p.startswith("stale") for p in json.loads(out)["problems"])


def test_replay_jsonl_and_parquet(archive, tmp_path, capsys):
    state = tmp_path / "state"
    run(capsys, "tail", "--archive-path", archive, "--state-dir", state, "--no-follow")
    out_file = tmp_path / "r.jsonl"
    code, _, _ = run(capsys, "replay", "--state-dir", state, "--from-seq", 2, "--to-seq", 3, "--out", out_file)
    assert code == 0 and [json.loads(line)["seq"] for line in out_file.read_text().splitlines()] == [2, 3]
    parquet = tmp_path / "r.parquet"
    code, _, _ = run(capsys, "replay", "--state-dir", state, "--from-seq", 1, "--format", "parquet", "--out", parquet)
    frame = pl.read_parquet(parquet)
    assert code == 0 and frame["seq"].to_list() == [1, 2, 3, 4] and frame.schema["expired_ts"] == pl.Datetime("us", "UTC")
    assert not [p for p in os.listdir(tmp_path) if ".tmp." in p]


def test_simulate_writes_bursts_with_gzip_ab_and_logs_each_append(tmp_path, capsys):
    require_shared(SAMPLE)
    log = tmp_path / "sim.log"
    code, _, _ = run(capsys, "simulate", "--archive-path", tmp_path / "a", "--count", 30, "--rate", 0, "--speed", 20000,
                     "--start", "2026-01-01T23:50", "--log", log, "--faults", "junk")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    appends = [r for r in records if r["n"] is not None]
    assert code == 0 and len(appends) == 30 and [r["fault"] for r in records if r["n"] is None] == ["junk"]
    days = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert days == ["20260101", "20260102"]  # the fake clock crossed midnight
    for r in appends[:3]:
        with open(r["path"], "rb") as f:
            head = f.read(19)
        assert head[:4] == b"\x1f\x8b\x08\x08" and head[10:19] == os.path.basename(r["path"])[:-3].encode() + b"\0"


def test_tail_stops_on_sigterm_with_143(archive, tmp_path):
    proc = subprocess.Popen([*CLI, "tail", "--archive-path", str(archive), "--state-dir", str(tmp_path / "s"),
                             "--mode", "poll"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    first = proc.stdout.readline()
    assert json.loads(first)["seq"] == 1
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and b"Traceback" not in err and b"interrupted" in err


def test_every_tier1_field_is_documented():
    text = (ROOT / "docs" / "live.md").read_text()
    assert [name for name, *_ in TIER1_FIELDS if f"| `{name}` |" not in text] == []


def test_compact_command(archive, tmp_path, capsys):
    state = tmp_path / "state"
    run(capsys, "tail", "--archive-path", archive, "--state-dir", state, "--no-follow")
    code, out, _ = run(capsys, "compact", "--state-dir", state, "--keep-days", 0)
    assert code == 0 and out.startswith("dropped ") and "the oldest seq kept is 5" in out
    code, out, err = run(capsys, "tail", "--archive-path", archive, "--state-dir", state, "--no-follow", "--from-seq", 2)
    assert code == 1 and "no longer kept" in err
    code, _, err = run(capsys, "compact", "--state-dir", state, "--keep-days", -1)
    assert code == 2
