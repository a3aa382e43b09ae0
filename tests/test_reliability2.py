"""Issue 10, "Reliability, round 2", points 1-4: hour-file names, text UTF-8 cannot encode, deep
nesting, symlinked hour files. Each class is tested through the CLI (exit code, one-line
messages) and the published day (its manifest must agree with its data file), on days of small
real-shaped entries (tests/support/daycheck.py)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.local import LocalFileSystem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from instrumetriq_polars import ArchiveError, export_day, verify_day
from instrumetriq_polars.archive import open_archive_day
from instrumetriq_polars.cli import main
from instrumetriq_polars.decode import MAX_DEPTH, BadLine, deep_json

from .conftest import DAY
from .support.daycheck import assert_stderr_lines, check_published, dumps, small_entries, write_hour

DATE = DAY.isoformat()
FOLDER = DAY.strftime("%Y%m%d")
PER_HOUR = 2
ROWS = 24 * PER_HOUR
IGNORED = "not an hour file (HH.jsonl.gz); ignored, listed in the manifest's ignored_files"
HOUR_NAMES = {f"{h:02d}.jsonl.gz" for h in range(24)}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pristine") / "archive"
    for hour in range(24):
        entries = small_entries(PER_HOUR, seed=hour, hour=hour)
        write_hour(root / FOLDER / f"{hour:02d}.jsonl.gz", [dumps(e) for e in entries])
    return root


@pytest.fixture
def archive(pristine, tmp_path) -> Path:
    """A complete day, PER_HOUR small entries an hour, for the test to change."""
    return Path(shutil.copytree(pristine, tmp_path / "archive", symlinks=True))


def folder(archive: Path) -> Path:
    return archive / FOLDER


def export(capsys, archive: Path, out: Path, *flags: str) -> tuple[int, str, list[str]]:
    """Run the export CLI; every stderr line must be one known line. Returns the exit code,
    stdout and the warning/error lines."""
    code = main(["export", "--date", DATE, "--archive-path", str(archive), "--out-dir", str(out), *flags])
    stdout, stderr = capsys.readouterr()
    assert_stderr_lines(stderr)
    return code, stdout, [line for line in stderr.splitlines() if line.startswith(("warning:", "error:"))]


def edit_first_line(archive: Path, hour: int, line: bytes) -> None:
    path = folder(archive) / f"{hour:02d}.jsonl.gz"
    entries = small_entries(PER_HOUR, seed=hour, hour=hour)
    write_hour(path, [line] + [dumps(e) for e in entries[1:]])


def extras(day: Path) -> list[str]:
    return [e for e in pq.read_table(day / "data.parquet", columns=["_extra"]).column("_extra").to_pylist() if e]


# -- 1. hour-file names ----------------------------------------------------------------------------

# (name in the folder, as the warning shows it): none of them is an hour file.
NOT_HOUR_FILES = [
    ("05.jsonl.gz\n", "05.jsonl.gz\\n"),  # the issue's case: re.match with "$" took it for hour 05
    ("\n05.jsonl.gz", "\\n05.jsonl.gz"),
    ("05.jsonl.gz\t", "05.jsonl.gz\\t"),
    ("5.jsonl.gz", "5.jsonl.gz"),
    ("005.jsonl.gz", "005.jsonl.gz"),
    ("24.jsonl.gz", "24.jsonl.gz"),
    ("99.jsonl.gz", "99.jsonl.gz"),
    ("05.JSONL.GZ", "05.JSONL.GZ"),
    ("05.jsonl.GZ", "05.jsonl.GZ"),
    (" 05.jsonl.gz", " 05.jsonl.gz"),
    ("05.jsonl.gz ", "05.jsonl.gz "),
    ("\u0660\u0665.jsonl.gz", "\u0660\u0665.jsonl.gz"),  # Arabic-Indic digits: "\d" matches them, [0-9] does not
    ("\uff10\uff15.jsonl.gz", "\uff10\uff15.jsonl.gz"),  # fullwidth digits
    ("05.jsonl.gz.tmp", "05.jsonl.gz.tmp"),
    (".05.jsonl.gz", ".05.jsonl.gz"),
    ("05xjsonlxgz", "05xjsonlxgz"),
]


@pytest.mark.parametrize("name", [n for n, _ in NOT_HOUR_FILES])
def test_names_that_are_not_exactly_an_hour_file_are_ignored(archive, name):
    shutil.copy(folder(archive) / "05.jsonl.gz", folder(archive) / name)
    day = open_archive_day(str(archive), DAY)
    assert [h.name for h in day.hour_files] == sorted(HOUR_NAMES)
    assert day.ignored_files == (name,)


def test_a_folder_full_of_near_hour_names_exports_24_hours_that_agree_with_the_manifest(capsys, archive, tmp_path):
    """Copies of hour 05 (with more entries, so reading one would show) under every name above:
    none is read; each is listed and warned about on one line; the manifest matches the data."""
    more = [dumps(e) for e in small_entries(5, seed=99, hour=5)]
    for name, _ in NOT_HOUR_FILES:
        write_hour(folder(archive) / name, more)
    code, stdout, messages = export(capsys, archive, tmp_path / "out")
    assert code == 0 and stdout.startswith(f"{DATE}: published: {ROWS} rows, 24/24 hours, ")
    by_name = sorted(NOT_HOUR_FILES)
    assert messages == [f"warning: {FOLDER}/{shown}: {IGNORED}" for _, shown in by_name]
    manifest, _ = check_published(tmp_path / "out" / DATE)
    assert manifest["ignored_files"] == [name for name, _ in by_name]
    assert manifest["rows_by_hour"]["05"] == PER_HOUR and manifest["hours_found"] == 24


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.sets(st.text(alphabet="0125\u0660\uff10 .jsonlgzJSONLGZ\n\t", min_size=1, max_size=13)
                     .filter(lambda n: n not in HOUR_NAMES and n not in (".", "..")), min_size=1, max_size=4))
def test_whatever_else_is_in_the_folder_the_manifest_agrees_with_the_data(pristine, tmp_path_factory, names):
    archive = Path(shutil.copytree(pristine, tmp_path_factory.mktemp("names") / "archive"))
    for name in names:
        shutil.copy(folder(archive) / "05.jsonl.gz", folder(archive) / name)
    out = archive.parent / "out"
    result = export_day(DAY, str(archive), str(out))
    manifest, _ = check_published(out / DATE)
    assert manifest["ignored_files"] == sorted(names) and manifest["row_count"] == ROWS
    assert len(result.warnings) == len(names) and all("\n" not in w for w in result.warnings)


def test_a_folder_named_like_an_hour_file_is_a_missing_hour(capsys, archive, tmp_path):
    (folder(archive) / "05.jsonl.gz").unlink()
    (folder(archive) / "05.jsonl.gz").mkdir()
    code, _, messages = export(capsys, archive, tmp_path / "out")
    assert code == 1 and messages == [
        f"error: incomplete day {DATE}: missing hours 05 in {folder(archive)} "
        "(05.jsonl.gz/: a folder, not a file); wait for them or pass --allow-incomplete"]
    code, stdout, messages = export(capsys, archive, tmp_path / "out", "--allow-incomplete")
    assert code == 0 and stdout.startswith(f"{DATE}: published PARTIAL: {ROWS - PER_HOUR} rows, 23/24 hours, ")
    assert messages == [f"warning: {FOLDER}/05.jsonl.gz/: a folder, not a file; hour 05 is missing; "
                        "ignored, listed in the manifest's ignored_files"]
    manifest, _ = check_published(tmp_path / "out" / DATE)
    assert manifest["ignored_files"] == ["05.jsonl.gz/"] and manifest["missing_hours"] == ["05"]


def test_one_hour_is_read_from_one_file_even_when_the_storage_lists_it_twice(monkeypatch, archive, tmp_path):
    listing = LocalFileSystem.ls
    day_folder = str(folder(archive))

    def twice(self, path, detail=True, **kwargs):
        found = listing(self, path, detail=detail, **kwargs)
        return found + found if path.rstrip("/") == day_folder else found

    monkeypatch.setattr(LocalFileSystem, "ls", twice)
    result = export_day(DAY, str(archive), str(tmp_path / "out"))
    manifest, _ = check_published(tmp_path / "out" / DATE)
    assert manifest["hours_found"] == 24 and manifest["row_count"] == ROWS
    assert manifest["ignored_files"] == sorted(HOUR_NAMES)
    assert result.warnings[5] == (f"{FOLDER}/05.jsonl.gz: listed twice; hour 05 is read once; "
                                  "ignored, listed in the manifest's ignored_files")


# -- 2. text UTF-8 cannot encode -------------------------------------------------------------------

def _set(path: tuple, value):
    def change(entry: dict) -> None:
        node = entry
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


# (what the line holds, where, the value, unknown_fields and mistyped_fields in the manifest)
SURROGATE_CASES = [
    ("unknown key (the issue's case)", ("k\ud800",), 1, {"k\\ud800": 1}, {}),
    ("unknown key in a block", ("meta", "k\udcff"), 1, {"meta.k\\udcff": 1}, {}),
    ("unknown key in a spot_prices item", ("spot_prices", 0, "k\ud800"), 1, {"spot_prices[].k\\ud800": 1}, {}),
    ("count map key", ("twitter_sentiment_windows", "last_cycle", "tag_counts"), {"t\ud800": 2},
     {}, {"twitter_sentiment_windows.last_cycle.tag_counts": 1}),
    ("key inside an unknown value", ("note",), {"k\ud800": ["x\udfff"]}, {"note": 1}, {}),
    ("unknown string value", ("note",), "x\udcff", {"note": 1}, {}),
    ("a string field", ("meta", "source"), "s\ud800", {}, {"meta.source": 1}),
    ("a surrogate pair is not a lone surrogate", ("k\U0001f600",), 1, {"k\U0001f600": 1}, {}),
]


def _in_extra(entry: dict, path: tuple) -> dict:
    """What ``_extra`` holds when the value at ``path`` moved there (a list of objects moves whole)."""
    if path[0] == "spot_prices":
        return {"spot_prices": entry["spot_prices"]}
    node = entry
    for key in path:
        node = node[key]
    for key in reversed(path):
        node = {key: node}
    return node


@pytest.mark.parametrize("what, path, value, unknown, mistyped", SURROGATE_CASES, ids=[c[0] for c in SURROGATE_CASES])
def test_lone_surrogates_anywhere_in_a_line_export_and_the_manifest_is_strict_utf8(capsys, archive, tmp_path, what, path, value, unknown, mistyped):
    entry = small_entries(PER_HOUR, seed=3, hour=3)[0]
    _set(path, value)(entry)
    edit_first_line(archive, 3, dumps(entry))  # json.dumps writes a lone surrogate as a \ud800 escape
    code, _, messages = export(capsys, archive, tmp_path / "out")
    assert code == 0 and len(messages) == len(mistyped)  # one wrong-type warning per mistyped field
    manifest, _ = check_published(tmp_path / "out" / DATE)
    assert manifest["unknown_fields"] == unknown and manifest["mistyped_fields"] == mistyped
    assert manifest["row_count"] == ROWS and manifest["stdlib_json_lines"] == (0 if "pair" in what else 1)
    [extra] = extras(tmp_path / "out" / DATE)
    assert json.loads(extra) == _in_extra(json.loads(dumps(entry)), path)  # exact: json.loads reads the escapes back


def test_file_names_that_are_not_utf8_are_listed_and_shown_on_one_line(capsys, archive, tmp_path):
    names = {b"notes\xff.txt": "notes\\xff.txt", b"a\nb\xfe": "a\\nb\\xfe", b"\xe9t\xc3\xa9.log": "\\xe9t\u00e9.log"}
    for raw in names:
        (folder(archive) / os.fsdecode(raw)).write_bytes(b"x")
    code, _, messages = export(capsys, archive, tmp_path / "out")
    assert code == 0
    manifest, _ = check_published(tmp_path / "out" / DATE)
    listed = sorted(names, key=os.fsdecode)
    assert manifest["ignored_files"] == [names[raw].replace("\\n", "\n") for raw in listed]
    assert messages == [f"warning: {FOLDER}/{names[raw]}: {IGNORED}" for raw in listed]


def test_a_manifest_holding_unencodable_text_is_written_as_strict_utf8(archive, tmp_path):
    """The net under every source: whatever string reaches the manifest, to_json writes it."""
    manifest = export_day(DAY, str(archive), str(tmp_path / "out")).manifest
    manifest.ignored_files = ["x\udcff"]
    manifest.unknown_fields = {"k\ud800": 2}
    manifest.bad_lines = [{"file": "f\udc80", "line": 1, "reason": "r\udfff"}]
    written = orjson.loads(manifest.to_json())
    assert written["ignored_files"] == ["x\\udcff"] and written["unknown_fields"] == {"k\\ud800": 2}
    assert written["bad_lines"] == [{"file": "f\\udc80", "line": 1, "reason": "r\\udfff"}]


def test_bad_line_reasons_are_one_writable_line():
    bad = BadLine("20260115/03.jsonl.gz", 2, "not valid JSON (a\nb\ud800)")
    assert bad.message() == "20260115/03.jsonl.gz:2: not valid JSON (a\\nb\\ud800)"
    assert bad.to_dict()["reason"].encode() == b"not valid JSON (a\\nb\\ud800)"


# -- 3. deep nesting --------------------------------------------------------------------------------

# Where the deep value goes: (path to it from the entry, extra change). The value then sits
# len(path) containers deep, and the line nests len(path) + the value's own depth.
DEEP_PLACES = {
    "unknown field": ("deep",),
    "unknown field in a block": ("meta", "deep"),
    "float field": ("meta", "duration_sec"),
    "list<string> field": ("twitter_sentiment_windows", "last_cycle", "top_terms", "pump_hype"),
    "count map value": ("twitter_sentiment_windows", "last_cycle", "tag_counts", "t"),
    "spot_prices item": ("spot_prices", 0, "mid"),
}


def nested(kind: str, depth: int) -> str:
    if kind == "arrays":
        return "[" * depth + "]" * depth
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


def _put_first(path: tuple, value):
    """Set the value at ``path``, as the first key of its object: code that walks the object
    meets the deep value before anything else (a check that stops at the first value found
    would otherwise never reach it)."""
    def change(entry: dict) -> None:
        node = entry
        for key in path[:-1]:
            node = node[key]
        rest = {k: v for k, v in node.items() if k != path[-1]}
        node.clear()
        node[path[-1]] = value
        node.update(rest)
    return change


def deep_line(place: str, kind: str, depth: int, stdlib: bool) -> tuple[bytes, str]:
    """An entry whose deepest point is ``depth`` levels down, at ``place``; with ``stdlib`` it
    also holds a NaN, so orjson refuses it and ``json.loads`` decodes it."""
    path = DEEP_PLACES[place]
    entry = small_entries(PER_HOUR, seed=3, hour=3)[0]
    _put_first(path, "@DEEP@")(entry)
    if stdlib:
        entry["derived"]["spread_bps"] = float("nan")
    value = nested(kind, depth - len(path))
    return dumps(entry).replace(b'"@DEEP@"', value.encode()), value


@pytest.mark.parametrize("stdlib", [False, True], ids=["orjson", "json.loads"])
@pytest.mark.parametrize("kind", ["arrays", "objects"])
@pytest.mark.parametrize("place", list(DEEP_PLACES))
def test_a_line_as_deep_as_orjson_reads_is_exported_one_level_more_is_a_bad_line(tmp_path, place, kind, stdlib):
    """orjson reads 1024 levels; Python's json stopped at ~990 (minus its caller's depth), and
    writing such a value to _extra raised RecursionError: the day could not be exported."""
    archive = tmp_path / "archive"
    others = [dumps(e) for e in small_entries(PER_HOUR, seed=3, hour=3)[1:]]
    for depth, out in ((MAX_DEPTH, tmp_path / "fits"), (MAX_DEPTH + 1, tmp_path / "too_deep")):
        line, value = deep_line(place, kind, depth, stdlib)
        write_hour(archive / FOLDER / "03.jsonl.gz", [line, *others])
        result = export_day(DAY, str(archive), str(out), allow_incomplete=True)
        manifest, _ = check_published(out / DATE)
        assert manifest["lines_read"] == PER_HOUR
        if depth <= MAX_DEPTH:
            assert manifest["row_count"] == PER_HOUR and manifest["bad_line_count"] == 0
            [extra] = extras(out / DATE)
            assert value in extra  # kept whole, as written
        else:
            assert manifest["row_count"] == PER_HOUR - 1
            assert manifest["bad_lines"] == [{"file": f"{FOLDER}/03.jsonl.gz", "line": 1,
                                              "reason": f"JSON nested more than {MAX_DEPTH} levels deep"}]
        assert result.manifest.bad_line_count == manifest["bad_line_count"]


def test_the_issues_deep_unknown_field_through_the_cli(capsys, archive, tmp_path):
    """The issue's range (970-1020 levels): exit 0, not a RecursionError traceback."""
    for depth, hour in ((970, 2), (1000, 3), (1020, 4)):
        line, _ = deep_line("unknown field", "objects", depth, stdlib=False)
        edit_first_line(archive, hour, line)
    code, stdout, messages = export(capsys, archive, tmp_path / "out")
    assert code == 0 and messages == [] and stdout.startswith(f"{DATE}: published: {ROWS} rows, 24/24 hours")
    manifest, _ = check_published(tmp_path / "out" / DATE)
    assert manifest["unknown_fields"] == {"deep": 3}


def test_verify_against_the_archive_compares_the_deepest_lines_without_recursion_errors(archive, tmp_path):
    """The cross-check parses and compares source lines as deep as the export reads (it recursed
    past Python's limit: a false FAIL ... RecursionError)."""
    for depth, hour in ((1000, 2), (1020, 3)):
        line, _ = deep_line("unknown field", "arrays", depth, stdlib=False)
        edit_first_line(archive, hour, line)
    export_day(DAY, str(archive), str(tmp_path / "out"))
    result = verify_day(DAY, str(tmp_path / "out"), against_archive=str(archive), sample_size=10_000)
    assert result.status != "FAIL", result.errors


def test_deep_json_restores_the_recursion_limit_with_threads_inside():
    before = sys.getrecursionlimit()
    text = nested("arrays", MAX_DEPTH)
    failures, start = [], threading.Barrier(4)

    def work() -> None:
        start.wait()
        for _ in range(20):
            try:
                with deep_json():
                    json.dumps(json.loads(text))
            except RecursionError as exc:  # pragma: no cover - the failure being tested for
                failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and sys.getrecursionlimit() == before


# -- 4. symlinks ------------------------------------------------------------------------------------

@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_a_symlink_to_a_regular_file_is_an_hour_file(capsys, archive, tmp_path, relative):
    target = tmp_path / "elsewhere" / "05.jsonl.gz"
    target.parent.mkdir()
    (folder(archive) / "05.jsonl.gz").rename(target)
    (folder(archive) / "05.jsonl.gz").symlink_to(os.path.relpath(target, folder(archive)) if relative else target)
    code, stdout, messages = export(capsys, archive, tmp_path / "out")
    assert code == 0 and messages == [] and stdout.startswith(f"{DATE}: published: {ROWS} rows, 24/24 hours")
    manifest, _ = check_published(tmp_path / "out" / DATE)
    assert manifest["source_files"][5]["size_bytes"] == target.stat().st_size and manifest["ignored_files"] == []


def test_a_symlinked_day_folder_is_read(capsys, archive, tmp_path):
    moved = folder(archive).rename(tmp_path / "real_day")
    folder(archive).symlink_to(moved)
    code, _, messages = export(capsys, archive, tmp_path / "out")
    assert code == 0 and messages == []
    assert check_published(tmp_path / "out" / DATE)[0]["hours_found"] == 24


def _dangling(path: Path, tmp_path: Path) -> str:
    path.symlink_to(tmp_path / "gone" / "05.jsonl.gz")
    return f"a symlink to {tmp_path}/gone/05.jsonl.gz, which does not exist"


def _loop(path: Path, tmp_path: Path) -> str:
    path.symlink_to("loop")
    path.with_name("loop").symlink_to(path.name)
    return "a symlink to loop, which cannot be followed (OSError: "


def _to_folder(path: Path, tmp_path: Path) -> str:
    (tmp_path / "a_folder").mkdir()
    path.symlink_to(tmp_path / "a_folder")
    return f"a symlink to {tmp_path}/a_folder, which is a folder"


def _newline_target(path: Path, tmp_path: Path) -> str:
    path.symlink_to("gone\nfor good\udcff")
    return "a symlink to gone\\nfor good\\xff, which does not exist"


def _fifo(path: Path, tmp_path: Path) -> str:
    os.mkfifo(path)  # never opened: reading it would wait for a writer forever
    return "not a regular file (a pipe, socket or device)"


@pytest.mark.parametrize("make", [_dangling, _loop, _to_folder, _newline_target, _fifo])
def test_an_hour_name_that_is_not_a_readable_file_is_a_missing_hour_and_the_messages_say_why(capsys, archive, tmp_path, make):
    path = folder(archive) / "05.jsonl.gz"
    path.unlink()
    why = make(path, tmp_path)
    code, _, messages = export(capsys, archive, tmp_path / "out")
    assert code == 1 and len(messages) == 1
    assert messages[0].startswith(f"error: incomplete day {DATE}: missing hours 05 in {folder(archive)} (05.jsonl.gz: {why}")
    assert messages[0].endswith("); wait for them or pass --allow-incomplete")
    code, stdout, messages = export(capsys, archive, tmp_path / "out", "--allow-incomplete")
    assert code == 0 and stdout.startswith(f"{DATE}: published PARTIAL: {ROWS - PER_HOUR} rows, 23/24 hours")
    assert messages[0].startswith(f"warning: {FOLDER}/05.jsonl.gz: {why}")
    assert messages[0].endswith("; hour 05 is missing; ignored, listed in the manifest's ignored_files")
    manifest, _ = check_published(tmp_path / "out" / DATE)
    assert manifest["missing_hours"] == ["05"] and "05.jsonl.gz" in manifest["ignored_files"]


def test_no_readable_hour_file_at_all_says_why(tmp_path):
    day_folder = tmp_path / "archive" / FOLDER
    day_folder.mkdir(parents=True)
    (day_folder / "00.jsonl.gz").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ArchiveError, match=r"no hour files \(HH.jsonl.gz\) in .*\(00.jsonl.gz: a symlink to .*nowhere, which does not exist\)$"):
        export_day(DAY, str(tmp_path / "archive"), str(tmp_path / "out"), allow_incomplete=True)
