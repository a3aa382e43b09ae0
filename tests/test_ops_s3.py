"""Operating the dataset against moto's S3 server: status --r2, catch-up of the upload, --keep-local."""

from __future__ import annotations

import json
from datetime import date

from instrumetriq_polars.cli import main
from instrumetriq_polars.synthetic import write_archive_day

from .support.s3 import BUCKET

DAYS = [date(2026, 1, d) for d in (13, 14, 15)]
R2_DAILY = f"{BUCKET}/tier3/daily"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_status_r2_and_keep_local_after_verified_upload(s3, tmp_path, capsys):
    archive, out = tmp_path / "archive", tmp_path / "out"
    for day in DAYS:
        write_archive_day(archive, day, entries_per_hour=1)
    code, stdout, err = run(capsys, "export", "--archive-path", archive, "--out-dir", out, "--from-date", DAYS[0],
                            "--to-date", DAYS[-1], "--upload", "--keep-local", "1")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["2026-01-15"]  # the most recent local day is kept
    assert "removed local" in err and err.count("removed local") == 2
    assert all(s3.exists(f"{R2_DAILY}/{day}/manifest.json") for day in DAYS)
    code, stdout, _ = run(capsys, "status", "--r2", "--from-date", DAYS[0], "--to-date", DAYS[-1], "--archive-path", archive, "--json")
    assert code == 0 and [row["state"] for row in json.loads(stdout)["days"]] == ["published"] * 3
    # a re-run: local 2026-01-15 unchanged is not re-read; the remote copy is checked, nothing sent
    code, stdout, err = run(capsys, "export", "--archive-path", archive, "--out-dir", out, "--date", DAYS[2], "--upload")
    assert code == 0 and "archive unchanged, not re-read" in stdout and stdout.count("already published") == 2


def test_keep_local_keeps_a_day_whose_upload_differs(s3, tmp_path, capsys):
    archive, out = tmp_path / "archive", tmp_path / "out"
    for day in DAYS[:2]:
        write_archive_day(archive, day, entries_per_hour=1)
    assert run(capsys, "export", "--archive-path", archive, "--out-dir", out, "--date", DAYS[0], "--upload")[0] == 0
    key = f"{R2_DAILY}/{DAYS[0]}/manifest.json"
    manifest = json.loads(s3.cat_file(key))
    manifest["parquet_sha256"] = "0" * 64
    s3.pipe_file(key, json.dumps(manifest).encode())
    (out / "notes").mkdir()  # not a day folder: never touched
    code, _, err = run(capsys, "export", "--archive-path", archive, "--out-dir", out, "--date", DAYS[1], "--upload", "--keep-local", "0")
    assert code == 0, err
    assert (out / str(DAYS[0]) / "data.parquet").exists() and "publishes other data" in err
    assert not (out / str(DAYS[1])).exists() and (out / "notes").is_dir()
    assert run(capsys, "export", "--archive-path", archive, "--out-dir", out, "--date", DAYS[1], "--keep-local", "1")[0] == 2
