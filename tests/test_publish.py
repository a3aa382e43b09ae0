"""The one publishing decision (``publish.decide``), as a pure function and through export and
upload; the errors and what they carry; what cleanup may touch, and when.

The decision table is checked on a folder whose filesystem refuses every call: the function
reads nothing and changes nothing (it is handed the manifest's bytes and the data's size).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import replace

import fsspec
import pytest

from instrumetriq_polars import (
    ConflictError, DamagedDayError, ExportResult, LockHeldError, Manifest, ManifestChangedError, ManifestError,
    PublishError, StorageError, export_day, upload_day,
)
from instrumetriq_polars.write.flow import write_and_publish
from instrumetriq_polars.cli import main
from instrumetriq_polars.folder import PartitionFolder
from instrumetriq_polars.write.lock import LOCK_NAME, PartitionLock
from instrumetriq_polars.write.publish import ALREADY, COMPLETED, PUBLISHED, Candidate, Destination, decide
from instrumetriq_polars.synthetic import write_archive_day

from .conftest import DAY
from .support.processes import ENV, PAUSED_EXPORT, export_args

DATE = DAY.isoformat()
A, B = "a" * 64, "b" * 64  # two sha256 values: the same data, other data


class NoIO:
    """A filesystem that fails the test on any use beyond naming paths."""

    protocol = "file"

    def _strip_protocol(self, path: str) -> str:
        return str(path)

    def __getattr__(self, name):
        raise AssertionError(f"the decision used the filesystem: {name}")


FOLDER = PartitionFolder("/srv/out", DAY, fs=NoIO())
DATA, MANIFEST = f"/srv/out/{DATE}/data.parquet", f"/srv/out/{DATE}/manifest.json"


def manifest(sha: str = A, size: int = 1000, partial: bool = False, **fields) -> bytes:
    """The bytes of a manifest in place (partial: an hour missing)."""
    m = Manifest(
        date_utc=DATE, archive_day=DAY.strftime("%Y%m%d"), row_count=10, parquet_sha256=sha, parquet_size_bytes=size,
        layout="flat", schema_fingerprint="f", column_count=1, hours_found=23 if partial else 24,
        missing_hours=["13"] if partial else [], rows_by_hour={}, source_files=[], schema_versions={}, min_added_ts=None,
        max_added_ts=None, lines_read=10, lines_exported=10, bad_line_count=0, bad_lines=[], unknown_fields={},
        mistyped_fields={}, exporter={}, created_ts_utc="2026-01-16T00:05:00Z",
    )
    data = m.to_dict()
    data.update(fields)
    return json.dumps(data).encode()


def new(sha: str = A, partial: bool = False) -> Candidate:
    return Candidate(sha, partial)


CONFLICT = f"{DATA} and {MANIFEST} already published with different data (parquet_sha256 aaaaaaaaaaaa...)"
CHANGED = f"{MANIFEST} changed while this export ran (another export of {DATE}?); nothing published by this run; run it again"
DAMAGED = "the published day is damaged: {data} {found}, its manifest says 1000 bytes"
UNREADABLE = "{manifest} {problem}: whether the day is published cannot be told"
P, PP = manifest(), manifest(partial=True)

#: (case, seen, now, data size in place, new data, force) -> status, or (error class, message)
TABLE = [
    ("nothing published", None, None, None, new(), False, PUBLISHED),
    ("nothing published, forced", None, None, None, new(), True, PUBLISHED),
    ("same data, intact", P, P, 1000, new(), False, ALREADY),
    ("same data, forced: rewritten", P, P, 1000, new(), True, PUBLISHED),
    ("same data, data missing", P, P, None, new(), False, (DamagedDayError, DAMAGED.format(data=DATA, found="is missing"))),
    ("same data, data of another size", P, P, 990, new(), False, (DamagedDayError, DAMAGED.format(data=DATA, found="holds 990 bytes"))),
    ("same data, damaged, forced: repaired", P, P, 990, new(), True, PUBLISHED),
    ("other data", P, P, 1000, new(B), False, (ConflictError, CONFLICT)),
    ("other data, its data missing", P, P, None, new(B), False, (ConflictError, CONFLICT.replace(f"{DATA} and ", ""))),
    ("other data, forced", P, P, 1000, new(B), True, PUBLISHED),
    ("published meanwhile, same data", None, P, 1000, new(), False, ALREADY),
    ("published meanwhile, other data", None, P, 1000, new(B), False, (ManifestChangedError, CHANGED)),
    ("published meanwhile, other data, forced", None, P, 1000, new(B), True, (ManifestChangedError, CHANGED)),
    ("unpublished meanwhile", P, None, 1000, new(B), True, (ManifestChangedError, CHANGED)),
    ("replaced meanwhile", P, manifest(B), 1000, new(), False, (ManifestChangedError, CHANGED)),
    ("partial in place, complete new", PP, PP, 1000, new(B), False, COMPLETED),
    ("partial in place, complete new, same data", PP, PP, 1000, new(), False, COMPLETED),
    ("partial in place, data missing, complete new", PP, PP, None, new(B), False, COMPLETED),
    ("partial in place, complete new, forced", PP, PP, 1000, new(B), True, COMPLETED),
    ("partial in place, changed meanwhile", None, PP, 1000, new(B), False, (ManifestChangedError, CHANGED)),
    ("partial in place, partial new", PP, PP, 1000, new(B, partial=True), False,
     (ConflictError, CONFLICT.replace("...)", "...) (both partial: only a complete export replaces a partial one unless forced)"))),
    ("partial in place, partial new, same data", PP, PP, 1000, new(partial=True), False, ALREADY),
    ("partial in place, partial new, forced", PP, PP, 1000, new(B, partial=True), True, PUBLISHED),
    ("complete in place, partial new", P, P, 1000, new(B, partial=True), False, (ConflictError, CONFLICT)),
    ("not JSON", b"{oops", b"{oops", 1000, new(), False,
     (ManifestError, UNREADABLE.format(manifest=MANIFEST, problem="is not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"))),
    ("not JSON, forced", b"{oops", b"{oops", 1000, new(), True, PUBLISHED),
    ("not an object", b"[]", b"[]", 1000, new(), False, (ManifestError, UNREADABLE.format(manifest=MANIFEST, problem="is not a JSON object"))),
    ("fields missing", b'{"date_utc": "x"}', b'{"date_utc": "x"}', 1000, new(), False, (ManifestError, None)),
    ("sha256 of the wrong type", manifest(sha=5), manifest(sha=5), 1000, new(), False,
     (ManifestError, UNREADABLE.format(manifest=MANIFEST, problem="has fields of the wrong type or negative counts: parquet_sha256 (5)"))),
    ("size of the wrong type", manifest(size=True), manifest(size=True), 1000, new(), False,
     (ManifestError, UNREADABLE.format(manifest=MANIFEST, problem="has fields of the wrong type or negative counts: parquet_size_bytes (True)"))),
    ("partiality of the wrong type", manifest(bad_line_count="2"), manifest(bad_line_count="2"), 1000, new(B), False,
     (ManifestError, UNREADABLE.format(manifest=MANIFEST, problem="has fields of the wrong type or negative counts: bad_line_count ('2')"))),
    ("unreadable, changed meanwhile", None, b"{oops", None, new(), False, (ManifestChangedError, CHANGED)),
]


@pytest.mark.parametrize("case, seen, now, size, candidate, force, expected", TABLE, ids=[row[0] for row in TABLE])
def test_decision_table(case, seen, now, size, candidate, force, expected):
    if isinstance(expected, str):
        decision = decide(FOLDER, seen, now, size, candidate, force)
        assert decision.status == expected
        assert decision.write == (expected != ALREADY)
        if now is not None and expected == ALREADY:
            assert decision.published.created_ts_utc == "2026-01-16T00:05:00Z"
        assert decide(FOLDER, seen, now, size, candidate, force) == decision  # nothing changed by deciding
        return
    error, message = expected
    with pytest.raises(error) as raised:
        decide(FOLDER, seen, now, size, candidate, force)
    assert type(raised.value) is error
    if message is not None:
        assert str(raised.value) == message
    else:
        assert str(raised.value).startswith(f"{MANIFEST} lacks required fields: ")
    assert "--" not in str(raised.value)  # the library names no flag: the CLI adds it from .remedy
    assert raised.value.remedy == (None if error is ManifestChangedError else "force")


def test_refusals_carry_what_the_caller_needs():
    with pytest.raises(ConflictError) as conflict:
        decide(FOLDER, P, P, 1000, new(B), False)
    assert (conflict.value.url, conflict.value.published_sha256, conflict.value.new_sha256) == (f"/srv/out/{DATE}", A, B)
    with pytest.raises(DamagedDayError) as damaged:
        decide(FOLDER, P, P, 990, new(), False)
    assert (damaged.value.url, damaged.value.size, damaged.value.expected_size) == (DATA, 990, 1000)
    assert isinstance(damaged.value, ConflictError)  # the same remedy: --force
    with pytest.raises(ManifestChangedError) as changed:
        decide(FOLDER, None, P, 1000, new(B), False)
    assert changed.value.url == MANIFEST
    for error in (conflict.value, damaged.value, changed.value):
        assert isinstance(error, PublishError) and "\n" not in str(error)


# -- through export and upload ---------------------------------------------------------------------

def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_complete_export_replaces_a_partial_one_without_force(tmp_path, capsys):
    """Exported with --allow-incomplete while an hour was missing; the hour arrives; a plain
    re-run completes the day (status "completed"); the run after it is a no-op."""
    archive, out = tmp_path / "archive", tmp_path / "out"
    write_archive_day(archive, DAY, entries_per_hour=2)
    hour = archive / DAY.strftime("%Y%m%d") / "13.jsonl.gz"
    held_back = hour.read_bytes()
    hour.unlink()
    code, stdout, _ = run_cli(capsys, *export_args(archive, out, "--allow-incomplete"))
    assert code == 0 and stdout.startswith(f"{DATE}: published PARTIAL: 46 rows, 23/24 hours")

    code, _, stderr = run_cli(capsys, *export_args(archive, out, "--layout", "nested", "--allow-incomplete"))
    assert code == 1 and stderr.splitlines()[-1].endswith(
        "(both partial: only a complete export replaces a partial one unless forced); pass --force to replace")

    hour.write_bytes(held_back)  # the hour arrives
    code, stdout, stderr = run_cli(capsys, *export_args(archive, out))
    assert code == 0, stderr
    assert stdout.startswith(f"{DATE}: completed: 48 rows, 24/24 hours") and stdout.count("\n") == 1
    manifest = json.loads((out / DATE / "manifest.json").read_bytes())
    assert manifest["is_partial"] is False and manifest["row_count"] == 48
    assert run_cli(capsys, *export_args(archive, out))[1].startswith(f"{DATE}: already published: 48 rows")

    hour.unlink()  # a partial export never replaces a complete day without --force
    code, _, stderr = run_cli(capsys, *export_args(archive, out, "--allow-incomplete"))
    assert code == 1 and stderr.splitlines()[-1].endswith("already published with different data "
                                                          f"(parquet_sha256 {manifest['parquet_sha256'][:12]}...); pass --force to replace")


def test_upload_completes_a_partial_day_and_keeps_the_callers_manifest(tmp_path):
    """upload_day decides as export_day does; "already published" returns the manifest as
    published (its creation time) without changing the manifest it was given."""
    archive, local, remote = tmp_path / "archive", tmp_path / "local", "memory://publish-upload/daily"
    fs = fsspec.filesystem("memory")
    if fs.exists("/publish-upload"):
        fs.rm("/publish-upload", recursive=True)
    write_archive_day(archive, DAY, entries_per_hour=2)
    hour = archive / DAY.strftime("%Y%m%d") / "05.jsonl.gz"
    held_back = hour.read_bytes()
    hour.unlink()
    partial = export_day(DAY, str(archive), str(local), allow_incomplete=True)
    assert upload_day(partial, remote).status == PUBLISHED
    hour.write_bytes(held_back)
    complete = export_day(DAY, str(archive), str(local))
    assert complete.status == COMPLETED
    uploaded = upload_day(complete, remote)
    assert uploaded.status == COMPLETED and not Manifest.from_json(fs.cat_file(f"/publish-upload/daily/{DATE}/manifest.json")).is_partial

    given = replace(complete.manifest, created_ts_utc="2000-01-01T00:00:00Z")
    again = upload_day(ExportResult(given, complete.location, complete.status, 0.0), remote)
    assert again.status == ALREADY
    assert given.created_ts_utc == "2000-01-01T00:00:00Z"  # not rewritten as a side effect
    assert again.manifest.created_ts_utc == complete.manifest.created_ts_utc  # as published


@pytest.mark.parametrize("content, problem", [
    (b"not json at all", "is not valid JSON"),
    (b'{"parquet_sha256": 5}', "lacks required fields"),
])
def test_an_unreadable_published_manifest_is_a_manifest_error(small_archive, tmp_path, capsys, content, problem):
    out = tmp_path / "out"
    (out / DATE).mkdir(parents=True)
    (out / DATE / "manifest.json").write_bytes(content)
    with pytest.raises(ManifestError) as raised:
        export_day(DAY, str(small_archive), str(out))
    assert str(raised.value).startswith(f"{out}/{DATE}/manifest.json {problem}")
    assert str(raised.value).endswith(": whether the day is published cannot be told")
    assert raised.value.remedy == "force"
    assert os.listdir(out / DATE) == ["manifest.json"]  # nothing written, nothing left
    code, stdout, _ = run_cli(capsys, *export_args(small_archive, out, "--force"))
    assert code == 0 and stdout.startswith(f"{DATE}: published: 72 rows")


def test_a_mistyped_published_manifest_is_a_manifest_error_not_a_crash(small_archive, tmp_path):
    out = tmp_path / "out"
    export_day(DAY, str(small_archive), str(out), layout="nested")
    path = out / DATE / "manifest.json"
    path.write_bytes(path.read_bytes().replace(b'"parquet_sha256": "', b'"parquet_sha256": 7, "was": "'))
    with pytest.raises(ManifestError, match=r"has fields of the wrong type or negative counts: parquet_sha256 \(7\)"):
        export_day(DAY, str(small_archive), str(out))


def test_lock_held_and_storage_errors_carry_their_details(small_archive, tmp_path, monkeypatch):
    out = tmp_path / "out"
    lock = out / DATE / LOCK_NAME
    with PartitionLock(str(out / DATE), DATE), pytest.raises(LockHeldError) as held:
        export_day(DAY, str(small_archive), str(out))
    assert held.value.lock_path == str(lock) and held.value.holder["pid"] == os.getpid()
    assert set(held.value.holder) == {"pid", "host", "started"}

    class Full(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            raise OSError(28, "No space left on device")

    destination = Destination(str(out), DAY)
    monkeypatch.setattr(destination.fs, "open", lambda *args, **kwargs: Full())
    with pytest.raises(StorageError) as failed:
        destination.write_data(lambda f: f.write(b"x"))
    assert failed.value.url == f"{out}/{DATE}/data.parquet"
    assert str(failed.value) == f"could not write {out}/{DATE}/data.parquet: OSError: [Errno 28] No space left on device; nothing published"


def test_a_bug_while_an_operator_error_is_handled_stays_a_bug(small_archive, tmp_path):
    """_unwrap surfaces our error out of a Polars wrapper; it must not turn a bug raised while one
    of ours was being handled (its ``__context__``) into that operator error."""
    destination = Destination(str(tmp_path / "out"), DAY)

    def finish(written):
        try:
            decide(FOLDER, P, P, 1000, new(B), False)
        except ConflictError:
            return written.no_such_field  # a bug in the handler: AttributeError

    with pytest.raises(AttributeError, match="no_such_field"):
        write_and_publish(destination, lambda f: f.write(b"data"), finish, force=False)
    assert not (tmp_path / "out" / DATE).exists()


# -- cleanup: only inside the lock, only our names ---------------------------------------------------

OURS = [".data.parquet.tmp-1-0123abcd", ".manifest.json.tmp-999999-89abcdef"]
NOT_OURS = ["notes.tmp-backup", ".data.parquet.tmp-backup", "x.tmp-999999", "data.parquet.tmp-1-0123abcd",
            ".data.parquet.tmp-1-0123abcd.bak", "report.txt"]


def test_cleanup_removes_only_our_temporary_names(small_archive, tmp_path, capsys):
    """Inside the lock every temporary file of ours is stale, whatever process id it names (pid 1
    is alive; 999999 is not); files that merely contain ``.tmp-`` are someone else's. Both on a
    run that publishes and on one that finds the day already published."""
    out = tmp_path / "out"
    for rerun in (False, True):
        folder = out / DATE
        folder.mkdir(parents=True, exist_ok=True)
        for name in OURS + NOT_OURS:
            (folder / name).write_bytes(b"kept?")
        code, stdout, _ = run_cli(capsys, *export_args(small_archive, out))
        assert code == 0 and stdout.startswith(f"{DATE}: {'already published' if rerun else 'published'}: ")
        assert sorted(os.listdir(folder)) == sorted(NOT_OURS + ["data.parquet", "manifest.json"])
        assert all((folder / name).read_bytes() == b"kept?" for name in NOT_OURS)


def test_a_run_refused_by_the_lock_deletes_nothing(small_archive, tmp_path, capsys, monkeypatch):
    """A second run that cannot see the first one's process (another PID namespace, another host
    on shared storage) must not take its temporary file for a dead run's: it is refused by the
    lock before it touches anything, and the first run publishes."""
    out, go = tmp_path / "out", tmp_path / "go"
    first = subprocess.Popen([sys.executable, "-c", PAUSED_EXPORT, *export_args(small_archive, out)],
                             env={**ENV, "GO": str(go)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline() == "paused\n"  # holds the lock, its temporary data file open
        temp = [n for n in os.listdir(out / DATE) if n.startswith(".data.parquet.tmp-")]
        assert temp == [n for n in temp if f".tmp-{first.pid}-" in n] and len(temp) == 1
        real_kill = os.kill

        def other_namespace(pid, sig):
            if pid == first.pid:
                raise ProcessLookupError(pid)  # no such process, as seen from here
            return real_kill(pid, sig)

        monkeypatch.setattr(os, "kill", other_namespace)
        code, _, stderr = run_cli(capsys, *export_args(small_archive, out, "--force"))
        assert code == 1 and f"another export of {DATE} is running (pid {first.pid} on " in stderr
        assert (out / DATE / temp[0]).exists()
    finally:
        go.touch()
        stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert stdout.startswith(f"{DATE}: published: 72 rows")
    assert sorted(os.listdir(out / DATE)) == ["data.parquet", "manifest.json"]


def test_a_local_destination_is_not_cleaned_without_the_lock(tmp_path):
    folder = tmp_path / "out" / DATE
    folder.mkdir(parents=True)
    (folder / OURS[0]).write_bytes(b"a live run's, maybe")
    destination = Destination(str(tmp_path / "out"), DAY)
    assert destination.clean_stale_temps() == [] and (folder / OURS[0]).exists()
    with PartitionLock(str(folder), DATE):
        assert destination.clean_stale_temps(locked=True) == [str(folder / OURS[0])]
