"""Hours built in worker processes: the same bytes as in process, clean failures, no orphans."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from instrumetriq_polars import WorkerError, export_day
from instrumetriq_polars.archive import ArchiveDay, HourFile
from instrumetriq_polars.synthetic import write_archive_day
from instrumetriq_polars.workers import AUTO_MIN_DAY_BYTES, auto_workers

from .conftest import DAY, ROOT

AFTER = date(2026, 1, 16)


def _workers_of(pid: int) -> set[int]:
    """The worker processes among ``pid``'s children (others, such as a test S3 server, are not)."""
    children = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            children.update(int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split())
        except OSError:  # the thread ended meanwhile
            continue
    return {c for c in children if b"instrumetriq_polars.workers" in _cmdline(c)}


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _without_created_ts(folder: Path) -> dict:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.pop("created_ts_utc")
    return manifest


@pytest.fixture
def damaged_archive(tmp_path) -> Path:
    """A day with a bad line, a mistyped value and an unknown field, so every part of the
    per-hour accounting has something to merge."""
    root = tmp_path / "archive"
    write_archive_day(root, DAY, entries_per_hour=3)
    hour = root / "20260115" / "05.jsonl.gz"
    lines = gzip.decompress(hour.read_bytes()).split(b"\n")
    entry = json.loads(lines[1])
    entry["spot_raw"]["mid"] = "not a number"
    entry["meta"]["surprise"] = 1
    lines[1] = json.dumps(entry).encode()
    lines.insert(2, b"{not json")
    hour.write_bytes(gzip.compress(b"\n".join(lines)))
    return root


@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_workers_write_the_same_day_as_one_process(damaged_archive, tmp_path, layout):
    outputs = {}
    for workers in (0, 1, 2):
        out = tmp_path / f"out{workers}"
        result = export_day(DAY, str(damaged_archive), str(out), layout=layout, allow_incomplete=True, today=AFTER, workers=workers)
        assert result.workers == workers and len(result.worker_peak_rss) == workers
        folder = out / DAY.isoformat()
        outputs[workers] = ((folder / "data.parquet").read_bytes(), _without_created_ts(folder), [h.file for h in result.hours])
    assert outputs[0] == outputs[1] == outputs[2]
    data, manifest, hours = outputs[0]
    assert hours == [f"20260115/{h:02d}.jsonl.gz" for h in range(24)]
    assert manifest["bad_line_count"] == 1 and manifest["bad_lines"][0]["file"] == "20260115/05.jsonl.gz"
    assert manifest["mistyped_fields"] == {"spot_raw.mid": 1} and manifest["unknown_fields"] == {"meta.surprise": 1}


def test_workers_give_the_real_sample_unchanged(sample_archive, tmp_path):
    shas = set()
    for workers in (0, 2):
        result = export_day("2026-01-01", str(sample_archive), str(tmp_path / f"out{workers}"), workers=workers)
        assert result.manifest.row_count == 147
        shas.add(result.manifest.parquet_sha256)
    assert len(shas) == 1


def test_a_bad_line_refuses_the_day_with_workers_too(damaged_archive, tmp_path):
    with pytest.raises(Exception) as failure:
        export_day(DAY, str(damaged_archive), str(tmp_path), today=AFTER, workers=1)
    assert type(failure.value).__name__ == "BadInputError"
    assert str(failure.value).startswith("20260115/05.jsonl.gz:3: not valid JSON")
    assert not (tmp_path / DAY.isoformat()).exists()


def test_a_killed_worker_fails_the_export_and_publishes_nothing(small_archive, tmp_path):
    me = os.getpid()

    def kill_the_worker(report) -> None:
        if report.hour == 0:
            for child in _workers_of(me):
                os.kill(child, signal.SIGKILL)

    with pytest.raises(WorkerError) as failure:
        export_day(DAY, str(small_archive), str(tmp_path), today=AFTER, workers=1, progress=kill_the_worker)
    message = str(failure.value)
    assert "\n" not in message
    assert "the worker process building 20260115/" in message and "killed by signal 9" in message
    assert message.endswith("nothing published; run the export again")
    assert not (tmp_path / DAY.isoformat()).exists()
    assert not _workers_of(me)


def test_a_bug_in_a_worker_keeps_its_traceback(small_archive, tmp_path, monkeypatch):
    """An unexpected exception in a child is a bug: it reaches the caller with the child's traceback
    (the CLI shows tracebacks for bugs), not as an operator error."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import instrumetriq_polars.workers as workers\n"
        "def broken(*args, **kwargs):\n"
        "    raise ZeroDivisionError('planted in the worker by the test')\n"
        "workers.build_hour = broken\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(hook))
    with pytest.raises(RuntimeError) as failure:
        export_day(DAY, str(small_archive), str(tmp_path / "out"), today=AFTER, workers=1)
    assert "ZeroDivisionError: planted in the worker by the test" in str(failure.value)
    assert not (tmp_path / "out" / DAY.isoformat()).exists()


def test_workers_exit_when_the_export_is_killed(tmp_path):
    """SIGKILL of the exporter (cron's timeout, the OOM killer): its workers see their input close
    and exit instead of lingering."""
    archive = tmp_path / "archive"
    write_archive_day(archive, DAY, entries_per_hour=40)
    script = (
        "import sys, time\n"
        "from datetime import date\n"
        "from instrumetriq_polars import export_day\n"
        "def slow(report):\n"
        "    print('hour', report.hour, flush=True)\n"
        "    time.sleep(60)\n"
        f"export_day('{DAY}', sys.argv[1], sys.argv[2], today=date(2026, 1, 16), workers=2, progress=slow)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(archive), str(tmp_path / "out")],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout.readline().startswith("hour 0")
        workers = _workers_of(proc.pid)
        assert len(workers) == 2
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 20
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_alive, workers)), "worker processes outlived the killed export"


def _day_of(sizes: list[int]) -> ArchiveDay:
    files = tuple(HourFile(hour, f"/archive/20260115/{hour:02d}.jsonl.gz", size) for hour, size in enumerate(sizes))
    return ArchiveDay(DAY, "/archive/20260115", files, (), fs=None)


def test_auto_workers_only_for_days_worth_a_process(monkeypatch):
    full_day, small_day = _day_of([AUTO_MIN_DAY_BYTES // 10] * 24), _day_of([1000] * 24)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert (auto_workers(full_day), auto_workers(small_day)) == (1, 0)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert auto_workers(full_day) == 0
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert auto_workers(full_day) == 1  # capped: each worker costs an hour's memory


def test_cli_refuses_a_negative_worker_count():
    run = subprocess.run([sys.executable, "-m", "instrumetriq_polars", "export", "--workers", "-1"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2
    assert "--workers: expected a number of processes (0 or more), not '-1'" in run.stderr
