"""The bad-input matrix (README "Bad input and failures"): every damaged input through the CLI.

Each case damages a real-shaped archive day (the project's generator, or ../shared make_archive.py
--faults) and asserts the exact warning/error lines, the exit code and the manifest record, run
both without and with --allow-incomplete. Default policy: a line that is not exported fails the day
(exit 1, nothing published); with --allow-incomplete the day is published PARTIAL with every
skipped line in the manifest. A case where every line is exported gives exit 0, the same warnings
and the same manifest (not partial) either way.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import random
import re
import shutil
import zlib
from datetime import datetime, timezone
from pathlib import Path

import orjson
import polars as pl
import pytest

from instrumetriq_polars import BadInputError, export_day
from instrumetriq_polars.cli import main
from instrumetriq_polars.synthetic import make_entry, write_archive_day

from .conftest import DAY, make_archive
from .support.roundtrip import oracle_instant

DATE = DAY.isoformat()
FOLDER = DAY.strftime("%Y%m%d")
PER_HOUR = 2
ROWS = 24 * PER_HOUR
FAIL_HINT = "nothing published; fix the input or pass --allow-incomplete to publish without these lines"
TRUNCATED = "hour file is truncated (gzip stream ends early); the entries after this line are lost"


# -- helpers ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pristine") / "archive"
    write_archive_day(root, DAY, entries_per_hour=PER_HOUR)
    return root


@pytest.fixture
def archive(pristine, tmp_path) -> Path:
    """A complete day, PER_HOUR entries an hour, for the test to damage."""
    return Path(shutil.copytree(pristine, tmp_path / "archive"))


def hour_file(archive: Path, hour: int) -> Path:
    return archive / FOLDER / f"{hour:02d}.jsonl.gz"


def read_lines(path: Path) -> list[bytes]:
    return gzip.decompress(path.read_bytes()).splitlines()


def write_lines(path: Path, lines: list[bytes], newline: bytes = b"\n") -> None:
    path.write_bytes(gzip.compress(newline.join(lines) + newline, mtime=0))


def edit_entry(archive: Path, hour: int, line: int, change) -> dict:
    """Apply ``change(entry)`` to the entry on ``line`` (1-based) of an hour file; return it."""
    path = hour_file(archive, hour)
    lines = read_lines(path)
    entry = json.loads(lines[line - 1])
    change(entry)
    lines[line - 1] = json.dumps(entry).encode()
    write_lines(path, lines)
    return entry


def export(capsys, archive: Path, out: Path, *flags: str) -> tuple[int, str, list[str]]:
    """Run the CLI; return exit code, stdout and the warning/error lines of stderr."""
    code = main(["export", "--date", DATE, "--archive-path", str(archive), "--out-dir", str(out), *flags])
    stdout, stderr = capsys.readouterr()
    assert "Traceback" not in stderr
    return code, stdout, [line for line in stderr.splitlines() if line.startswith(("warning:", "error:"))]


def where(hour: int, line: int) -> str:
    return f"{FOLDER}/{hour:02d}.jsonl.gz" + (f":{line}" if line else "")


def assert_nothing_published(out: Path) -> None:
    day = out / DATE
    assert not day.exists() or sorted(p.name for p in day.iterdir()) == []  # no data, no temp, no lock


def published(out: Path) -> tuple[dict, pl.DataFrame]:
    day = out / DATE
    assert sorted(p.name for p in day.iterdir()) == ["data.parquet", "manifest.json"]
    manifest = json.loads((day / "manifest.json").read_bytes())
    data = (day / "data.parquet").read_bytes()
    assert manifest["parquet_sha256"] == hashlib.sha256(data).hexdigest()
    return manifest, pl.read_parquet(day / "data.parquet")


def assert_bad_day(capsys, archive, out, bad: list[tuple[int, int, str]], *, rows: int, lines_read: int):
    """Default run fails with exactly these bad lines; --allow-incomplete publishes them counted."""
    warnings = [f"warning: {where(hour, line)}: {reason}" for hour, line, reason in bad]
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    first = warnings[0].removeprefix("warning: ")
    code, stdout, messages = export(capsys, archive, out)
    assert (code, stdout) == (1, "")
    assert messages == warnings + [f"error: {DATE}: {first}{more}; {FAIL_HINT}"]
    assert_nothing_published(out)

    code, stdout, messages = export(capsys, archive, out, "--allow-incomplete")
    assert code == 0 and messages == warnings
    assert stdout.startswith(f"{DATE}: published PARTIAL: {rows} rows, 24/24 hours, ")
    manifest, frame = published(out)
    assert manifest["is_partial"] is True and manifest["missing_hours"] == []
    assert manifest["bad_line_count"] == len(bad)
    assert manifest["bad_lines"] == [{"file": where(h, 0), "line": line, "reason": r} for h, line, r in bad]
    assert manifest["row_count"] == manifest["lines_exported"] == frame.height == rows
    assert manifest["lines_read"] == lines_read
    for hour, _, _ in bad:
        source = manifest["source_files"][hour]
        assert source["file"] == where(hour, 0) and source["bad_lines"] == sum(1 for h, _, _ in bad if h == hour)
    return manifest, frame


def assert_clean_day(capsys, archive, out, warnings: list[str], *, rows: int = ROWS):
    """Every line exported: exit 0 by default and with --allow-incomplete (into a second folder),
    exactly these warnings both times, the same manifest (not partial) and the same data."""
    code, stdout, messages = export(capsys, archive, out)
    assert code == 0 and messages == warnings
    assert stdout.startswith(f"{DATE}: published: {rows} rows, 24/24 hours, ")
    manifest, frame = published(out)
    assert manifest["is_partial"] is False and manifest["bad_line_count"] == 0 and manifest["bad_lines"] == []
    assert manifest["row_count"] == manifest["lines_read"] == frame.height == rows

    allowed = out.with_name(out.name + "-allow-incomplete")
    code, stdout, messages = export(capsys, archive, allowed, "--allow-incomplete")
    assert code == 0 and messages == warnings
    assert stdout.startswith(f"{DATE}: published: {rows} rows, 24/24 hours, ")  # not PARTIAL
    again, _ = published(allowed)
    assert {**again, "created_ts_utc": None} == {**manifest, "created_ts_utc": None}
    return manifest, frame


# -- damaged files ----------------------------------------------------------------------------

def test_truncated_gzip_keeps_the_entries_before_the_cut(capsys, archive, tmp_path):
    """A crashed writer: the entries before the cut are exported, the rest is one counted bad line."""
    rng = random.Random(5)
    entries = [make_entry(rng, datetime(2026, 1, 15, 2, minute, tzinfo=timezone.utc)) for minute in range(8)]
    path = hour_file(archive, 2)
    write_lines(path, [json.dumps(e).encode() for e in entries])
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) * 2 // 3])
    complete = zlib.decompressobj(31).decompress(blob[: len(blob) * 2 // 3]).count(b"\n")  # reference gunzip
    assert 1 <= complete < len(entries)
    others = ROWS - PER_HOUR
    manifest, frame = assert_bad_day(capsys, archive, tmp_path / "out", [(2, complete + 1, TRUNCATED)],
                                     rows=others + complete, lines_read=others + complete)
    assert manifest["rows_by_hour"]["02"] == complete
    kept = frame.slice(2 * PER_HOUR, complete)["meta__session_id"].to_list()
    assert kept == [e["meta"]["session_id"] for e in entries[:complete]]


def test_garbage_that_is_not_gzip(capsys, archive, tmp_path):
    hour_file(archive, 5).write_bytes(b"this is not gzip at all\n")
    reason = "not a gzip file (starts with 74 68 69 73, not 1f 8b); none of it was read"
    manifest, _ = assert_bad_day(capsys, archive, tmp_path / "out", [(5, 0, reason)],
                                 rows=ROWS - PER_HOUR, lines_read=ROWS - PER_HOUR)
    assert manifest["rows_by_hour"]["05"] == 0 and manifest["source_files"][5]["lines_read"] == 0


def test_corrupt_gzip_data(capsys, archive, tmp_path):
    """Damaged deflate data: nothing of the damaged gzip member is trusted (its CRC cannot vouch
    for any part). Complete members before it are kept."""
    path = hour_file(archive, 6)
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2: len(blob) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(blob))
    code, stdout, messages = export(capsys, archive, tmp_path / "out")
    assert (code, stdout) == (1, "") and len(messages) == 2
    assert re.fullmatch(rf"warning: {where(6, 0)}: gzip data is corrupt \(.+\); none of it was read", messages[0])
    reason = messages[0].split(": ", 2)[2]
    assert messages[1] == f"error: {DATE}: {where(6, 0)}: {reason}; {FAIL_HINT}"
    assert_nothing_published(tmp_path / "out")
    assert export(capsys, archive, tmp_path / "out", "--allow-incomplete")[0] == 0
    manifest, _ = published(tmp_path / "out")
    assert manifest["bad_lines"] == [{"file": where(6, 0), "line": 0, "reason": reason}]
    assert manifest["rows_by_hour"]["06"] == 0 and manifest["row_count"] == ROWS - PER_HOUR


def test_garbage_after_a_complete_gzip_member(capsys, archive, tmp_path):
    """Junk appended after the last complete member (a later member that never got its header):
    every entry is kept, but the day fails by default, since what the junk held is unknown."""
    path = hour_file(archive, 6)
    path.write_bytes(path.read_bytes() + b"junk appended by something else")
    out = tmp_path / "out"
    code, stdout, messages = export(capsys, archive, out)
    assert (code, stdout) == (1, "") and len(messages) == 2
    assert re.fullmatch(rf"warning: {where(6, PER_HOUR + 1)}: gzip data is corrupt after this point \(.+\); "
                        "the entries after this line are lost", messages[0])
    reason = messages[0].split(": ", 2)[2]
    assert messages[1] == f"error: {DATE}: {where(6, PER_HOUR + 1)}: {reason}; {FAIL_HINT}"
    assert_nothing_published(out)

    code, stdout, messages = export(capsys, archive, out, "--allow-incomplete")
    assert code == 0 and messages == [f"warning: {where(6, PER_HOUR + 1)}: {reason}"]
    assert stdout.startswith(f"{DATE}: published PARTIAL: {ROWS} rows, 24/24 hours, ")
    manifest, frame = published(out)
    assert manifest["is_partial"] is True and manifest["bad_line_count"] == 1
    assert manifest["bad_lines"] == [{"file": where(6, 0), "line": PER_HOUR + 1, "reason": reason}]
    assert manifest["rows_by_hour"]["06"] == PER_HOUR and manifest["row_count"] == manifest["lines_read"] == frame.height == ROWS
    assert manifest["source_files"][6]["bad_lines"] == 1


def test_multi_member_gzip_hour_is_read_whole(capsys, archive, tmp_path):
    """An hour file of several gzip members (a writer that appends, or files concatenated) is one
    valid gzip stream: every member is read, an empty member included, even when a member
    boundary falls inside a line."""
    path = hour_file(archive, 7)
    rng = random.Random(7)
    entries = [make_entry(rng, datetime(2026, 1, 15, 7, minute, tzinfo=timezone.utc)) for minute in range(5)]
    text = b"".join(json.dumps(e).encode() + b"\n" for e in entries)
    cut = text.index(b"\n") + 1
    pieces = [text[:cut], b"", text[cut:cut + 40], text[cut + 40:]]  # the third member ends mid-line
    path.write_bytes(b"".join(gzip.compress(piece, mtime=0) for piece in pieces))
    assert gzip.decompress(path.read_bytes()) == text  # the reference gunzip reads every member
    rows = ROWS - PER_HOUR + len(entries)
    manifest, frame = assert_clean_day(capsys, archive, tmp_path / "out", [], rows=rows)
    assert manifest["rows_by_hour"]["07"] == manifest["source_files"][7]["lines_read"] == len(entries)
    exported = frame.slice(7 * PER_HOUR, len(entries))["meta__session_id"].to_list()
    assert exported == [e["meta"]["session_id"] for e in entries]


def test_shared_generator_faults(capsys, tmp_path):
    """../shared make_archive.py --faults: blank lines (00), a non-JSON line (01), a truncated gzip
    (02) and CRLF line ends (03): blank lines and CRLF are harmless, the other two are counted."""
    archive = make_archive(tmp_path / "archive", DATE, "--faults", entries_per_hour=3)
    truncated = hour_file(archive, 2).read_bytes()
    complete = zlib.decompressobj(31).decompress(truncated).count(b"\n")
    broken = b'{"symbol": "BROKEN", "meta": {'
    detail = _orjson_error(broken)
    bad = [(1, 2, f"not valid JSON ({detail})"), (2, complete + 1, TRUNCATED)]
    rows = 24 * 3 - (3 - complete)
    manifest, frame = assert_bad_day(capsys, archive, tmp_path / "out", bad, rows=rows, lines_read=rows + 1)
    assert manifest["rows_by_hour"]["00"] == 3 and manifest["rows_by_hour"]["03"] == 3
    assert manifest["source_files"][0]["lines_read"] == 3  # blank and whitespace-only lines are not lines
    assert "BROKEN" not in frame["symbol"].to_list()


def test_empty_hour_files_are_hours_without_entries(capsys, archive, tmp_path):
    """0 bytes (nothing was ever written) and a valid empty gzip: no entries, nothing lost."""
    hour_file(archive, 4).write_bytes(b"")
    empty_gzip = gzip.compress(b"", mtime=0)
    hour_file(archive, 9).write_bytes(empty_gzip)
    warnings = [f"warning: {where(4, 0)}: the hour file holds no entries (0 bytes)",
                f"warning: {where(9, 0)}: the hour file holds no entries ({len(empty_gzip)} bytes)"]
    manifest, _ = assert_clean_day(capsys, archive, tmp_path / "out", warnings, rows=ROWS - 2 * PER_HOUR)
    assert manifest["rows_by_hour"]["04"] == manifest["rows_by_hour"]["09"] == 0
    assert manifest["hours_found"] == 24 and manifest["source_files"][4]["size_bytes"] == 0


def test_uncompressed_copy_beside_the_hour_file_is_ignored_and_listed(capsys, archive, tmp_path):
    """``00.jsonl`` beside ``00.jsonl.gz``: the .gz is the hour file, the other is not read."""
    (archive / FOLDER / "00.jsonl").write_bytes(gzip.decompress(hour_file(archive, 0).read_bytes()))
    warning = f"warning: {FOLDER}/00.jsonl: not an hour file (HH.jsonl.gz); ignored, listed in the manifest's ignored_files"
    manifest, _ = assert_clean_day(capsys, archive, tmp_path / "out", [warning])
    assert manifest["ignored_files"] == ["00.jsonl"] and manifest["rows_by_hour"]["00"] == PER_HOUR


# -- damaged lines ----------------------------------------------------------------------------

def _orjson_error(line: bytes) -> str:
    with pytest.raises(orjson.JSONDecodeError) as info:
        orjson.loads(line)
    return str(info.value)


def test_a_line_that_is_not_json(capsys, archive, tmp_path):
    path = hour_file(archive, 3)
    broken = b'{"symbol": "BROKEN", "meta": {'
    write_lines(path, read_lines(path)[:1] + [broken] + read_lines(path)[1:])
    bad = [(3, 2, f"not valid JSON ({_orjson_error(broken)})")]
    assert bad[0][2] == "not valid JSON (unexpected end of data: line 1 column 31 (char 30))"
    assert_bad_day(capsys, archive, tmp_path / "out", bad, rows=ROWS, lines_read=ROWS + 1)


def test_json_that_is_not_an_object(capsys, archive, tmp_path):
    path = hour_file(archive, 3)
    values = [b"[1, 2]", b'"text"', b"42", b"null", b"true", b"1.5"]
    write_lines(path, read_lines(path)[:1] + values + read_lines(path)[1:])
    kinds = ["array", "string", "number", "null", "boolean", "number"]
    bad = [(3, 2 + i, f"a JSON {kind}, not an entry object") for i, kind in enumerate(kinds)]
    assert_bad_day(capsys, archive, tmp_path / "out", bad, rows=ROWS, lines_read=ROWS + len(values))


NO_VALUE = "holds no declared value (only nulls, unknown keys or values of the wrong type)"


@pytest.mark.parametrize("change, reason", [
    (lambda e: e.pop("symbol"), "required field 'symbol' is missing or empty"),
    (lambda e: e.pop("meta"), "required field 'meta' is missing or empty"),
    (lambda e: e.update(meta={}), "required field 'meta' is missing or empty"),
    (lambda e: e.update(spot_raw=None), "required field 'spot_raw' is missing or empty"),
    (lambda e: e.update(symbol=42), "required field 'symbol' is a int, not a string"),
    (lambda e: e.update(meta=[1]), "required field 'meta' is a list, not an object"),
    (lambda e: e.update(symbol="BTC\ud800"), "required field 'symbol' is not valid Unicode text (it holds a lone surrogate)"),
    (lambda e: e.update(symbol=""), "required field 'symbol' is blank ('')"),
    (lambda e: e.update(snapshot_ts=" \t"), "required field 'snapshot_ts' is blank (' \\t')"),
    (lambda e: e.update(meta=dict.fromkeys(e["meta"])), f"required field 'meta' {NO_VALUE}"),
    (lambda e: e.update(spot_raw={"not_declared": 1.5}), f"required field 'spot_raw' {NO_VALUE}"),
    (lambda e: e.update(spot_raw={"mid": "1.5", "bid": None}), f"required field 'spot_raw' {NO_VALUE}"),
], ids=["no-symbol", "no-meta", "empty-meta", "null-spot_raw", "int-symbol", "list-meta", "surrogate-symbol", "blank-symbol",
        "blank-snapshot_ts", "meta-only-nulls", "spot_raw-only-unknown", "spot_raw-only-mistyped"])
def test_entry_without_a_required_block(capsys, archive, tmp_path, change, reason):
    edit_entry(archive, 3, 2, change)
    bad = [(3, 2, f"entry cannot be exported: {reason}")]
    assert_bad_day(capsys, archive, tmp_path / "out", bad, rows=ROWS - 1, lines_read=ROWS)


@pytest.mark.parametrize("raw, column", [(b"\xff\xfe", 12), (b"caf\xe9", 15)], ids=["0xff", "latin-1"])
def test_bytes_that_are_not_utf8(capsys, archive, tmp_path, raw, column):
    path = hour_file(archive, 3)
    lines = read_lines(path)
    assert lines[1].startswith(b'{"symbol":"')
    lines[1] = lines[1].replace(b'{"symbol":"', b'{"symbol":"' + raw, 1)
    write_lines(path, lines)
    assert lines[1].index(raw[-1:] if raw[0] < 0x80 else raw[:1]) + 1 == column
    bad = [(3, 2, f"not UTF-8 text (byte 0x{lines[1][column - 1]:02x} at column {column})")]
    assert_bad_day(capsys, archive, tmp_path / "out", bad, rows=ROWS - 1, lines_read=ROWS)


# -- lines that are exported ------------------------------------------------------------------

def test_wrong_typed_values_go_to_extra_and_the_row_is_kept(capsys, archive, tmp_path):
    first = edit_entry(archive, 3, 1, lambda e: e["meta"].update(duration_sec="7200.5"))
    second = edit_entry(archive, 3, 2, lambda e: (e["meta"].update(duration_sec=[1]), e["spot_raw"].update(bid=True, mid=None)))
    note = "has a value of the wrong type{}; exported in _extra, the column is NULL"
    warnings = [f"warning: {where(3, 1)}: meta.duration_sec " + note.format(" (and 1 more lines of this hour)"),
                f"warning: {where(3, 2)}: spot_raw.bid " + note.format("")]
    manifest, frame = assert_clean_day(capsys, archive, tmp_path / "out", warnings)
    assert manifest["mistyped_fields"] == {"meta.duration_sec": 2, "spot_raw.bid": 1}
    rows = frame.slice(3 * PER_HOUR, 2)
    assert rows["meta__duration_sec"].to_list() == [None, None]
    assert rows["spot_raw__bid"][1] is None and rows["spot_raw__mid"][1] is None and rows["spot_raw__bid"][0] is not None
    assert rows["meta__session_id"].to_list() == [first["meta"]["session_id"], second["meta"]["session_id"]]
    assert [json.loads(text) for text in rows["_extra"]] == [
        {"meta": {"duration_sec": "7200.5"}},
        {"meta": {"duration_sec": [1]}, "spot_raw": {"bid": True}},
    ]


def test_integers_beyond_64_bits_stay_exact_in_extra(capsys, archive, tmp_path):
    big, low, u64 = 2**70 + 1, -(2**63) - 1, 2**64 - 1

    def change(entry):
        entry["meta"]["total_samples"] = big
        entry["meta"]["sample_count"] = low
        windows = entry.setdefault("twitter_sentiment_windows", {})
        windows.setdefault("last_cycle", {})["tag_counts"] = {"moon": u64, "ok": 3}

    edit_entry(archive, 3, 2, change)
    paths = ["meta.sample_count", "meta.total_samples", "twitter_sentiment_windows.last_cycle.tag_counts"]
    note = "has a value of the wrong type; exported in _extra, the column is NULL"
    manifest, frame = assert_clean_day(capsys, archive, tmp_path / "out", [f"warning: {where(3, 2)}: {p} {note}" for p in paths])
    assert manifest["mistyped_fields"] == dict.fromkeys(paths, 1)
    row = frame.row(3 * PER_HOUR + 1, named=True)
    extra = json.loads(row["_extra"])  # the standard library: exact integers
    assert extra["meta"] == {"total_samples": big, "sample_count": low}
    assert extra["twitter_sentiment_windows"]["last_cycle"]["tag_counts"] == {"moon": u64, "ok": 3}
    assert row["meta__total_samples"] is None and row["meta__sample_count"] is None
    assert row["twitter_sentiment_windows__last_cycle__tag_counts"] is None


def test_a_boolean_in_a_float_field_of_spot_prices_goes_to_extra(capsys, archive, tmp_path):
    """A wrong type inside a list of objects sends the whole list to _extra, like any other."""
    entry = edit_entry(archive, 3, 2, lambda e: (e["spot_prices"][1].update(mid=True), e["spot_prices"][2].update(bid=False)))
    note = "has a value of the wrong type; exported in _extra, the column is NULL"
    manifest, frame = assert_clean_day(capsys, archive, tmp_path / "out", [f"warning: {where(3, 2)}: spot_prices {note}"])
    assert manifest["mistyped_fields"] == {"spot_prices": 1}
    row = frame.row(3 * PER_HOUR + 1, named=True)
    assert row["spot_prices"] is None and json.loads(row["_extra"]) == {"spot_prices": entry["spot_prices"]}


def test_nan_and_infinity_are_exported_as_floats(capsys, archive, tmp_path):
    """Python's json writes NaN/Infinity; orjson refuses them; json.loads decodes the line."""
    def change(entry):
        entry["spot_raw"]["obi_5"] = math.nan
        entry["derived"]["flow"] = math.inf
        entry["scores"]["mom"] = -math.inf
        entry["meta"]["brand_new"] = math.nan  # unknown field: _extra keeps the token

    edit_entry(archive, 3, 2, change)
    assert b"NaN" in read_lines(hour_file(archive, 3))[1] and b"-Infinity" in read_lines(hour_file(archive, 3))[1]
    manifest, frame = assert_clean_day(capsys, archive, tmp_path / "out", [])
    assert manifest["stdlib_json_lines"] == 1 and manifest["unknown_fields"] == {"meta.brand_new": 1}
    row = frame.row(3 * PER_HOUR + 1, named=True)
    assert math.isnan(row["spot_raw__obi_5"]) and row["derived__flow"] == math.inf and row["scores__mom"] == -math.inf
    assert row["_extra"] == '{"meta":{"brand_new":NaN}}' and math.isnan(json.loads(row["_extra"])["meta"]["brand_new"])


def test_lone_surrogate_text_goes_to_extra(capsys, archive, tmp_path):
    """json.loads keeps "\\ud800" (orjson refuses it); Parquet text cannot hold it: _extra keeps the escape."""
    edit_entry(archive, 3, 2, lambda e: (e["meta"].update(source="spot\ud800"), e.update(odd={"k\udc00": 1})))
    note = "has a value of the wrong type; exported in _extra, the column is NULL"
    manifest, frame = assert_clean_day(capsys, archive, tmp_path / "out", [f"warning: {where(3, 2)}: meta.source {note}"])
    assert manifest["mistyped_fields"] == {"meta.source": 1} and manifest["unknown_fields"] == {"odd": 1}
    row = frame.row(3 * PER_HOUR + 1, named=True)
    assert row["meta__source"] is None and row["_extra"].isascii()
    assert json.loads(row["_extra"]) == {"meta": {"source": "spot\ud800"}, "odd": {"k\udc00": 1}}


def test_a_very_long_line(capsys, archive, tmp_path):
    entry = edit_entry(archive, 3, 2, lambda e: e.update(spot_prices=e["spot_prices"] * 50))
    assert len(read_lines(hour_file(archive, 3))[1]) > 5_000_000
    _, frame = assert_clean_day(capsys, archive, tmp_path / "out", [])
    prices = frame.row(3 * PER_HOUR + 1, named=True)["spot_prices"]
    assert len(prices) == len(entry["spot_prices"]) and prices[-1]["ts"] == oracle_instant(entry["spot_prices"][-1]["ts"])


def test_crlf_and_blank_lines(capsys, archive, tmp_path):
    path = hour_file(archive, 3)
    lines = read_lines(path)
    write_lines(path, [b"", b"   ", lines[0], b"\t", b"", lines[1], b"", b""], newline=b"\r\n")
    manifest, frame = assert_clean_day(capsys, archive, tmp_path / "out", [])
    assert manifest["source_files"][3]["lines_read"] == PER_HOUR
    exported = frame.slice(3 * PER_HOUR, PER_HOUR)["meta__session_id"].to_list()
    assert exported == [json.loads(line)["meta"]["session_id"] for line in lines]


BOM = "\ufeff".encode()


def test_utf8_bom_at_the_start_of_a_line_is_dropped_and_the_entry_exported(capsys, archive, tmp_path):
    """A byte order mark before an entry (a file written with encoding='utf-8-sig', or such files
    concatenated): the entry is intact, so it is exported like any line; nothing is lost. The BOM
    is an encoding mark, not content: RFC 8259 8.1 lets parsers ignore it, and json.loads does
    given the line's bytes (it refuses it only in a str, hence not a "bad line")."""
    path = hour_file(archive, 3)
    lines = read_lines(path)
    assert json.loads(BOM + lines[1]) == json.loads(lines[1])  # the standard library reads the bytes
    write_lines(path, [BOM + lines[0], BOM + lines[1]])
    manifest, frame = assert_clean_day(capsys, archive, tmp_path / "out", [])
    assert manifest["source_files"][3]["lines_read"] == PER_HOUR and manifest["stdlib_json_lines"] == 0
    exported = frame.slice(3 * PER_HOUR, PER_HOUR)
    assert exported["meta__session_id"].to_list() == [json.loads(line)["meta"]["session_id"] for line in lines]
    assert exported["symbol"].to_list() == [json.loads(line)["symbol"] for line in lines]  # no BOM in the text


def test_integers_a_float64_cannot_hold_exactly_are_wrong_typed_in_float_fields(capsys, archive, tmp_path):
    """An integer beyond 2**53 in a float field would be rounded by a float64 (2**60 + 1 is stored
    as 2**60): a value of the wrong type like any other, in a top-level block, in a sentiment
    window and in ``spot_prices`` (the whole list), with the exact integer in _extra. orjson
    decodes one of up to 64 bits as an int and a bigger one as a rounded float (2**64 + 1 and
    2**64 both become 2.0**64): both are caught. 2**53 itself, and floats written as floats
    whatever their size, stay in their columns."""
    def top_level(entry):
        entry["meta"]["duration_sec"] = 2**60 + 1
        entry["spot_raw"].update(mid=2**64 + 1, bid=-(2**70), ask=2**53, last=1.5e20)
        window = entry.setdefault("twitter_sentiment_windows", {}).setdefault("last_cycle", {})
        window.setdefault("lexicon_sentiment", {})["score"] = -(2**53) - 1

    entry = edit_entry(archive, 3, 2, top_level)
    rounded = edit_entry(archive, 4, 1, lambda e: e["spot_prices"][1].update(mid=2**64))
    floats = edit_entry(archive, 4, 2, lambda e: (e["spot_prices"][1].update(mid=1e19), e["spot_prices"][2].update(bid=float(2**64))))
    int64 = edit_entry(archive, 5, 1, lambda e: e["spot_prices"][2].update(bid=2**60 + 3))
    assert b'"mid": 18446744073709551616' in read_lines(hour_file(archive, 4))[0]  # an integer in the text
    note = "has a value of the wrong type; exported in _extra, the column is NULL"
    paths = ["meta.duration_sec", "spot_raw.mid", "spot_raw.bid", "twitter_sentiment_windows.last_cycle.lexicon_sentiment.score"]
    warnings = [f"warning: {where(3, 2)}: {path} {note}" for path in paths]
    warnings += [f"warning: {where(4, 1)}: spot_prices {note}", f"warning: {where(5, 1)}: spot_prices {note}"]
    manifest, frame = assert_clean_day(capsys, archive, tmp_path / "out", warnings)
    assert manifest["mistyped_fields"] == {**dict.fromkeys(paths, 1), "spot_prices": 2}

    row = frame.row(3 * PER_HOUR + 1, named=True)
    assert (row["meta__duration_sec"], row["spot_raw__mid"], row["spot_raw__bid"]) == (None, None, None)
    assert row["twitter_sentiment_windows__last_cycle__lexicon_sentiment__score"] is None
    assert (row["spot_raw__ask"], row["spot_raw__last"]) == (float(2**53), 1.5e20)
    extra = json.loads(row["_extra"])  # the standard library: exact integers
    assert extra == {"meta": {"duration_sec": 2**60 + 1}, "spot_raw": {"mid": 2**64 + 1, "bid": -(2**70)},
                     "twitter_sentiment_windows": {"last_cycle": {"lexicon_sentiment": {"score": -(2**53) - 1}}}}
    for index, source in ((4 * PER_HOUR, rounded), (5 * PER_HOUR, int64)):
        row = frame.row(index, named=True)
        assert row["spot_prices"] is None and json.loads(row["_extra"]) == {"spot_prices": source["spot_prices"]}
    row = frame.row(4 * PER_HOUR + 1, named=True)
    assert row["_extra"] is None and row["spot_prices"][1]["mid"] == 1e19 and row["spot_prices"][2]["bid"] == float(2**64)
    assert row["spot_prices"] == [{**{k: item.get(k) for k in ("mid", "bid", "ask", "spread_bps")}, "ts": oracle_instant(item["ts"])}
                                  for item in floats["spot_prices"]]


# -- the API ----------------------------------------------------------------------------------

def test_api_raises_bad_input_error_with_every_bad_line(archive, tmp_path):
    edit_entry(archive, 3, 2, lambda e: e.pop("symbol"))
    hour_file(archive, 7).write_bytes(b"\x00\x01")
    with pytest.raises(BadInputError) as info:
        export_day(DAY, str(archive), str(tmp_path / "out"))
    assert [(b.file, b.line) for b in info.value.bad_lines] == [(where(3, 0), 2), (where(7, 0), 0)]
    assert str(info.value).startswith(f"{where(3, 2)}: entry cannot be exported: required field 'symbol' is missing or empty (and 1 more); ")
    assert_nothing_published(tmp_path / "out")
    result = export_day(DAY, str(archive), str(tmp_path / "out"), allow_incomplete=True)
    assert result.manifest.bad_line_count == 2 and result.manifest.is_partial and result.status == "published"
