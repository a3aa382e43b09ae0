"""``kill -9`` of the follower at random points while the simulator writes: the journal holds
exactly seq 1..N, each session_id once, the same seq -> entry mapping as a run without kills; the
consumer (``live tail``) sees no gap (at-least-once: an entry printed but not acknowledged may be
printed again after the kill)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

import pytest

from instrumetriq_polars import live
from instrumetriq_polars.live.journal import read_records

from .conftest import SAMPLE, require_shared

CLI = [sys.executable, "-m", "instrumetriq_polars", "live"]


def _tail(archive, state, out_path):
    with open(out_path, "wb") as out:
        return subprocess.Popen([*CLI, "tail", "--archive-path", str(archive), "--state-dir", str(state),
                                 "--mode", "poll", "--poll-interval", "0.02", "--fields", "seq,session_id"],
                                stdout=out, stderr=subprocess.DEVNULL)


def _printed(path) -> list[tuple[int, str]]:
    rows = []
    for line in open(path, "rb").read().split(b"\n"):
        try:
            value = json.loads(line)
        except ValueError:  # the last line of a killed run may be torn
            continue
        rows.append((value["seq"], value["row"]["session_id"]))
    return rows


def run_with_kills(tmp_path, kills: int, count: int, rate: float, seed: int):
    require_shared(SAMPLE)
    archive, state = tmp_path / "archive", tmp_path / "state"
    archive.mkdir()
    sim_log = tmp_path / "sim.log"
    simulator = subprocess.Popen([*CLI, "simulate", "--archive-path", str(archive), "--count", str(count), "--rate", str(rate),
                                  "--speed", "3600", "--start", "2026-01-01T22:50", "--log", str(sim_log)],
                                 stderr=subprocess.DEVNULL)
    rng = random.Random(seed)
    outputs = []
    try:
        for k in range(kills):
            outputs.append(tmp_path / f"tail{k}.out")
            proc = _tail(archive, state, outputs[-1])
            time.sleep(rng.uniform(0.05, 2.0))
            proc.kill()  # SIGKILL
            proc.wait()
    finally:
        assert simulator.wait(timeout=600) == 0
    outputs.append(tmp_path / "final.out")
    final = subprocess.run([*CLI, "tail", "--archive-path", str(archive), "--state-dir", str(state), "--no-follow",
                            "--fields", "seq,session_id"], stdout=open(outputs[-1], "wb"), stderr=subprocess.PIPE, timeout=600)
    assert final.returncode == 0, final.stderr
    appended = [json.loads(line)["session_id"] for line in sim_log.read_text().splitlines()]
    return archive, state, outputs, appended


def check(tmp_path, archive, state, outputs, appended):
    records = [r for _, r in read_records(str(state)) if r.get("k") == "e"]
    n = len(appended)
    assert [r["seq"] for r in records] == list(range(1, n + 1))  # no gap, no duplicate
    assert [r["sid"] for r in records] == appended  # each entry once, in the order appended
    reference = [(e.seq, e.session_id) for b in live.follow(str(archive), str(tmp_path / "clean"), start="beginning",
                                                             follow=False) for e in b.entries]
    assert reference == [(r["seq"], r["sid"]) for r in records]  # the mapping of a run without kills
    seen, last = set(), 0
    for path in outputs:
        printed = _printed(path)
        seqs = [s for s, _ in printed]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True  # no gap within a run
        if seqs:
            assert seqs[0] <= last + 1  # resumes at or before the first entry not acknowledged
            last = max(last, seqs[-1])
        seen.update(printed)
    assert sorted(seen) == [(r["seq"], r["sid"]) for r in records]


def test_three_kills(tmp_path):
    check(tmp_path, *run_with_kills(tmp_path, kills=3, count=40, rate=25, seed=1))


@pytest.mark.slow
def test_fifty_kills_at_random_points(tmp_path):
    check(tmp_path, *run_with_kills(tmp_path, kills=50, count=500, rate=8, seed=2))
