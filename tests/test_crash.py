"""Crash safety: SIGKILL the export at random points; the destination is never torn.

After every kill the day folder holds the previous complete day, or nothing new, or (once the
manifest is in place) the new complete day: whenever ``manifest.json`` exists, ``data.parquet``
is exactly the file it describes (sha256 and size). Leftovers (temporary files, the lock file) are
cleaned by the next run, which succeeds.

Three starting states: an empty destination; the identical day already published (the run is a
no-op); a different day published and replaced with ``--force`` (a kill between removing the old
manifest and writing the new one leaves the day unpublished, never torn).

The random kills land inside the export, not while Python imports: each is timed from the progress
line just before it (``exporting ... from ...``, a random hour's line, or the last hour's line for
the short end where the sink closes and the day is published), and counts only if the process died
of it after ``exporting`` and before the summary line. The day is large enough (192 rows) that part
of the temporary data file is written while hours are still read. A folder a kill left in its
scenario's starting state is where the next run of that scenario starts, leftovers included, as
the next cron run would. The plan of kills comes from a fixed seed, ``KILL_SEED=<n>`` overrides it;
every assertion message names the seed (the exact instant of each kill still varies with load).
"""

from __future__ import annotations

import os
import random
import signal
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import date
from pathlib import Path

import pytest

from instrumetriq_polars import export_day
from instrumetriq_polars.write.lock import LOCK_NAME
from instrumetriq_polars.folder import TEMP_MARKER

from .conftest import DAY
from .support.kills import (
    LABEL, LAST_HOUR, MAX_RUNS, PHASE_MINIMUM, RANDOM_KILLS, SCENARIOS, SEED, STARTED, TARGET, Run, _calibrate, _kill_point,
    _names, _step_run, hour_line,
)


@pytest.mark.slow
def test_sigkill_at_random_points_never_tears_a_day(big_world):
    world, seed = big_world, SEED
    rng = random.Random(seed)
    spans = _calibrate(world, seed)
    windows = {STARTED: 0.6 * spans[STARTED], "hour": spans["hour"], LAST_HOUR: spans[LAST_HOUR]}
    first_windows = dict(windows)

    # Each kill is timed from the progress line just before it, so the machine's load moves it
    # little. In each block of 18 runs, shuffled, every scenario gets: one kill before the first
    # hour (lock, stale files, opening the archive), three while the hours are read and written
    # (after a random hour's line), two in the export's short end (the sink closing, publishing),
    # which uniform kills would rarely hit. A plan is a fraction of its window; a window that
    # proves too long (the kill came after its phase: the machine got faster than in the
    # calibration) shrinks. A kill after the summary line (the run was over) is checked, not counted.
    kinds = [STARTED, "hour", "hour", "hour", LAST_HOUR, LAST_HOUR]
    plans = []
    while len(plans) < MAX_RUNS:
        block = [(scenario, kind) for scenario in SCENARIOS for kind in kinds]
        rng.shuffle(block)
        for scenario, kind in block:
            trigger = hour_line(rng.randrange(23)) if kind == "hour" else kind
            fraction = rng.random()
            # the end: more kills late in the window, where the day is published (density 2x)
            plans.append((scenario, kind, trigger, fraction ** 0.5 if kind == LAST_HOUR else fraction))
    plans = iter(plans)
    outcomes: dict[str, Counter] = {s: Counter() for s in SCENARIOS}
    phases: Counter = Counter()
    left: Counter = Counter()
    missed: Counter = Counter()  # runs over before the kill, by kind of trigger
    chains: dict[str, list[Path]] = {s: [] for s in SCENARIOS}  # folders left in a scenario's starting state
    kill_points = runs = 0

    def enough() -> bool:
        return kill_points >= RANDOM_KILLS and all(phases[phase] >= n for phase, n in PHASE_MINIMUM.items())

    def start(pool) -> Future | None:
        plan = next(plans, None)
        if plan is None:
            return None
        scenario, kind, trigger, fraction = plan
        out = chains[scenario].pop() if chains[scenario] else world.fresh_out(scenario)
        run = Run(scenario, trigger, fraction * windows[kind], out, runs, _names(out))
        future = pool.submit(_kill_point, world, run, seed)
        future.run, future.kind = run, kind
        return future

    with ThreadPoolExecutor(max_workers=2) as pool:
        running = {f for f in (start(pool), start(pool)) if f}
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                run, kind, (state, names, kept) = future.run, future.kind, future.result()
                runs += 1
                outcomes[run.scenario][state] += 1
                if kept:
                    chains[run.scenario].append(run.out)
                left["runs that started from a killed run's temporary files"] += any(TEMP_MARKER in n for n in run.before)
                if run.in_export:
                    kill_points += 1
                    phases[run.phase] += 1
                    left["lock"] += LOCK_NAME in names
                    left["temporary data"] += any(n.startswith(".data.parquet" + TEMP_MARKER) for n in names)
                    left["data without manifest"] += "data.parquet" in names and "manifest.json" not in names
                    left["killed while publishing (data moved into place)"] += (
                        run.phase == "finishing and publishing" and run.scenario != "same"
                        and not any(n.startswith(".data.parquet") for n in names))
                else:
                    missed[LABEL[kind]] += 1
                overshot = not run.in_export or list(PHASE_MINIMUM).index(run.phase) > list(PHASE_MINIMUM).index(TARGET[kind])
                if overshot and kind != "hour":
                    windows[kind] = max(0.005, windows[kind] * 0.85)
                if not enough() and (nxt := start(pool)):
                    running.add(nxt)
        # the last run of each chain left something behind: the next run cleans it and publishes
        ends = [(scenario, out) for scenario, outs in chains.items() for out in outs]
        list(pool.map(lambda end: world.next_run_succeeds(end[1], end[0], f"seed {seed}, end of a {end[0]} chain"), ends))
    summary = (f"seed {seed}: {kill_points} kill points in {runs} runs (windows in ms, first/last: "
               + ", ".join(f"{LABEL[kind]} {first_windows[kind] * 1000:.0f}/{windows[kind] * 1000:.0f}" for kind in windows)
               + f"; over before the kill: {dict(missed)}); phases {dict(phases)}; left behind {dict(left)}; "
               f"states {({s: dict(c) for s, c in outcomes.items()})}")
    print(summary)
    assert kill_points >= RANDOM_KILLS, summary
    # the kills reached every part of the export, not only its start
    assert all(phases[phase] >= n for phase, n in PHASE_MINIMUM.items()), summary
    assert left["temporary data"] >= 10 and left["lock"] >= 10, summary
    assert left["runs that started from a killed run's temporary files"] >= 10, summary


@pytest.mark.parametrize("scenario", [pytest.param("empty", marks=pytest.mark.slow), "replace"])
def test_sigkill_before_each_file_change(world, scenario):
    """The publishing window is too short for random kills to hit often: kill the export right
    before each change it makes to a file (temporary data, old manifest removed, data moved,
    manifest written, manifest moved), then check the folder and that the next run succeeds."""
    counted = _step_run(world, scenario, 0)
    assert counted.returncode == 0, f"{scenario}, counting run: {counted.stderr}"
    steps = int(counted.stderr.rsplit("steps=", 1)[1])
    assert steps >= (5 if scenario == "replace" else 4), f"{scenario}: only {steps} file changes"
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda step: _step_run(world, scenario, step), range(1, steps + 1)))
    states = []
    for step, run in enumerate(runs, 1):
        context = f"{scenario}, killed before file change {step} of {steps}"
        assert run.returncode == -signal.SIGKILL, f"{context}: {run.stderr}"
        states.append(world.check(run.out, scenario, context))
        world.next_run_succeeds(run.out, scenario, context)
    # before publishing the old day (or nothing) is there; a kill inside publishing unpublishes it
    assert states[0] == ("old" if scenario == "replace" else "nothing") and "new" not in states, f"{scenario}: {states}"


def test_a_local_publish_reaches_the_disk_in_order(small_archive, tmp_path, monkeypatch):
    """Durability across a power cut (which SIGKILL tests cannot show): every rename is preceded by
    an fsync of what it names, and followed by an fsync of the folder, so the disk never holds a
    manifest whose data (or its name) is missing. Replacing a day also fsyncs the old manifest's
    removal first."""
    import fsspec.implementations.local as local

    events: list[tuple[str, str]] = []
    real_fsync, real_mv = os.fsync, local.LocalFileSystem.mv

    def fsync(fd):
        events.append(("fsync", os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))))
        return real_fsync(fd)

    def mv(self, src, dst, *args, **kwargs):
        events.append(("rename", os.path.basename(dst)))
        return real_mv(self, src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(local.LocalFileSystem, "mv", mv)
    out = tmp_path / "out"
    day = DAY.isoformat()
    for force in (False, True):
        events.clear()
        export_day(DAY, str(small_archive), str(out), today=date(2026, 1, 16), force=force, layout="nested" if force else "flat")
        renames = [i for i, e in enumerate(events) if e[0] == "rename"]
        assert [events[i][1] for i in renames] == ["data.parquet", "manifest.json"], events
        data_mv, manifest_mv = renames
        assert ("fsync", day) in events[manifest_mv + 1:], "the manifest's rename must be flushed"
        assert ("fsync", day) in events[data_mv + 1:manifest_mv], "the data's rename must be flushed before the manifest is written"
        synced_files = [name for kind, name in events[:data_mv] if kind == "fsync" and name != day]
        assert synced_files and all(TEMP_MARKER in name for name in synced_files), events  # the data, under its temporary name
        assert any(kind == "fsync" and TEMP_MARKER in name for kind, name in events[data_mv + 1:manifest_mv]), "the manifest's content first"
        if force:  # replacing: the old manifest's removal is on disk before the new data takes the name
            assert ("fsync", day) in events[:data_mv], events
