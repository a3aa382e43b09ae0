"""Overlapping and repeated runs of the same day.

Locally one export of a day runs at a time (``lock.py``): a second one exits 1 with a message
naming the running export. A lock left by a killed run is taken over. On object stores, where
there is no lock, the export refuses to publish when the manifest changed while it ran. Re-runs
of the same input are byte-identical, and a re-run over the published day is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pytest

from instrumetriq_polars import PublishError, export_day
from instrumetriq_polars.cli import main
from instrumetriq_polars.write.lock import LOCK_NAME, PartitionLock
from instrumetriq_polars.synthetic import write_archive_day

from .conftest import DAY
from .support.processes import ENV, PAUSED_EXPORT, export_args

DATE = DAY.isoformat()

# Holds a day's lock in another process until killed.
LOCK_HOLDER = r"""
import sys, time
from instrumetriq_polars.write.lock import PartitionLock
PartitionLock(sys.argv[1], sys.argv[2]).acquire()
print("locked", flush=True)
time.sleep(300)
"""



@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("overlap") / "archive"
    write_archive_day(root, DAY, entries_per_hour=2)
    return root


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def refusal(lock: Path) -> str:
    holder = json.loads(lock.read_text())
    return (f"error: {DATE}: another export of {DATE} is running (pid {holder['pid']} on {holder['host']}, "
            f"started {holder['started']}; lock {lock}); this run did nothing")


def assert_published_cleanly(out: Path) -> dict:
    folder = out / DATE
    assert sorted(p.name for p in folder.iterdir()) == ["data.parquet", "manifest.json"]
    manifest = json.loads((folder / "manifest.json").read_bytes())
    assert hashlib.sha256((folder / "data.parquet").read_bytes()).hexdigest() == manifest["parquet_sha256"]
    return manifest


# -- local: the lock ----------------------------------------------------------------------------

def test_second_export_is_refused_while_the_lock_is_held(archive, tmp_path, capsys):
    out = tmp_path / "out"
    lock_path = out / DATE / LOCK_NAME
    with PartitionLock(str(out / DATE), DATE):
        code, stdout, stderr = run_cli(capsys, *export_args(archive, out))
        assert (code, stdout) == (1, "")
        assert stderr.splitlines()[-1] == refusal(lock_path)
        assert json.loads(lock_path.read_text())["pid"] == os.getpid()
        assert sorted(p.name for p in (out / DATE).iterdir()) == [LOCK_NAME]  # the refused run wrote nothing
    assert not lock_path.exists()
    code, stdout, _ = run_cli(capsys, *export_args(archive, out))
    assert code == 0 and stdout.startswith(f"{DATE}: published: 48 rows")
    assert_published_cleanly(out)


def test_lock_of_another_process_then_its_stale_lock_after_a_kill(archive, tmp_path, capsys):
    out = tmp_path / "out"
    lock_path = out / DATE / LOCK_NAME
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(out / DATE), DATE],
                              env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        code, _, stderr = run_cli(capsys, *export_args(archive, out))
        assert code == 1 and stderr.splitlines()[-1] == refusal(lock_path)
        assert f"(pid {holder.pid} on " in stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate()
    assert json.loads(lock_path.read_text())["pid"] == holder.pid  # left behind by the dead run
    code, stdout, _ = run_cli(capsys, *export_args(archive, out))
    assert code == 0 and stdout.startswith(f"{DATE}: published: 48 rows")
    assert_published_cleanly(out)  # the stale lock was taken over, then removed


def test_export_started_during_another_export_exits_1_and_the_first_publishes(archive, tmp_path, capsys):
    out, go = tmp_path / "out", tmp_path / "go"
    first = subprocess.Popen([sys.executable, "-c", PAUSED_EXPORT, *export_args(archive, out)],
                             env={**ENV, "GO": str(go)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline() == "paused\n"  # holds the lock, half-way through writing
        code, stdout, stderr = run_cli(capsys, *export_args(archive, out, "--force"))
        assert (code, stdout) == (1, "")
        assert stderr.splitlines()[-1] == refusal(out / DATE / LOCK_NAME)
        assert f"(pid {first.pid} on " in stderr
    finally:
        go.touch()
        stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert stdout.startswith(f"{DATE}: published: 48 rows")
    assert_published_cleanly(out)


def test_simultaneous_exports_publish_once(archive, tmp_path):
    """Three runs started together: one publishes; each other one is refused by the lock or, if it
    got the lock after the first finished, finds the day already published. Nothing interleaves."""
    out = tmp_path / "out"
    runs = [subprocess.Popen([sys.executable, "-m", "instrumetriq_polars", *export_args(archive, out)],
                             env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [(run.pid, *run.communicate(timeout=120), run.returncode) for run in runs]
    published = [r for r in results if r[3] == 0 and ": published: 48 rows" in r[1]]
    assert len(published) == 1
    for pid, stdout, stderr, code in results:
        if code == 1:
            assert f"error: {DATE}: another export of {DATE} is running (pid " in stderr and stdout == ""
        else:
            assert code == 0 and (": published: " in stdout or ": already published: " in stdout), stderr
    assert_published_cleanly(out)


def test_a_lock_that_cannot_be_created_is_one_line(archive, tmp_path, capsys):
    out = tmp_path / "out"
    (out / DATE / LOCK_NAME).mkdir(parents=True)  # something that cannot be opened as the lock file
    code, _, stderr = run_cli(capsys, *export_args(archive, out))
    assert code == 1 and "Traceback" not in stderr
    assert stderr.splitlines()[-1] == f"error: {DATE}: cannot lock {out}/{DATE}/{LOCK_NAME}: Is a directory; nothing was done"


# -- object stores: the manifest check before publishing ------------------------------------------

def _memory_out(name: str) -> str:
    fs = fsspec.filesystem("memory")
    if fs.exists(f"/{name}"):
        fs.rm(f"/{name}", recursive=True)
    return f"memory://{name}"


def test_object_store_refuses_to_publish_over_a_manifest_that_changed(archive):
    """No lock on object stores: a manifest that appears (or disappears) while the export runs
    means another export of the day published; this one refuses, even with --force."""
    fs = fsspec.filesystem("memory")
    out = _memory_out("overlap-a")
    manifest_key = f"/overlap-a/{DATE}/manifest.json"

    def another_run_publishes(report):
        if report.hour == 12:
            fs.pipe_file(manifest_key, b'{"written": "by another export"}')

    with pytest.raises(PublishError) as info:
        export_day(DAY, str(archive), out, force=True, progress=another_run_publishes)
    assert str(info.value) == (f"memory://{manifest_key} changed while this export ran (another export of {DATE}?); "
                               "nothing published by this run; run it again")
    assert fs.cat_file(manifest_key) == b'{"written": "by another export"}'
    assert not fs.exists(f"/overlap-a/{DATE}/data.parquet")

    export_day(DAY, str(archive), out, force=True)  # nobody else running: replaces it

    def another_run_unpublishes(report):
        if report.hour == 12:
            fs.rm_file(manifest_key)

    with pytest.raises(PublishError, match="changed while this export ran"):
        export_day(DAY, str(archive), out, force=True, progress=another_run_unpublishes)
    assert not fs.exists(manifest_key)


def test_object_store_identical_day_published_meanwhile_is_already_published(archive):
    fs = fsspec.filesystem("memory")
    reference = export_day(DAY, str(archive), _memory_out("overlap-ref"))
    out = _memory_out("overlap-b")

    def another_run_publishes_the_same(report):
        if report.hour == 12:
            for name in ("data.parquet", "manifest.json"):
                fs.pipe_file(f"/overlap-b/{DATE}/{name}", fs.cat_file(f"/overlap-ref/{DATE}/{name}"))

    result = export_day(DAY, str(archive), out, progress=another_run_publishes_the_same)
    assert result.status == "already published"
    assert result.manifest.parquet_sha256 == reference.manifest.parquet_sha256
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"/overlap-b/{DATE}", detail=False)) == ["data.parquet", "manifest.json"]


# -- re-runs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_same_input_gives_a_byte_identical_data_file(archive, tmp_path, capsys, layout):
    shas = []
    for name in ("a", "b"):
        code, _, _ = run_cli(capsys, *export_args(archive, tmp_path / name, "--layout", layout))
        assert code == 0
        shas.append(assert_published_cleanly(tmp_path / name)["parquet_sha256"])
    assert shas[0] == shas[1]
    assert (tmp_path / "a" / DATE / "data.parquet").read_bytes() == (tmp_path / "b" / DATE / "data.parquet").read_bytes()


def test_rerun_over_the_published_day_is_a_no_op(archive, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli(capsys, *export_args(archive, out))[0] == 0
    folder = out / DATE
    before = {name: ((folder / name).read_bytes(), (folder / name).stat().st_mtime_ns) for name in ("data.parquet", "manifest.json")}
    time.sleep(0.01)
    code, stdout, stderr = run_cli(capsys, *export_args(archive, out))
    assert code == 0 and "error" not in stderr
    assert stdout.startswith(f"{DATE}: already published: 48 rows, 24/24 hours, ") and stdout.count("\n") == 1
    after = {name: ((folder / name).read_bytes(), (folder / name).stat().st_mtime_ns) for name in ("data.parquet", "manifest.json")}
    assert after == before  # nothing was rewritten, not even the manifest's created_ts_utc
    assert_published_cleanly(out)


def test_rerun_with_different_data_is_refused_without_force(archive, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli(capsys, *export_args(archive, out))[0] == 0
    manifest = (out / DATE / "manifest.json").read_bytes()
    code, _, stderr = run_cli(capsys, *export_args(archive, out, "--layout", "nested"))
    assert code == 1 and "already published with different data" in stderr.splitlines()[-1]
    assert (out / DATE / "manifest.json").read_bytes() == manifest
    assert_published_cleanly(out)
