"""Operating the dataset (issue 13): status, catch-up, cheap skips, --jobs, the log, a closed stdout."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from instrumetriq_polars.tiers import daily as export_module
from instrumetriq_polars.archive import utc_today
from instrumetriq_polars.cli import main
from instrumetriq_polars.folder import TEMP_MARKER
from instrumetriq_polars.log import Log
from instrumetriq_polars.status import status
from instrumetriq_polars.synthetic import write_archive_day

from .conftest import ROOT
from .support.versions import as_version_1

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z ")
D13, D14, D15, D16 = (date(2026, 1, d) for d in (13, 14, 15, 16))


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def export(capsys, archive, out, *extra):
    return run(capsys, "export", "--archive-path", archive, "--out-dir", out, *extra)


def grow_hour(archive: Path, day: date, hour: int) -> None:
    """Change an hour file's size (one more gzip member with one more entry line)."""
    path = archive / day.strftime("%Y%m%d") / f"{hour:02d}.jsonl.gz"
    first = gzip.decompress(path.read_bytes()).split(b"\n", 1)[0]
    with open(path, "ab") as f:
        f.write(gzip.compress(first.replace(b'"symbol": "', b'"symbol": "X').replace(b'"symbol":"', b'"symbol":"X') + b"\n"))


@pytest.fixture
def days(tmp_path) -> Path:
    """13: no archive folder; 14: archive, not exported; 15: published; 16: published partial (hour 05 missing)."""
    archive = tmp_path / "archive"
    for day in (D14, D15, D16):
        write_archive_day(archive, day, entries_per_hour=1)
    return archive


# -- status ---------------------------------------------------------------------------------
def test_status_rows_states_and_exit(days, tmp_path, capsys):
    out = tmp_path / "out"
    assert export(capsys, days, out, "--date", D15)[0] == 0
    (days / "20260116" / "05.jsonl.gz").rename(tmp_path / "05.jsonl.gz")
    assert export(capsys, days, out, "--date", D16, "--allow-incomplete")[0] == 0
    code, stdout, err = run(capsys, "status", "--out-dir", out, "--archive-path", days, "--from-date", D13, "--to-date", D16, "--json")
    assert code == 1
    rows = {row["day"]: row for row in json.loads(stdout)["days"]}
    assert [rows[str(d)]["state"] for d in (D13, D14, D15, D16)] == ["no archive", "missing", "published", "partial"]
    assert rows["2026-01-16"]["reason"] == "1 hours missing (05)" and rows["2026-01-15"]["rows"] == 24
    assert rows["2026-01-15"]["archive_changed"] is False and rows["2026-01-15"]["export_version"]
    assert "4 days: 1 no archive, 1 missing, 1 published, 1 partial" in err
    # the hour comes back: the partial day's archive changed since its export; catch-up-style completion heals it
    (tmp_path / "05.jsonl.gz").rename(days / "20260116" / "05.jsonl.gz")
    [row16] = status(str(out), D16, D16, archive=str(days))
    assert row16.archive_changed and row16.changes == ["hour 05 new"]
    code, stdout, _ = export(capsys, days, out, "--date", D16)
    assert code == 0 and stdout.startswith("2026-01-16: completed: 24 rows")
    assert export(capsys, days, out, "--date", D14)[0] == 0
    code, stdout, _ = run(capsys, "status", "--out-dir", out, "--archive-path", days, "--from-date", D13, "--to-date", D16)
    assert code == 0, stdout
    assert [line.split()[1] for line in stdout.splitlines()] == ["no", "published", "published", "published"]
    grow_hour(days, D15, 7)  # the archive changed after the export: status says so and exits 1
    code, stdout, _ = run(capsys, "status", "--out-dir", out, "--archive-path", days, "--date", D15)
    assert code == 1 and "archive changed since export: hour 07" in stdout


def test_status_usage_errors(tmp_path, capsys):
    assert run(capsys, "status", "--out-dir", tmp_path, "--days", "3", "--date", "2026-01-15")[0] == 2
    code, _, err = run(capsys, "status", "--out-dir", tmp_path, "--date", "2026-01-15", "--archive-path", tmp_path / "nowhere")
    assert code == 2 and err.count("error:") == 1 and "archive root" in err  # could not check: 2 (issue 22)


# -- cheap skips ----------------------------------------------------------------------------
def test_unchanged_published_day_is_skipped_without_reading_the_archive(small_archive, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert export(capsys, small_archive, out, "--date", D15)[0] == 0
    real_scan = export_module.ArchiveDayScan
    reads = []
    monkeypatch.setattr(export_module, "ArchiveDayScan", lambda *a, **k: reads.append(a) or real_scan(*a, **k))
    started = time.perf_counter()
    code, stdout, err = export(capsys, small_archive, out, "--date", D15)
    elapsed = time.perf_counter() - started
    assert code == 0 and reads == [] and "archive unchanged, not re-read" in stdout and "rows from" not in err
    print(f"skip of an unchanged day through the CLI: {elapsed * 1000:.1f} ms")
    # --force never skips; an hour file that grew is read again, and its late entry updates the day (issue 21)
    assert export(capsys, small_archive, out, "--date", D15, "--force")[0] == 0 and len(reads) == 1
    grow_hour(small_archive, D15, 3)
    code, _, err = export(capsys, small_archive, out, "--date", D15)
    assert len(reads) == 2 and code == 0, err
    # another layout is another export: not skipped either
    assert export(capsys, small_archive, tmp_path / "nested", "--date", D15, "--layout", "nested")[0] == 0
    code, _, _ = export(capsys, small_archive, out, "--date", D15, "--layout", "nested")
    assert len(reads) == 4 and code == 1


def test_damaged_published_day_is_not_skipped(small_archive, tmp_path, capsys):
    out = tmp_path / "out"
    assert export(capsys, small_archive, out, "--date", D15)[0] == 0
    with open(out / "2026-01-15" / "data.parquet", "ab") as f:
        f.write(b"x")
    code, _, err = export(capsys, small_archive, out, "--date", D15)
    assert code == 1 and "is damaged" in err


# -- catch-up -------------------------------------------------------------------------------
def test_catch_up_exports_what_is_missing_completes_partial_days_and_skips_the_rest(tmp_path, capsys):
    today = utc_today()
    d3, d2, d1 = (today - timedelta(days=n) for n in (3, 2, 1))
    archive, out = tmp_path / "archive", tmp_path / "out"
    for day in (d2, d1):
        write_archive_day(archive, day, entries_per_hour=1)
    (archive / d1.strftime("%Y%m%d") / "23.jsonl.gz").rename(tmp_path / "23.jsonl.gz")
    assert export(capsys, archive, out, "--date", d1, "--allow-incomplete")[0] == 0  # partial
    assert export(capsys, archive, out, "--date", d2)[0] == 0
    code, stdout, err = export(capsys, archive, out, "--catch-up", 3)
    assert code == 0, err
    assert f"skipped {d3}: no archive folder" in err
    assert f"skipped {d1}: published partial (1 hours missing) and the archive has not changed since" in err
    assert "3 days: 0 exported, 0 completed, 1 already published, 2 skipped, 0 failed" in err
    (tmp_path / "23.jsonl.gz").rename(archive / d1.strftime("%Y%m%d") / "23.jsonl.gz")
    code, stdout, err = export(capsys, archive, out, "--catch-up", 3)
    assert code == 0 and f"{d1}: completed: 24 rows" in stdout
    assert "3 days: 0 exported, 1 completed, 1 already published, 1 skipped, 0 failed" in err
    assert run(capsys, "export", "--catch-up", 3, "--date", d1)[0] == 2
    assert run(capsys, "export", "--catch-up", 0)[0] == 2


def test_catch_up_leaves_a_day_published_complete_by_an_older_export_version(tmp_path, capsys):
    """After an upgrade of the export format, the days published before it are neither missing nor
    partial: catch-up must not try them again (it would be refused as other data every night)."""
    day = utc_today() - timedelta(days=1)
    archive, out = tmp_path / "archive", tmp_path / "out"
    write_archive_day(archive, day, entries_per_hour=1)
    assert export(capsys, archive, out, "--date", day)[0] == 0
    as_version_1(out / day.isoformat())
    code, _, err = export(capsys, archive, out, "--catch-up", 1)
    assert code == 0, err
    assert f"{day}: skipped: published complete by export version tier3-polars-1; forcing re-exports it as tier3-polars-2 (--force)" in err
    code, stdout, err = export(capsys, archive, out, "--date", day, "--force")
    assert code == 0 and f"{day}: published: 24 rows" in stdout


# -- the summary and the log ----------------------------------------------------------------
def test_summary_counts_truthfully_and_lists_failures(small_archive, tmp_path, capsys):
    out = tmp_path / "out"
    for day in (D13, D14):
        write_archive_day(small_archive, day, entries_per_hour=1)
    assert export(capsys, small_archive, out, "--from-date", D13, "--to-date", D15)[0] == 0
    code, _, err = export(capsys, small_archive, out, "--from-date", D13, "--to-date", "2026-01-17")
    assert code == 1
    lines = err.splitlines()
    at = lines.index("5 days: 0 exported, 0 completed, 3 already published, 0 skipped, 2 failed")
    assert [line.split(":")[0] for line in lines[at + 1:]] == ["  failed 2026-01-16", "  failed 2026-01-17"]
    assert "no archive folder" in lines[-1]


def test_wrong_archive_root_is_one_error_for_a_year(tmp_path, capsys):
    code, out, err = export(capsys, tmp_path / "nowhere", tmp_path / "out", "--from-date", "2025-01-01", "--to-date", "2025-12-31")
    assert code == 1 and out == "" and err.count("\n") == 1 and err.startswith("error: the archive root ")


def test_quiet_prints_errors_and_the_summary_only(small_archive, tmp_path, capsys):
    code, out, err = export(capsys, small_archive, tmp_path / "out", "--date", D14, "--date", D15, "--quiet")
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"error: no archive folder for 2026-01-14: {small_archive}/20260114 does not exist or is empty",
        "2 days: 1 exported, 0 completed, 0 already published, 0 skipped, 1 failed",
        f"  failed 2026-01-14: no archive folder for 2026-01-14: {small_archive}/20260114 does not exist or is empty",
    ]


def test_log_lines_are_timestamped_when_stderr_is_not_a_terminal(small_archive, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("INSTRUMETRIQ_LOG_TIMESTAMPS")
    code, out, err = export(capsys, small_archive, tmp_path / "out", "--date", D14, "--date", D15)
    assert code == 1 and err.count("\n") > 20
    assert all(STAMP.match(line) for line in err.splitlines()), err
    assert out and all(STAMP.match(line) for line in out.splitlines()), out  # stdout too: a cron log dates every line


def test_terminal_gets_a_progress_bar_and_no_timestamps(tmp_path, monkeypatch):
    monkeypatch.delenv("INSTRUMETRIQ_LOG_TIMESTAMPS")
    path = tmp_path / "tty.txt"
    with open(path, "w") as stream:
        log = Log(stream, tty=True)
        log.progress("[##..] hour 1")
        log.progress("[###.] hour 2")
        log.info("a line")
    with open(path, newline="") as f:
        text = f.read()
    assert text.startswith("\r[##..] hour 1\r[###.] hour 2") and text.endswith("\ra line\n") and not STAMP.search(text)


def test_a_closed_stdout_ends_the_run_quietly(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written (schema | head, head done)
    done = subprocess.run([sys.executable, "-m", "instrumetriq_polars", "schema"], stdout=write_end,
                          stderr=subprocess.PIPE, env=ENV, timeout=60)
    os.close(write_end)
    assert done.returncode == 141 and done.stderr == b""


# -- --jobs -----------------------------------------------------------------------------------
def test_jobs_export_days_in_parallel_in_date_order(tmp_path, capsys):
    archive = tmp_path / "archive"
    for day in (D13, D14, D15):
        write_archive_day(archive, day, entries_per_hour=1)
    code, out, err = export(capsys, archive, tmp_path / "jobs", "--from-date", D13, "--to-date", "2026-01-16", "--jobs", "2")
    assert code == 1, err
    assert [line.split(":")[0] for line in out.splitlines()] == ["2026-01-13", "2026-01-14", "2026-01-15"]
    assert "4 days: 3 exported, 0 completed, 0 already published, 0 skipped, 1 failed" in err
    assert export(capsys, archive, tmp_path / "one", "--from-date", D13, "--to-date", D15)[0] == 0
    for day in ("2026-01-13", "2026-01-14", "2026-01-15"):
        jobs = json.loads((tmp_path / "jobs" / day / "manifest.json").read_text())
        one = json.loads((tmp_path / "one" / day / "manifest.json").read_text())
        assert jobs["parquet_sha256"] == one["parquet_sha256"]


@pytest.mark.slow
def test_jobs_stop_on_sigterm_and_leave_nothing_half_written(tmp_path):
    archive, out = tmp_path / "archive", tmp_path / "out"
    days = [D13 + timedelta(days=i) for i in range(4)]
    for day in days:
        write_archive_day(archive, day, entries_per_hour=30)
    proc = subprocess.Popen([sys.executable, "-m", "instrumetriq_polars", "export", "--archive-path", str(archive),
                             "--out-dir", str(out), "--from-date", str(days[0]), "--to-date", str(days[-1]), "--jobs", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, text=True)
    assert "in 2 processes" in proc.stderr.readline()
    # the moment a worker is writing its first day (its lock or temporary file is there): not a
    # fixed delay, which a fast enough export outran (all 4 days done in ~2.9 s)
    started = time.monotonic()
    while not any(".export.lock" in p.name or TEMP_MARKER in p.name for p in out.glob("*/*")):
        assert proc.poll() is None and time.monotonic() - started < 60, "no day was started"
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    published = {line.split(":")[0] for line in stdout.splitlines()}
    for day in days:
        folder = out / day.isoformat()
        names = os.listdir(folder) if folder.exists() else []
        assert not any(TEMP_MARKER in n for n in names) and ".export.lock" not in names, names
        assert ("manifest.json" in names) == (day.isoformat() in published or f"{day}: interrupted; {folder} published" in stderr)
    assert "interrupted" in stderr.splitlines()[-1] and "Traceback" not in stderr
