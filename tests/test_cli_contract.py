"""The command line as its operator meets it (issue 22): one spelling of the dataset root, results
as JSON, exit codes that mean one thing each, the console script's name, argparse details, one
error line instead of one per day, stamped stdout in cron logs, Ctrl-C naming what never started,
overall progress on a terminal, and ``verify`` passing a normal generated day.

Exit codes, for every command: 0 healthy (or done), 1 unhealthy or failed, 2 usage error or
cannot check. Most tests call ``main`` in the test process; the ones about the process itself
(the console script, the environment, signals, a terminal) run it as a child.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from instrumetriq_polars import __version__
from instrumetriq_polars.cli import build_parser, main
from instrumetriq_polars.manifest import EXPORT_VERSION, Manifest
from instrumetriq_polars.synthetic import write_archive_day

from .conftest import ROOT

PYTHON = sys.executable
SCRIPT = Path(sys.executable).parent / "instrumetriq-polars"
DAYS = ("2026-01-14", "2026-01-15")
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z ")
PARTITION_KEYS = {"status", "rows", "bytes", "sha256", "seconds", "reason"}


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("contract") / "archive"
    for seed, day in enumerate(DAYS):
        write_archive_day(root, date.fromisoformat(day), entries_per_hour=1, seed=seed)
    return root


@pytest.fixture(scope="module")
def published(archive, tmp_path_factory) -> Path:
    """A daily root with both days published."""
    out = tmp_path_factory.mktemp("published") / "tier3_daily"
    assert main(["export", "--from-date", DAYS[0], "--to-date", DAYS[1], "--archive-path", str(archive),
                 "--out-dir", str(out), "--quiet"]) == 0
    return out


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``main`` in this process: (exit code, stdout, stderr); argparse's exits included."""
    try:
        code = main(list(argv))
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def child(*argv: str, env: dict | None = None, cwd: Path | None = None, program=(PYTHON, "-m", "instrumetriq_polars"),
          timeout: float = 120) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    environment = {k: v for k, v in environment.items() if v is not None}
    return subprocess.run([*program, *argv], capture_output=True, text=True, env=environment, cwd=cwd, timeout=timeout)


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.sub(STAMP, "", line).startswith("error:")]


# --- one spelling of the dataset root -----------------------------------------------------------

def test_verify_takes_out_dir_like_every_other_command(published, capsys):
    code, out, err = run(capsys, "verify", "--out-dir", str(published), "--date", DAYS[0])
    assert code == 0, err
    assert out.startswith(f"{DAYS[0]} PASS"), out


@pytest.mark.parametrize("alias", ["--local", "--path"])
def test_verify_keeps_its_old_spellings_as_aliases(published, capsys, alias):
    code, out, err = run(capsys, "verify", alias, str(published), "--date", DAYS[0])
    assert code == 0 and out.startswith(f"{DAYS[0]} PASS"), (out, err)


def test_verify_without_a_root_uses_the_same_default_as_export_and_status(published, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    (work / "output").mkdir(parents=True)
    os.symlink(published, work / "output" / "tier3_daily")
    monkeypatch.chdir(work)
    code, out, err = run(capsys, "verify", "--date", DAYS[0])
    assert code == 0 and out.startswith(f"{DAYS[0]} PASS"), (out, err)
    code, out, err = run(capsys, "status", "--date", DAYS[0], "--archive-path", str(published.parent))
    assert out.startswith(DAYS[0]), (out, err)


def test_bundle_reads_its_days_from_the_daily_root_by_the_documented_spelling(published, tmp_path, capsys):
    """bundle's daily root: --from-dir stays (it is the input; --out-dir is the monthly root it
    writes, as in ``status --month`` and ``verify --month``)."""
    code, out, err = run(capsys, "bundle", "--month", "2026-01", "--from-dir", str(published), "--out-dir", str(tmp_path / "monthly"))
    assert code == 0, err
    assert (tmp_path / "monthly" / "2026-01" / "manifest.json").exists()


def root_option_help(command: str) -> str:
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    action = next(a for a in sub._actions if "--out-dir" in a.option_strings)
    return action.help


@pytest.mark.parametrize("command", ["export", "export-hourly", "status", "verify", "bundle"])
def test_every_command_with_a_root_spells_it_out_dir(command):
    assert root_option_help(command)


def test_the_daily_default_is_the_same_in_export_status_and_verify():
    defaults = {c: re.search(r"default: ([^;)]+)", root_option_help(c)).group(1) for c in ("export", "status", "verify")}
    assert len(set(defaults.values())) == 1, defaults


# --- results as data: --json ----------------------------------------------------------------------

def test_export_json_one_object_per_day_and_the_summary(archive, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "export", "--from-date", DAYS[0], "--to-date", "2026-01-16", "--archive-path", str(archive),
                         "--out-dir", str(out_dir), "--json")
    assert code == 1, err  # 2026-01-16 has no archive folder
    result = json.loads(out)  # stdout holds the JSON alone
    partitions = {p["partition"]: p for p in result["partitions"]}
    assert list(partitions) == [*DAYS, "2026-01-16"]
    for name, p in partitions.items():
        assert PARTITION_KEYS <= set(p), p
    for day in DAYS:
        manifest = Manifest.from_json((out_dir / day / "manifest.json").read_bytes())
        p = partitions[day]
        assert (p["status"], p["rows"], p["bytes"], p["sha256"], p["reason"]) == (
            "exported", manifest.row_count, manifest.parquet_size_bytes, manifest.parquet_sha256, None)
        assert p["seconds"] > 0
    failed = partitions["2026-01-16"]
    assert failed["status"] == "failed" and "no archive folder" in failed["reason"] and failed["rows"] is None
    assert result["summary"]["failed"] == 1 and result["summary"]["exported"] == 2 and result["ok"] is False
    code, out, err = run(capsys, "export", "--date", DAYS[0], "--archive-path", str(archive), "--out-dir", str(out_dir), "--json")
    assert code == 0 and json.loads(out)["partitions"][0]["status"] == "already published"


def test_export_json_is_printed_when_the_run_fails_before_any_day(tmp_path, capsys):
    code, out, err = run(capsys, "export", "--date", DAYS[0], "--archive-path", str(tmp_path / "nowhere"),
                         "--out-dir", str(tmp_path / "out"), "--json")
    assert code == 1
    result = json.loads(out)
    assert result["ok"] is False and result["partitions"] == [] and "nowhere" in result["error"]
    assert len(error_lines(err)) == 1


def test_export_hourly_json(archive, tmp_path, capsys):
    code, out, err = run(capsys, "export-hourly", "--hour", f"{DAYS[0]}T05", "--archive-path", str(archive),
                         "--out-dir", str(tmp_path / "hourly"), "--json")
    assert code == 0, err
    result = json.loads(out)
    (p,) = result["partitions"]
    assert PARTITION_KEYS <= set(p) and p["partition"] == f"{DAYS[0]}T05" and p["status"] == "exported" and p["rows"] == 1
    assert result["summary"]["exported"] == 1


def test_bundle_json(published, tmp_path, capsys):
    code, out, err = run(capsys, "bundle", "--month", "2026-01", "--from-dir", str(published),
                         "--out-dir", str(tmp_path / "monthly"), "--json")
    assert code == 0, err
    result = json.loads(out)
    (p,) = result["partitions"]
    manifest = Manifest.from_json((tmp_path / "monthly" / "2026-01" / "manifest.json").read_bytes())
    assert PARTITION_KEYS <= set(p) and p["partition"] == "2026-01"
    assert (p["rows"], p["sha256"]) == (manifest.row_count, manifest.parquet_sha256)
    assert "summary" in result


# --- exit codes ---------------------------------------------------------------------------------

def test_status_cannot_check_a_missing_root_exit_2_and_json_says_why(tmp_path, capsys):
    code, out, err = run(capsys, "status", "--out-dir", str(tmp_path / "nope"), "--date", DAYS[0], "--json",
                         "--archive-path", str(tmp_path))
    assert code == 2, err
    result = json.loads(out)
    assert result["ok"] is False and "nope" in result["error"]


def test_status_exit_1_when_unhealthy_and_0_when_healthy(published, archive, tmp_path, capsys):
    assert run(capsys, "status", "--out-dir", str(published), "--from-date", DAYS[0], "--to-date", DAYS[1],
               "--archive-path", str(archive))[0] == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run(capsys, "status", "--out-dir", str(empty), "--date", DAYS[0], "--archive-path", str(archive), "--json")
    assert code == 1 and json.loads(out)["ok"] is False


def test_verify_cannot_check_a_missing_root_exit_2_with_json(tmp_path, capsys):
    code, out, err = run(capsys, "verify", "--out-dir", str(tmp_path / "nope"), "--date", DAYS[0], "--json")
    assert code == 2
    assert "nope" in json.loads(out)["error"]


def test_verify_exit_1_when_a_day_fails(published, tmp_path, capsys):
    import shutil

    copy = tmp_path / "root"
    shutil.copytree(published, copy)
    data = copy / DAYS[0] / "data.parquet"
    data.write_bytes(data.read_bytes()[:-10] + b"0123456789")
    code, out, err = run(capsys, "verify", "--out-dir", str(copy), "--date", DAYS[0], "--json")
    assert code == 1 and json.loads(out)["failed"] == 1


def test_usage_errors_exit_2(capsys):
    assert run(capsys, "export", "--date", "2026-13-45")[0] == 2
    assert run(capsys, "export", "--no-such-flag")[0] == 2


def test_exit_codes_are_documented_in_help_and_the_cli_reference():
    text = " ".join(build_parser().format_help().split())
    reference = " ".join((ROOT / "docs" / "cli.md").read_text(encoding="utf-8").split())
    for code, meaning in ((0, "healthy"), (1, "unhealthy or failed"), (2, "usage error or cannot check")):
        assert re.search(rf"\b{code}\b[^.;]*{meaning}", text), (code, text)
        assert re.search(rf"\b{code}\b[^.;]*{meaning}", reference), code


# --- the console script --------------------------------------------------------------------------

def test_usage_shows_the_name_it_was_called_by():
    assert SCRIPT.exists(), SCRIPT
    by_script = child("export", "--no-such-flag", program=(str(SCRIPT),))
    assert by_script.returncode == 2 and by_script.stderr.startswith("usage: instrumetriq-polars export"), by_script.stderr
    assert "python -m" not in by_script.stderr
    by_module = child("export", "--no-such-flag")
    assert by_module.stderr.startswith("usage: python -m instrumetriq_polars export"), by_module.stderr


def test_version_prints_the_export_format_version(capsys):
    code, out, err = run(capsys, "--version")
    assert code == 0 and __version__ in out and EXPORT_VERSION in out


def test_the_console_script_is_documented():
    docs = (ROOT / "README.md").read_text(encoding="utf-8") + (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    assert "instrumetriq-polars " in docs


# --- argparse details ----------------------------------------------------------------------------

def test_an_unknown_flag_after_a_command_shows_that_commands_usage(capsys):
    code, out, err = run(capsys, "status", "--no-such-flag")
    assert code == 2
    assert re.match(r"usage: \S.* status ", err), err
    assert "unrecognized arguments: --no-such-flag" in err


@pytest.mark.parametrize("argv", [["export", "--archive", "x"], ["status", "--out", "x"], ["verify", "--loc", "x"], ["--vers"]])
def test_abbreviations_are_refused(argv, capsys):
    code, out, err = run(capsys, *argv)
    assert code == 2 and __version__ not in out, (out, err)


def all_parsers(parser=None):
    parser = parser or build_parser()
    yield parser
    for action in parser._actions:
        if action.dest == "command" or hasattr(action, "choices") and isinstance(action.choices, dict):
            for sub in (action.choices or {}).values():
                if hasattr(sub, "_actions"):
                    yield from all_parsers(sub)


def test_every_option_has_a_help_text_and_abbreviations_are_off():
    import argparse

    missing = []
    for parser in all_parsers():
        assert parser.allow_abbrev is False, parser.prog
        for action in parser._actions:
            if action.option_strings and action.help != argparse.SUPPRESS and not (action.help or "").strip():
                missing.append(f"{parser.prog} {'/'.join(action.option_strings)}")
    assert missing == []


def test_status_help_states_one_default_for_the_days():
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["status"]
    text = " ".join(sub.format_help().split())
    assert "yesterday" not in text
    assert len(re.findall(r"default: (?:the )?7 days", text)) == 1, text


def test_debug_works_before_and_after_the_command_and_the_docs_say_so(tmp_path, capsys):
    for argv in (["--debug", "export", "--date", DAYS[0]], ["export", "--date", DAYS[0], "--debug"]):
        code, out, err = run(capsys, *argv, "--archive-path", str(tmp_path / "nowhere"), "--out-dir", str(tmp_path / "out"))
        assert code == 1 and "Traceback" in err, (argv, err)
    debug = next(a for a in build_parser()._actions if "--debug" in a.option_strings)
    assert "after the command" in debug.help
    assert "after the command" in (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


# --- one error, not one per day -----------------------------------------------------------------

def test_an_unwritable_output_root_is_one_error_before_any_day(archive, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, out, err = run(capsys, "export", "--from-date", DAYS[0], "--to-date", DAYS[1], "--archive-path", str(archive),
                         "--out-dir", str(blocker / "sub"))
    assert code == 1
    assert len(error_lines(err)) == 1 and str(blocker) in err, err
    assert "exporting" not in err and DAYS[0] not in err and out == ""


def test_an_unknown_storage_protocol_is_one_line_without_the_usage(capsys):
    code, out, err = run(capsys, "export", "--date", DAYS[0], "--out-dir", "nosuch://bucket/x")
    assert code == 2
    assert err.count("\n") == 1 and "usage:" not in err and "nosuch" in err, err


def test_error_lines_name_the_date_once(archive, tmp_path, capsys):
    code, out, err = run(capsys, "export", "--date", "2026-01-16", "--archive-path", str(archive), "--out-dir", str(tmp_path / "out"))
    assert code == 1
    (line,) = error_lines(err)
    assert line.count("2026-01-16") == 1, line


# --- cron logs: stdout stamped too ----------------------------------------------------------------

@pytest.mark.slow  # child processes or a whole day: the full run
def test_stdout_lines_are_stamped_when_not_a_terminal(archive, tmp_path):
    result = child("export", "--from-date", DAYS[0], "--to-date", DAYS[1], "--archive-path", str(archive),
                   "--out-dir", str(tmp_path / "out"), env={"INSTRUMETRIQ_LOG_TIMESTAMPS": None})
    assert result.returncode == 0, result.stderr
    for stream in (result.stdout, result.stderr):
        lines = stream.splitlines()
        assert lines and all(STAMP.match(line) for line in lines), stream
    json_run = child("export", "--date", DAYS[0], "--archive-path", str(archive), "--out-dir", str(tmp_path / "out"), "--json",
                     env={"INSTRUMETRIQ_LOG_TIMESTAMPS": None})
    assert json.loads(json_run.stdout)["partitions"][0]["status"] == "already published"


# --- Ctrl-C: the days that never started, and the summary ---------------------------------------

@pytest.fixture(scope="module")
def three_days(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sigint") / "archive"
    for seed, day in enumerate(("2026-01-14", "2026-01-15", "2026-01-16")):
        write_archive_day(root, date.fromisoformat(day), entries_per_hour=8 if seed == 0 else 1, seed=seed)
    return root


@pytest.mark.slow  # child processes or a whole day: the full run
def test_ctrl_c_names_the_days_that_never_started_and_prints_the_summary(three_days, tmp_path):
    command = [PYTHON, "-m", "instrumetriq_polars", "export", "--from-date", "2026-01-14", "--to-date", "2026-01-16",
               "--archive-path", str(three_days), "--out-dir", str(tmp_path / "out")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in process.stderr:  # the first hour of the first day: the run is inside day 1
        lines.append(line)
        if "20260114/00.jsonl.gz" in line:
            process.send_signal(signal.SIGINT)
            break
    rest_err = process.stderr.read()
    out = process.stdout.read()
    assert process.wait(timeout=60) == 130
    err = "".join(lines) + rest_err
    assert re.search(r"not started: 2026-01-15, 2026-01-16", err), err
    summary = [line for line in (out + err).splitlines() if re.match(r"3 days: ", line)]
    assert summary and "1 interrupted" in summary[0] and "2 not started" in summary[0], out + err


# --- progress on a terminal ----------------------------------------------------------------------

@pytest.mark.slow  # child processes or a whole day: the full run
def test_a_terminal_run_of_several_days_shows_overall_progress_rate_and_eta(archive, tmp_path):
    master, slave = pty.openpty()
    process = subprocess.Popen([PYTHON, "-m", "instrumetriq_polars", "export", "--from-date", DAYS[0], "--to-date", DAYS[1],
                                "--archive-path", str(archive), "--out-dir", str(tmp_path / "out")],
                               stdout=subprocess.PIPE, stderr=slave, text=False)
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        elif process.poll() is not None:
            break
    os.close(master)
    assert process.wait(timeout=60) == 0
    text = screen.decode(errors="replace")
    assert re.search(r"\b[12]/2 days\b", text), text
    assert re.search(r"ETA \d", text), text
    assert re.search(r"\d+(\.\d+)? ?(s/day|days/min|MB/s|rows/s)", text), text


# --- verify PASSes a normal generated day ---------------------------------------------------------

@pytest.mark.slow  # child processes or a whole day: the full run
def test_verify_passes_a_normal_generated_day(tmp_path, capsys):
    archive = tmp_path / "archive"
    write_archive_day(archive, date(2026, 1, 15), entries_per_hour=6, seed=7)
    assert run(capsys, "export", "--date", "2026-01-15", "--archive-path", str(archive), "--out-dir", str(tmp_path / "out"))[0] == 0
    code, out, err = run(capsys, "verify", "--out-dir", str(tmp_path / "out"), "--date", "2026-01-15", "--json")
    result = json.loads(out)["days"][0]
    assert code == 0 and result["status"] == "PASS", result["warnings"]


def test_synthetic_cycle_durations_look_like_the_real_archive(sample_entries):
    """The generator's meta.duration_sec spread is the real sample's (147 entries): no cycle over
    the verify threshold in a normal day."""
    import random
    from datetime import datetime, timezone

    from instrumetriq_polars.synthetic import make_entry
    from instrumetriq_polars.verify.rows import LONG_DURATION_SEC

    real = sorted(e["meta"]["duration_sec"] for e in sample_entries)
    rng = random.Random(1)
    written = datetime(2026, 1, 15, 5, tzinfo=timezone.utc)
    generated = sorted(make_entry(rng, written)["meta"]["duration_sec"] for _ in range(150))
    assert max(generated) < LONG_DURATION_SEC
    assert real[0] * 0.95 <= generated[len(generated) // 2] <= real[-1] * 1.05


def test_run_progress_counts_the_current_partition_in_its_rate_and_eta():
    from instrumetriq_polars.cli.output import RunProgress

    now = [100.0]
    progress = RunProgress(4, clock=lambda: now[0])
    assert progress.text() == "0/4 days"
    now[0] += 10  # half of the first day in 10 s: 20 s a day, 3.5 days left
    assert progress.text(0.5) == "0/4 days, 20.0 s/day, ETA 1:10"
    progress.finished_one()
    now[0] += 10
    assert progress.text() == "1/4 days, 20.0 s/day, ETA 1:00"
