"""Crash safety: SIGKILL the export at random points; the destination is never torn.

After every kill the day folder holds the previous complete day, or nothing new, or (once the
manifest is in place) the new complete day: whenever ``manifest.json`` exists, ``data.parquet``
is exactly the file it describes (sha256 and size). Leftovers (temporary files, the lock file) are
cleaned by the next run, which succeeds.

Three starting states: an empty destination; the identical day already published (the run is a
no-op); a different day published and replaced with ``--force`` (a kill between removing the old
manifest and writing the new one leaves the day unpublished, never torn).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from instrumetriq_polars import export_day
from instrumetriq_polars.lock import LOCK_NAME
from instrumetriq_polars.sink import TEMP_MARKER
from instrumetriq_polars.synthetic import write_archive_day

from .conftest import DAY, ROOT

DATE = DAY.isoformat()
RANDOM_KILLS = 50
SCENARIOS = ("empty", "same", "replace")
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}

# Runs the CLI and SIGKILLs itself right before the N-th change the export makes to a file
# (CRASH_AT_STEP=N); CRASH_AT_STEP=0 only counts the changes and prints their number.
STEP_DRIVER = r"""
import os, signal, sys
from fsspec.implementations.local import LocalFileSystem
from instrumetriq_polars.cli import main

target, count = int(os.environ["CRASH_AT_STEP"]), 0

def crash_before(name, writes=lambda args, kwargs: True):
    original = getattr(LocalFileSystem, name)
    def wrapper(self, *args, **kwargs):
        global count
        if writes(args, kwargs):
            count += 1
            if count == target:
                os.kill(os.getpid(), signal.SIGKILL)
        return original(self, *args, **kwargs)
    setattr(LocalFileSystem, name, wrapper)

for name in ("rm_file", "mv", "makedirs"):
    crash_before(name)
crash_before("_open", lambda args, kwargs: "w" in (args[1] if len(args) > 1 else kwargs.get("mode", "rb")))
code = main(sys.argv[1:])
if target == 0:
    print(f"steps={count}", file=sys.stderr)
sys.exit(code)
"""


class World:
    """The archive, the destination templates per scenario, and what a complete export holds."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.archive = base / "archive"
        write_archive_day(self.archive, DAY, entries_per_hour=1, seed=7)
        other = base / "other_archive"
        write_archive_day(other, DAY, entries_per_hour=1, seed=8)
        self.templates = {"empty": base / "t_empty", "same": base / "t_same", "replace": base / "t_replace"}
        self.templates["empty"].mkdir()
        self.new_sha = export_day(DAY, str(self.archive), str(self.templates["same"])).manifest.parquet_sha256
        old = export_day(DAY, str(other), str(self.templates["replace"])).manifest.parquet_sha256
        assert old != self.new_sha
        self.old_manifest = {s: self._manifest_bytes(t) for s, t in self.templates.items()}
        self.counter = 0

    @staticmethod
    def _manifest_bytes(out: Path) -> bytes | None:
        path = out / DATE / "manifest.json"
        return path.read_bytes() if path.exists() else None

    def fresh_out(self, scenario: str) -> Path:
        self.counter += 1
        out = self.base / f"run{self.counter:03d}_{scenario}"
        shutil.copytree(self.templates[scenario], out)
        return out

    def command(self, out: Path, scenario: str) -> list[str]:
        args = ["export", "--date", DATE, "--archive-path", str(self.archive), "--out-dir", str(out)]
        return args + (["--force"] if scenario == "replace" else [])

    def check(self, out: Path, scenario: str) -> str:
        """The torn-day invariant. Returns what the folder holds: 'old', 'new' or 'nothing'."""
        folder = out / DATE
        names = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
        strays = [n for n in names if n not in ("data.parquet", "manifest.json", LOCK_NAME) and TEMP_MARKER not in n]
        assert not strays, f"{scenario}: unexpected files {strays}"
        if "manifest.json" not in names:
            assert scenario != "same", "a no-op run unpublished the day"
            return "nothing"
        raw = (folder / "manifest.json").read_bytes()
        manifest = json.loads(raw)  # complete JSON: it is moved into place whole
        data = (folder / "data.parquet").read_bytes()
        assert hashlib.sha256(data).hexdigest() == manifest["parquet_sha256"], f"{scenario}: torn day"
        assert len(data) == manifest["parquet_size_bytes"]
        if raw == self.old_manifest[scenario]:
            return "old"
        assert scenario != "same" and manifest["parquet_sha256"] == self.new_sha
        return "new"

    def next_run_succeeds(self, out: Path, scenario: str) -> None:
        result = export_day(DAY, str(self.archive), str(out), force=scenario == "replace")
        assert result.manifest.parquet_sha256 == self.new_sha
        assert self.check(out, scenario) in ("new", "old" if scenario == "same" else "new")
        assert sorted(p.name for p in (out / DATE).iterdir()) == ["data.parquet", "manifest.json"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World(tmp_path_factory.mktemp("crash"))


def _run_and_kill(world: World, out: Path, scenario: str, delay: float) -> bool:
    """Start the export, SIGKILL it after ``delay`` s; True if it was still running (a kill point)."""
    proc = subprocess.Popen([sys.executable, "-m", "instrumetriq_polars", *world.command(out, scenario)],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        proc.wait(timeout=delay)
        killed = False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        killed = True
    _, stderr = proc.communicate(timeout=120)
    if not killed:
        assert proc.returncode == 0, stderr.decode()
    return killed


def test_sigkill_at_random_points_never_tears_a_day(world):
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    started = time.perf_counter()
    out = world.fresh_out("empty")
    assert _run_and_kill(world, out, "empty", 300) is False  # one whole run: how long a run takes
    duration = time.perf_counter() - started
    assert world.check(out, "empty") == "new"

    plans = [(SCENARIOS[i % 3], rng.uniform(0.2, 1.05) * duration) for i in range(RANDOM_KILLS * 2)]
    outcomes: dict[str, set] = {s: set() for s in SCENARIOS}
    kill_points = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = iter(plans)
        while kill_points < RANDOM_KILLS:
            batch = [next(pending, None) for _ in range(2)]
            batch = [b for b in batch if b]
            assert batch, f"only {kill_points} kill points in {len(plans)} runs (seed {seed})"
            outs = [world.fresh_out(scenario) for scenario, _ in batch]
            killed = list(pool.map(lambda args: _run_and_kill(world, *args), [(o, s, d) for o, (s, d) in zip(outs, batch)]))
            for out, (scenario, delay), was_killed in zip(outs, batch, killed):
                state = world.check(out, scenario)
                outcomes[scenario].add(state)
                kill_points += was_killed
                leftovers = [p.name for p in (out / DATE).iterdir()] if (out / DATE).exists() else []
                if state != ("old" if scenario == "same" else "new") or set(leftovers) - {"data.parquet", "manifest.json"}:
                    world.next_run_succeeds(out, scenario)
                shutil.rmtree(out)
    assert kill_points >= RANDOM_KILLS
    print(f"seed {seed}: {kill_points} kill points, states {outcomes}")


def _step_run(world: World, scenario: str, step: int) -> subprocess.CompletedProcess:
    out = world.fresh_out(scenario)
    run = subprocess.run([sys.executable, "-c", STEP_DRIVER, *world.command(out, scenario)],
                         env={**ENV, "CRASH_AT_STEP": str(step)}, capture_output=True, text=True, timeout=120)
    run.out = out
    return run


@pytest.mark.parametrize("scenario", ["empty", "replace"])
def test_sigkill_before_each_file_change(world, scenario):
    """The publishing window is too short for random kills to hit often: kill the export right
    before each change it makes to a file (temporary data, old manifest removed, data moved,
    manifest written, manifest moved), then check the folder and that the next run succeeds."""
    counted = _step_run(world, scenario, 0)
    assert counted.returncode == 0, counted.stderr
    steps = int(counted.stderr.rsplit("steps=", 1)[1])
    assert steps >= (5 if scenario == "replace" else 4)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda step: _step_run(world, scenario, step), range(1, steps + 1)))
    states = []
    for run in runs:
        assert run.returncode == -signal.SIGKILL, run.stderr
        states.append(world.check(run.out, scenario))
        world.next_run_succeeds(run.out, scenario)
    # before publishing the old day (or nothing) is there; a kill inside publishing unpublishes it
    assert states[0] == ("old" if scenario == "replace" else "nothing") and "new" not in states
