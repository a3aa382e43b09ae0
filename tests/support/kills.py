"""Killing the export CLI at chosen points, and checking what the kill left: the machinery of
tests/test_crash.py (SIGKILL) and tests/test_signals.py (SIGTERM, SIGINT). A ``World`` holds the
archive and a destination per starting scenario; conftest's ``world`` and ``big_world`` build one
per module."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from instrumetriq_polars import export_day
from instrumetriq_polars.write.lock import LOCK_NAME
from instrumetriq_polars.folder import TEMP_MARKER
from instrumetriq_polars.synthetic import write_archive_day

ROOT = Path(__file__).resolve().parent.parent.parent
DAY = date(2026, 1, 15)
DATE = DAY.isoformat()
FOLDER = DAY.strftime("%Y%m%d")
RANDOM_KILLS = 50  # kill points that landed inside the export
MAX_RUNS = 4 * RANDOM_KILLS
SEED = int(os.environ.get("KILL_SEED", "20260115"))
#: Entries an hour of the random-kill day: 24 * 8 = 192 rows, more than one Parquet row group (128),
#: so part of the temporary data file is written while the hours are still read (after hour ~16).
ENTRIES_PER_HOUR = 8
SCENARIOS = ("empty", "same", "replace")
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
       "PYTHONUNBUFFERED": "1"}  # progress and summary reach the pipe as they are printed
STARTED = "exporting "  # the CLI's first line once it is importing no more: export_day starts
LAST_HOUR = f"  {FOLDER}/23.jsonl.gz: "  # the last hour is built: the sink finishes, then publishing
SUMMARY = f"{DATE}: "  # "published ..." / "already published ...": the export is over

# Runs the CLI and SIGKILLs itself right before the N-th change the export makes to a file
# (CRASH_AT_STEP=N; CRASH_SIGNAL=SIGTERM sends that signal instead, see test_signals.py);
# CRASH_AT_STEP=0 only counts the changes and prints their number.
STEP_DRIVER = r"""
import os, signal, sys
from fsspec.implementations.local import LocalFileSystem
from instrumetriq_polars.cli import main

target, count = int(os.environ["CRASH_AT_STEP"]), 0
sent = getattr(signal, os.environ.get("CRASH_SIGNAL", "SIGKILL"))

def crash_before(name, writes=lambda args, kwargs: True):
    original = getattr(LocalFileSystem, name)
    def wrapper(self, *args, **kwargs):
        global count
        if writes(args, kwargs):
            count += 1
            if count == target:
                os.kill(os.getpid(), sent)
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

    def __init__(self, base: Path, entries_per_hour: int) -> None:
        self.base = base
        self.archive = base / "archive"
        write_archive_day(self.archive, DAY, entries_per_hour=entries_per_hour, seed=7)
        other = base / "other_archive"
        write_archive_day(other, DAY, entries_per_hour=entries_per_hour, seed=8)
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

    def check(self, out: Path, scenario: str, context: str) -> str:
        """The torn-day invariant. Returns what the folder holds: 'old', 'new' or 'nothing'.
        ``context`` (seed, scenario, kill point) starts every assertion message."""
        folder = out / DATE
        names = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
        strays = [n for n in names if n not in ("data.parquet", "manifest.json", LOCK_NAME) and TEMP_MARKER not in n]
        assert not strays, f"{context}: unexpected files {strays}"
        if "manifest.json" not in names:
            assert scenario != "same", f"{context}: a no-op run unpublished the day ({names})"
            return "nothing"
        raw = (folder / "manifest.json").read_bytes()
        try:
            manifest = json.loads(raw)  # complete JSON: it is moved into place whole
        except ValueError as exc:
            raise AssertionError(f"{context}: manifest.json is not complete JSON ({exc})") from None
        assert "data.parquet" in names, f"{context}: a manifest without data.parquet ({names})"
        data = (folder / "data.parquet").read_bytes()
        assert hashlib.sha256(data).hexdigest() == manifest["parquet_sha256"], f"{context}: torn day (sha256 differs)"
        assert len(data) == manifest["parquet_size_bytes"], f"{context}: torn day (size differs)"
        if raw == self.old_manifest[scenario]:
            return "old"
        assert scenario != "same", f"{context}: a no-op run rewrote the manifest"
        assert manifest["parquet_sha256"] == self.new_sha, f"{context}: published data is neither the old day nor the new"
        return "new"

    def next_run_succeeds(self, out: Path, scenario: str, context: str) -> None:
        """The next run cleans whatever the killed one left and publishes the new day."""
        context = f"{context}, next run"
        result = export_day(DAY, str(self.archive), str(out), force=scenario == "replace")
        assert result.manifest.parquet_sha256 == self.new_sha, context
        assert self.check(out, scenario, context) == ("old" if scenario == "same" else "new"), context
        names = sorted(p.name for p in (out / DATE).iterdir())
        assert names == ["data.parquet", "manifest.json"], f"{context}: leftovers not cleaned: {names}"


@dataclass
class Run:
    """One export run, maybe SIGKILLed (or sent ``sent``) ``delay`` s after its output showed ``trigger``."""

    scenario: str
    trigger: str
    delay: float
    out: Path
    number: int = 0
    before: frozenset = frozenset()  # what the day folder held when the run started
    returncode: int | None = None
    output: str = ""  # stdout + stderr: everything the process printed before it ended
    sent: int = signal.SIGKILL

    @property
    def killed(self) -> bool:
        """It ended because of the signal: died of it, or stopped for it (exit 128 + the signal)."""
        return self.returncode in (-self.sent, 128 + self.sent)

    @property
    def hours_done(self) -> int:
        return sum(line.startswith(f"  {FOLDER}/") for line in self.output.splitlines())

    @property
    def in_export(self) -> bool:
        """A kill point: the process died of the kill between ``exporting`` and the summary."""
        lines = self.output.splitlines()
        return (self.killed and any(line.startswith(STARTED) for line in lines)
                and not any(line.startswith(SUMMARY) for line in lines))

    @property
    def phase(self) -> str:
        if self.hours_done == 0:
            return "before the first hour"
        return "while hours were written" if self.hours_done < 24 else "finishing and publishing"

    def describe(self, seed: int) -> str:
        leftovers = sorted(self.before - {"data.parquet", "manifest.json"})
        return (f"seed {seed} (KILL_SEED={seed} replays the plan), run {self.number}: {self.scenario} (started with "
                f"leftovers {leftovers}), kill {self.delay * 1000:.0f} ms after {self.trigger!r}: {self.phase} "
                f"({self.hours_done}/24 hours printed, exit {self.returncode})")


def _run_and_kill(world: World, run: Run, seed: int) -> Run:
    """Start the export; once its output shows ``run.trigger``, wait ``run.delay`` s and SIGKILL it
    (or send ``run.sent``) unless it has ended. The output the process left in the pipe tells where
    it was when it died."""
    proc = subprocess.Popen([sys.executable, "-m", "instrumetriq_polars", *world.command(run.out, run.scenario)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = []
    try:
        for line in iter(proc.stdout.readline, b""):
            seen.append(line)
            if line.decode().startswith(run.trigger):
                try:
                    proc.wait(timeout=run.delay)
                except subprocess.TimeoutExpired:
                    proc.send_signal(run.sent)  # a no-op if it ended in between: the return code tells
                break
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    run.returncode = proc.returncode
    run.output = (b"".join(seen) + rest).decode(errors="replace")
    if not run.killed:
        assert run.returncode == 0, f"{run.describe(seed)}: the export failed:\n{run.output}"
    return run


def hour_line(hour: int) -> str:
    return f"  {FOLDER}/{hour:02d}.jsonl.gz: "


def _calibrate(world: World, seed: int) -> dict[str, float]:
    """Two whole runs side by side (the load of the test): how long from ``exporting`` to the
    first hour's line, from one hour's line to the next, and from the last hour's to the summary."""
    def timed(out: Path) -> dict[str, float]:
        proc = subprocess.Popen([sys.executable, "-m", "instrumetriq_polars", *world.command(out, "empty")],
                                env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        at = {}
        for line in iter(proc.stdout.readline, b""):
            for mark in (STARTED, hour_line(0), LAST_HOUR, SUMMARY):
                if line.decode().startswith(mark):
                    at.setdefault(mark, time.perf_counter())
        assert proc.wait(timeout=120) == 0, f"seed {seed}: a whole run failed"
        assert len(at) == 4, f"seed {seed}: progress lines missing: {list(at)}"
        assert world.check(out, "empty", f"seed {seed}, whole run") == "new"
        return {STARTED: at[hour_line(0)] - at[STARTED], "hour": (at[LAST_HOUR] - at[hour_line(0)]) / 23,
                LAST_HOUR: at[SUMMARY] - at[LAST_HOUR]}

    with ThreadPoolExecutor(max_workers=2) as pool:
        spans = list(pool.map(timed, [world.fresh_out("empty") for _ in range(2)]))
    return {mark: sum(span[mark] for span in spans) / len(spans) for mark in spans[0]}


START = {"empty": "nothing", "same": "old", "replace": "old"}  # what each scenario starts from
END = {"empty": "new", "same": "old", "replace": "new"}  # what a whole run leaves


def _names(out: Path) -> frozenset:
    folder = out / DATE
    return frozenset(p.name for p in folder.iterdir()) if folder.exists() else frozenset()


def _kill_point(world: World, run: Run, seed: int) -> tuple[str, frozenset, bool]:
    """Run, maybe kill, check the folder. A folder left in the scenario's starting state (with
    whatever the kill left behind) is kept: the next run of that scenario starts from it, like the
    next cron run would, and must clean it. Otherwise the next run is made here and must clean up
    and publish. Returns the state after the kill, the names in the folder and whether it is kept."""
    _run_and_kill(world, run, seed)
    context = run.describe(seed)
    state = world.check(run.out, run.scenario, context)
    after = _names(run.out)
    if not run.in_export:  # the export was over: published (or a no-op), nothing left behind
        assert state == END[run.scenario], f"{context}: the run was over, yet the folder holds {state}"
        assert after == {"data.parquet", "manifest.json"}, f"{context}: a finished run left {sorted(after)}"
    if run.hours_done or not run.killed:  # past the removal of dead runs' temporary files
        stale = {n for n in run.before if TEMP_MARKER in n} & after
        assert not stale, f"{context}: temporary files of a dead run were not removed: {sorted(stale)}"
    if state == START[run.scenario]:
        return state, after, True
    if state != END[run.scenario] or after - {"data.parquet", "manifest.json"}:
        world.next_run_succeeds(run.out, run.scenario, context)
    shutil.rmtree(run.out)
    return state, after, False


#: Kill points each part of the export must get (besides RANDOM_KILLS in all).
PHASE_MINIMUM = {"before the first hour": 2, "while hours were written": 10, "finishing and publishing": 5}
#: The phase a kill timed from each kind of progress line is meant for.
TARGET = {STARTED: "before the first hour", "hour": "while hours were written", LAST_HOUR: "finishing and publishing"}
LABEL = {STARTED: "from 'exporting'", "hour": "from an hour", LAST_HOUR: "from the last hour"}


def _step_run(world: World, scenario: str, step: int, sent: str = "SIGKILL") -> subprocess.CompletedProcess:
    out = world.fresh_out(scenario)
    run = subprocess.run([sys.executable, "-c", STEP_DRIVER, *world.command(out, scenario)],
                         env={**ENV, "CRASH_AT_STEP": str(step), "CRASH_SIGNAL": sent}, capture_output=True, text=True, timeout=120)
    run.out = out
    return run
