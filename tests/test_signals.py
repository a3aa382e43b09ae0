"""SIGTERM (cron timeouts, systemd) and SIGINT (Ctrl-C) stop an export cleanly.

On either signal the export stops at the next safe point, discards what it did not publish,
releases the lock, prints one line ``error: DAY: interrupted; ...`` saying truthfully what it had
published, and exits 143 or 130. Nothing is left behind: no temporary file, no lock file, no
empty day folder, no unfinished upload; the day is the old one, or nothing, or (when the signal
came while it was being published) the new one.

Real signals, as ``test_crash.py`` sends SIGKILL: at random points timed from the progress lines
(its ``World``, ``Run`` and calibration), right before each file change the export makes (its
step driver), and at chosen points of an upload and of a run of several days.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest

from instrumetriq_polars.synthetic import write_archive_day

from .support.kills import (
    DATE, END, ENV, LAST_HOUR, SCENARIOS, SEED, STARTED, START, Run, World, _calibrate, _run_and_kill, _step_run,
    hour_line,
)
from .support.s3 import BUCKET, KEY_ID, SECRET, uploads

SIGNAL_RUNS = 16  # random signal runs (half SIGTERM, half SIGINT)
CLEAN = {"data.parquet", "manifest.json"}


def _claim(output: str, sent: int, context: str) -> str:
    """What the one ``interrupted`` line says was published: "nothing" or "new"."""
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == output.rstrip("\n").splitlines()[-1], f"{context}: {output}"
    name = signal.Signals(sent).name
    match = re.fullmatch(rf"error: {DATE}: interrupted; (nothing published|(\S+) published before it stopped) \({name}\)", errors[0])
    assert match, f"{context}: {errors[0]!r}"
    return "nothing" if match.group(1) == "nothing published" else "new"


def _check_stopped(world: World, run: Run, context: str) -> None:
    """A run that ended on the signal: exit code, one truthful line, nothing left behind."""
    assert "Traceback" not in run.output, f"{context}:\n{run.output}"
    assert run.returncode == 128 + run.sent, f"{context}: exit {run.returncode}:\n{run.output}"
    state = world.check(run.out, run.scenario, context)
    names = set(os.listdir(run.out / DATE)) if (run.out / DATE).exists() else set()
    assert names <= CLEAN and names != {"data.parquet"}, f"{context}: left behind {sorted(names)}"
    claim = _claim(run.output, run.sent, context)
    if claim == "nothing":
        assert state == START[run.scenario], f"{context}: said nothing was published, the folder holds {state}"
    else:
        assert state == "new", f"{context}: said the day was published, the folder holds {state}"
        assert any(line.startswith(f"{DATE}: published: ") for line in run.output.splitlines()), f"{context}: no summary line"


@pytest.mark.slow
def test_signals_at_random_points_stop_cleanly(big_world):
    world, seed = big_world, SEED
    rng = random.Random(seed)
    spans = _calibrate(world, seed)
    windows = {STARTED: 0.6 * spans[STARTED], "hour": spans["hour"], LAST_HOUR: spans[LAST_HOUR]}
    runs = []
    for number in range(SIGNAL_RUNS):
        kind = rng.choice([STARTED, "hour", "hour", LAST_HOUR])
        trigger = hour_line(rng.randrange(23)) if kind == "hour" else kind
        scenario = rng.choice(SCENARIOS)
        sent = signal.SIGTERM if number % 2 else signal.SIGINT
        runs.append(Run(scenario, trigger, rng.random() * windows[kind], world.fresh_out(scenario), number, sent=sent))
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(lambda run: _run_and_kill(world, run, seed), runs))
    stopped = 0
    for run in done:
        context = run.describe(seed) + f" ({signal.Signals(run.sent).name})"
        stopped += run.in_export
        if run.in_export or run.returncode == 128 + run.sent:  # stopped by it (maybe once the day was published)
            _check_stopped(world, run, context)
        else:  # the signal came once the run was over, or as the process exited: a whole run
            assert run.returncode in (0, -run.sent), f"{context}:\n{run.output}"
            assert world.check(run.out, run.scenario, context) == END[run.scenario], context
            assert set(os.listdir(run.out / DATE)) == CLEAN, f"{context}:\n{run.output}"
        world.next_run_succeeds(run.out, run.scenario, context)
    assert stopped >= SIGNAL_RUNS // 2, f"seed {seed}: only {stopped} of {SIGNAL_RUNS} signals landed inside the export"


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["empty", "replace"])
def test_sigterm_before_each_file_change(world, scenario):  # noqa: F811 - the fixture
    """Signalled right before each file change: before publishing, nothing is published; once
    publishing has started it finishes (there is no safe point inside it) and the line says so."""
    counted = _step_run(world, scenario, 0, "SIGTERM")
    steps = int(counted.stderr.rsplit("steps=", 1)[1])
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda step: _step_run(world, scenario, step, "SIGTERM"), range(1, steps + 1)))
    claims = []
    for step, done in enumerate(runs, 1):
        context = f"{scenario}, SIGTERM before file change {step} of {steps}"
        run = Run(scenario, "", 0, done.out, step, sent=signal.SIGTERM)
        run.returncode, run.output = done.returncode, done.stdout + done.stderr
        _check_stopped(world, run, context)
        claims.append(_claim(run.output, run.sent, context))
        world.next_run_succeeds(run.out, scenario, context)
    assert claims[0] == "nothing" and claims[-1] == "new", claims  # both outcomes were reached


# Runs the CLI and sends itself SIGNAL at SIGNAL_AT: "hour N" (of the first day exported),
# "upload" (when the upload starts writing), "published" (right after a day is published).
DRIVER = r"""
import os, signal, sys
from instrumetriq_polars import cli
from instrumetriq_polars.write import publish
from instrumetriq_polars.cli import days
point, sent = os.environ["SIGNAL_AT"], getattr(signal, os.environ["SIGNAL"])
if point.startswith("hour "):
    make_printer, hour = days._hour_printer, int(point.split()[1])
    def printer(*args, **kwargs):
        show = make_printer(*args, **kwargs)
        def progress(report):
            if report.hour == hour:
                os.kill(os.getpid(), sent)
            show(report)
        return progress
    days._hour_printer = printer
elif point == "upload":
    write_data = publish.Destination.write_data
    def signalled(self, write):
        if not self.is_local:
            os.kill(os.getpid(), sent)
        return write_data(self, write)
    publish.Destination.write_data = signalled
elif point == "published":
    publish_day = publish.Destination.publish
    def signalled(self, *args):
        publish_day(self, *args)
        os.kill(os.getpid(), sent)
    publish.Destination.publish = signalled
cli.run(sys.argv[1:])
"""

DAY2 = date(2026, 1, 16)


def _driven(at: str, sent: str, *argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", DRIVER, *argv], env={**ENV, **(env or {}), "SIGNAL_AT": at, "SIGNAL": sent},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def two_days(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("two_days") / "archive"
    for day in (date.fromisoformat(DATE), DAY2):
        write_archive_day(root, day, entries_per_hour=2)
    return root


@pytest.mark.parametrize("sent", ["SIGTERM", "SIGINT"])
def test_a_signal_stops_a_run_of_several_days(two_days, tmp_path, sent):
    out = tmp_path / "out"
    argv = ["export", "--from-date", DATE, "--to-date", DAY2.isoformat(), "--archive-path", str(two_days), "--out-dir", str(out)]
    done = _driven("hour 12", sent, *argv)
    code = 128 + getattr(signal, sent)
    assert done.returncode == code and done.stdout == "", done.stderr
    # the day stopped, the day that never started (issue 22), then the summary
    assert done.stderr.splitlines()[-3:] == [f"error: {DATE}: interrupted; nothing published ({sent})",
                                               f"error: interrupted; not started: {DAY2} ({sent})",
                                               "2 days: 0 exported, 0 completed, 0 already published, 0 skipped, 0 failed, "
                                               "1 interrupted, 1 not started"]
    assert f"exporting {DAY2}" not in done.stderr and not (out / DATE).exists()  # the second day never started

    done = _driven("published", sent, *argv)  # the first day is published, then the signal
    assert done.returncode == code, done.stderr
    assert done.stdout.startswith(f"{DATE}: published: 48 rows") and done.stdout.count("\n") == 1
    assert done.stderr.splitlines()[-3] == f"error: {DATE}: interrupted; {out}/{DATE} published before it stopped ({sent})"
    assert done.stderr.splitlines()[-2] == f"error: interrupted; not started: {DAY2} ({sent})"
    assert f"exporting {DAY2}" not in done.stderr
    assert sorted(os.listdir(out)) == [DATE] and set(os.listdir(out / DATE)) == CLEAN


def test_a_signal_during_the_upload_stops_it(two_days, tmp_path, s3, moto):
    """The local export is published; the upload stops before anything of it is committed: no
    object, no unfinished multipart upload."""
    out = tmp_path / "out"
    r2 = {"R2_ENDPOINT": moto.endpoint, "R2_ACCESS_KEY_ID": KEY_ID, "R2_SECRET_ACCESS_KEY": SECRET}
    done = _driven("upload", "SIGTERM", "export", "--date", DATE, "--archive-path", str(two_days), "--out-dir", str(out),
                   "--upload", env=r2)
    assert done.returncode == 143, done.stderr
    assert done.stdout.startswith(f"{DATE}: published: 48 rows") and done.stdout.count("\n") == 1  # the local export
    assert done.stderr.splitlines()[-1] == (
        f"error: {DATE}: interrupted; {out}/{DATE} published before it stopped, nothing uploaded (SIGTERM)")
    s3.invalidate_cache()
    assert s3.find(BUCKET) == [] and uploads(moto) == []
    manifest = json.loads((out / DATE / "manifest.json").read_bytes())
    assert manifest["row_count"] == 48 and set(os.listdir(out / DATE)) == CLEAN


SECOND_SIGNAL = r"""
import os, signal, time
from instrumetriq_polars import interrupt
from instrumetriq_polars.errors import Interrupted
with interrupt.stop_on_signals():
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.2)
    try:
        interrupt.check()
    except Interrupted as stop:
        print("stop requested", stop.signum, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)
    print("still running")
"""


def test_a_second_signal_ends_the_process_at_once():
    """A run that does not stop soon enough (a storage request retrying) can be ended by a second
    signal, as the signal would end it without the CLI's handler (a kill: the crash guarantees hold)."""
    done = subprocess.run([sys.executable, "-c", SECOND_SIGNAL], env=ENV, capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGTERM and done.stdout == "stop requested 15\n", done.stderr
