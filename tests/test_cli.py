"""The runner: exact messages, exit codes, help for every subcommand, the demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from instrumetriq_polars.archive import yesterday_utc
from instrumetriq_polars.cli import build_parser, main
from instrumetriq_polars.manifest import format_instant
from instrumetriq_polars.synthetic import write_archive_day

from .conftest import ROOT


def subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


@pytest.mark.parametrize("command", subcommands())
def test_every_subcommand_has_help_and_is_in_the_readme(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert len(capsys.readouterr().out.strip()) > 40
    assert f"python -m instrumetriq_polars {command}" in (ROOT / "README.md").read_text()


def test_export_success_prints_progress_and_summary(small_archive, tmp_path, capsys):
    code = main(["export", "--date", "2026-01-15", "--archive-path", str(small_archive), "--out-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0
    assert err.count("rows from 3 lines") == 24 and "20260115/00.jsonl.gz: 3 rows" in err
    assert out.startswith("2026-01-15: published: 72 rows, 24/24 hours,") and out.strip().endswith(f"-> {tmp_path}/2026-01-15")
    code = main(["export", "--date", "2026-01-15", "--archive-path", str(small_archive), "--out-dir", str(tmp_path)])
    assert code == 0 and "2026-01-15: already published: 72 rows" in capsys.readouterr().out


def test_export_failure_is_one_line_and_exit_1(tmp_path, capsys):
    (tmp_path / "archive").mkdir()  # the root exists, the day's folder does not (a wrong root: tests/test_ops.py)
    code = main(["export", "--date", "2026-01-15", "--archive-path", str(tmp_path / "archive"), "--out-dir", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.splitlines()[-1] == f"error: no archive folder for 2026-01-15: {tmp_path}/archive/20260115 does not exist or is empty"  # the date once
    assert "Traceback" not in err


def test_several_dates_exit_1_if_any_failed(small_archive, tmp_path, capsys):
    code = main(["export", "--date", "2026-01-14", "--date", "2026-01-15", "--archive-path", str(small_archive), "--out-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "error: no archive folder for 2026-01-14" in err
    assert "2 days: 1 exported, 0 completed, 0 already published, 0 skipped, 1 failed\n  failed 2026-01-14: no archive folder" in err
    assert "2026-01-15: published" in out and (tmp_path / "2026-01-15" / "manifest.json").exists()


def test_date_range_and_usage_errors(small_archive, tmp_path, capsys):
    code = main(["export", "--from-date", "2026-01-15", "--to-date", "2026-01-15", "--archive-path", str(small_archive), "--out-dir", str(tmp_path)])
    assert code == 0
    assert main(["export", "--from-date", "2026-01-15", "--archive-path", str(small_archive)]) == 2
    assert "error: --from-date and --to-date go together" in capsys.readouterr().err
    assert main(["export", "--date", "2026-13-01"]) == 2
    assert "error: invalid date '2026-13-01'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--layout", "wide"])
    assert exit_info.value.code == 2


def test_incomplete_day_message(small_archive, tmp_path, capsys):
    (small_archive / "20260115" / "13.jsonl.gz").unlink()
    assert main(["export", "--date", "2026-01-15", "--archive-path", str(small_archive), "--out-dir", str(tmp_path)]) == 1
    assert "error: incomplete day 2026-01-15: missing hours 13 in" in capsys.readouterr().err
    assert main(["export", "--date", "2026-01-15", "--archive-path", str(small_archive), "--out-dir", str(tmp_path), "--allow-incomplete"]) == 0
    assert "published PARTIAL: 69 rows, 23/24 hours" in capsys.readouterr().out


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback_then_the_error_line(tmp_path, capsys, where):
    args = ["export", "--date", "2026-01-15", "--archive-path", str(tmp_path), "--out-dir", str(tmp_path)]
    assert main(["--debug", *args] if where == "before" else [*args, "--debug"]) == 1
    err = capsys.readouterr().err
    assert "\nTraceback (most recent call last):\n" in err and "NoArchiveFolderError: no archive folder for 2026-01-15" in err
    assert err.splitlines()[-1].startswith("error: no archive folder for 2026-01-15")


def test_no_date_means_yesterday_utc(tmp_path, capsys):
    yesterday = yesterday_utc()
    write_archive_day(str(tmp_path / "archive"), yesterday, entries_per_hour=1, seed=3)
    assert main(["export", "--archive-path", str(tmp_path / "archive"), "--out-dir", str(tmp_path / "out")]) == 0
    assert f"{yesterday}: published: 24 rows, 24/24 hours" in capsys.readouterr().out
    assert (tmp_path / "out" / yesterday.isoformat() / "manifest.json").exists()


def test_dry_run_writes_the_local_day_and_refuses_a_remote_out_dir(small_archive, tmp_path, capsys):
    args = ["export", "--date", "2026-01-15", "--archive-path", str(small_archive), "--dry-run"]
    assert main([*args, "--out-dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in (tmp_path / "2026-01-15").iterdir()) == ["data.parquet", "manifest.json"]
    capsys.readouterr()
    assert main([*args, "--out-dir", "s3://bucket/tier3/daily"]) == 2
    assert capsys.readouterr().err == "error: --dry-run writes local files only, but --out-dir is s3://bucket/tier3/daily\n"


def test_archive_path_defaults_to_environment(small_archive, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INSTRUMETRIQ_ARCHIVE", str(small_archive))
    assert main(["export", "--date", "2026-01-15", "--out-dir", str(tmp_path)]) == 0
    assert f"exporting 2026-01-15 from {small_archive}" in capsys.readouterr().err


def test_schema_command(capsys):
    assert main(["schema", "--json"]) == 0
    columns = json.loads(capsys.readouterr().out)
    assert len(columns) == 279 and columns["meta__added_ts"] == "Datetime(time_unit='us', time_zone='UTC')"
    assert (columns["archive_day"], columns["archive_hour"]) == ("Date", "Int8")
    assert columns["twitter_sentiment_windows__last_cycle__tag_counts"] == "Map(String, Int64)"
    assert main(["schema", "--layout", "nested"]) == 0
    assert capsys.readouterr().out.startswith("# layout=nested columns=15 fingerprint=sha256:")


def test_demo_runs_as_a_module(tmp_path):
    """The README's first command, end to end in a subprocess (no network, no ../shared)."""
    run = subprocess.run(
        [sys.executable, "-m", "instrumetriq_polars", "demo", "--dir", str(tmp_path), "--entries-per-hour", "2"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "2026-01-15: published: 48 rows, 24/24 hours" in run.stdout
    folder = tmp_path / "tier3_daily" / "2026-01-15"
    manifest = json.loads(Path(folder / "manifest.json").read_text())
    assert manifest["row_count"] == 48 and manifest["bad_line_count"] == 0
    # then the day read back, each figure checked against the file as pyarrow reads it
    table = pq.read_table(folder / "data.parquet")
    instants = table.column("snapshot_ts").to_pylist()  # typed: instants in UTC
    btc = [dict(pairs)["btc"] for pairs in table.column("twitter_sentiment_windows__last_cycle__tag_counts").to_pylist()
           if pairs is not None and "btc" in dict(pairs)]
    hours = [str(manifest["rows_by_hour"][f"{hour:02d}"]) for hour in range(24)]
    assert run.stdout.splitlines()[2:] == [
        f"read back through scan: {table.num_rows} rows, {table.num_columns} columns (manifest.json: 48 rows, layout flat)",
        "rows per archive hour (the archive_hour column):",
        "  00-11: " + " ".join(hours[:12]),
        "  12-23: " + " ".join(hours[12:]),
        f"snapshot_ts from {format_instant(min(instants))} to {format_instant(max(instants))}",
        f"twitter_sentiment_windows.last_cycle.tag_counts['btc']: in {len(btc)} of 48 rows, {sum(btc)} in all",
    ]


@pytest.mark.parametrize("args, option", [
    (["verify", "--path", "foo://bucket/tier3"], "--path"),
    (["verify", "--local", ".", "--against-archive", "foo://archive"], "--against-archive"),
    (["export", "--out-dir", "foo://bucket/tier3"], "--out-dir"),
    (["export", "--archive-path", "foo://archive"], "--archive-path"),
])
def test_an_unknown_storage_protocol_is_a_usage_error(args, option, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    (line,) = err.splitlines()  # one line, not the usage (issue 22)
    assert line.startswith("error: ") and option in line and "unknown storage protocol 'foo' in 'foo://" in line
