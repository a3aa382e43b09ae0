"""Issue 21, "Reliability, round 3", section 4's signals: ``bundle`` follows the project's signal
rules (SIGTERM or SIGINT during the sink: exit 143/130, one ``error:`` line, no Polars panic, no
lock or temporary file left, the bundle in place untouched), and ``export --jobs`` stopped by a
Ctrl-C says SIGINT for the days it interrupted. Real signals to a real process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from instrumetriq_polars import export_day
from instrumetriq_polars.synthetic import write_archive_day

pytestmark = pytest.mark.slow

ENV = {**os.environ, "INSTRUMETRIQ_LOG_TIMESTAMPS": "0"}
FIRST = date(2026, 1, 1)


def _cli(*argv) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "instrumetriq_polars", *map(str, argv)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def month(tmp_path_factory) -> Path:
    """A daily root of 10 days (copies of one exported day, 20 entries an hour): a bundle of it
    takes a few seconds."""
    root = tmp_path_factory.mktemp("month")
    write_archive_day(root / "archive", FIRST, entries_per_hour=20)
    export_day(FIRST, str(root / "archive"), str(root / "daily"))
    source = root / "daily" / str(FIRST)
    manifest = json.loads((source / "manifest.json").read_text())
    for i in range(1, 10):
        day = FIRST + timedelta(days=i)
        (root / "daily" / str(day)).mkdir()
        shutil.copy(source / "data.parquet", root / "daily" / str(day) / "data.parquet")
        copy = dict(manifest, date_utc=str(day), archive_day=f"{day:%Y%m%d}")
        (root / "daily" / str(day) / "manifest.json").write_text(json.dumps(copy))
    return root / "daily"


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("before", ["none", "published"])
def test_a_signal_during_the_bundle_sink_stops_it_cleanly(month, tmp_path, sent, before):
    """The issue's SIGTERM and SIGINT, over a new bundle and (variant) over a published one that
    --force rebuilds: the bundle in place stays as it was."""
    out = tmp_path / "monthly"
    folder = out / "2026-01"
    if before == "published":
        assert subprocess.run([sys.executable, "-m", "instrumetriq_polars", "bundle", "--month", "2026-01", "--from-dir",
                               str(month), "--out-dir", str(out)], env=ENV, capture_output=True).returncode == 0
    kept = {p.name: p.read_bytes() for p in folder.iterdir()} if folder.exists() else {}
    run = _cli("bundle", "--month", "2026-01", "--from-dir", month, "--out-dir", out, "--force")
    _wait_for(lambda: folder.exists() and any(".tmp-" in p.name for p in folder.iterdir()))
    run.send_signal(sent)
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 128 + sent, output
    assert "Traceback" not in output and "panic" not in output.lower(), output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and signal.Signals(sent).name in errors[0], output
    left = {p.name: p.read_bytes() for p in folder.iterdir()} if folder.exists() else {}
    assert left == kept, sorted(left)


@pytest.fixture(scope="module")
def days(tmp_path_factory) -> tuple[Path, list[date]]:
    root = tmp_path_factory.mktemp("days") / "archive"
    dates = [FIRST + timedelta(days=i) for i in range(4)]
    for day in dates:
        write_archive_day(root, day, entries_per_hour=30, seed=day.day)
    return root, dates


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_a_parallel_export_names_itself(days, tmp_path, sent):
    """With --jobs the workers are stopped by a SIGTERM of the runner's own: the lines of the
    interrupted days must still name the signal the run got (the issue's Ctrl-C, and SIGTERM)."""
    archive, dates = days
    out = tmp_path / "out"
    run = _cli("export", "--from-date", dates[0], "--to-date", dates[-1], "--archive-path", archive, "--out-dir", out,
               "--jobs", 2)
    _wait_for(lambda: out.exists() and any(".tmp-" in p.name for d in out.iterdir() if d.is_dir() for p in d.iterdir()))
    run.send_signal(sent)
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 128 + sent, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert errors, output
    other = signal.SIGTERM if sent == signal.SIGINT else signal.SIGINT
    assert all(f"({signal.Signals(sent).name})" in line for line in errors if "interrupted" in line), output
    assert f"({signal.Signals(other).name})" not in output, output
