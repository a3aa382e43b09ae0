"""Fuzz test: byte-level mutations of real-shaped hour files, through the whole export.

A case is one hour file: one to four lines of small real-shaped entries (the real sample in
../shared when it is there, the project's generator always; ``spot_prices`` cut to 3 samples),
mutated before compressing (flipped, inserted and deleted bytes, cut, spliced, swapped and
repeated lines, JSON tokens the archive can hold: NaN, lone surrogates, huge integers, a BOM, deep
nesting) and/or after (flipped, inserted and deleted bytes in the gzip stream, a cut stream,
junk or another stream appended). 24 cases make a day, exported in-process; every fourth day
through the CLI's ``main()`` with stderr captured, alternately with and without
``--allow-incomplete``. For every day:

- the export ends with a result or an expected error (exit 0 or 1), never another exception;
  every stderr line is one known line (progress, ``warning: ...``, ``error: ...``);
- with ``--allow-incomplete`` the day is always published (no input makes a day impossible to
  export); without it, it is published exactly when no line was bad, else nothing is;
- a published manifest matches its data file (``support.daycheck.check_published``: sha256, size, rows,
  rows per hour, one source file per hour) and is strict UTF-8 JSON;
- per hour file, ``lines_read`` is the rows exported plus the bad lines, except that a damaged gzip
  stream adds one bad-line record for what it lost (line 0, or the first lost line), which is
  no line read: the reference for "damaged" is the standard library's ``gzip.decompress``.

``FUZZ_SEED`` (default 20261127) and ``FUZZ_CASES`` (default 2400 hour files, 100 days: ~31 s of
CPU, 42-63 s wall on the 2 shared cores it was written on) pick another run; a failure names the seed, the day and the mutations of each of its hours, and leaves the
day's archive under pytest's tmp folder. A long run by hand:
``FUZZ_SEED=7 FUZZ_CASES=50000 python -m pytest -q tests/test_fuzz.py``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import random
import re
import shutil
import struct
from collections.abc import Iterator
import time
from collections import Counter
import zlib
from pathlib import Path

import pytest

from instrumetriq_polars import InstrumetriqError, export_day
import instrumetriq_polars.source as source
from instrumetriq_polars.cli import main
from instrumetriq_polars.decode import Chunk, deep_json, deeper_than
from instrumetriq_polars.read.lanes import choose_lane
from instrumetriq_polars.read.options import ReadOptions

from .conftest import DAY, SAMPLE, require_shared
from .support.daycheck import assert_stderr_lines, check_published, dumps, small_entries

SEED = int(os.environ.get("FUZZ_SEED", "20261127"))
CASES = int(os.environ.get("FUZZ_CASES", "2400"))
DATE = DAY.isoformat()
BOM = "\ufeff".encode()
FOLDER = DAY.strftime("%Y%m%d")
CLI_EVERY = 4  # every fourth day goes through the CLI

# Bytes and tokens a damaged or unusual archive line can hold.
BYTES = [b"\n", b"\r", b"\r\n", b"\t", b" ", b"\x00", b"\x0b", b"\x0c", b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":",
         b"\xff", b"\xc3", b"\xe2\x82", b"\xef\xbb\xbf", b"\xed\xa0\x80"]
TOKENS = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-0", b"123456789012345678901234567890", b"null",
          b"true", b"{}", b"[]", b'""', b'"\\ud800"', b'"\\udcff\\u0000"', b'"\\ud83d\\ude00"', b"\\u0000"]
#: Exact halfway points between two doubles written out with more than 768 significant digits, which
#: orjson misrounds (issue 21): json.loads, and so the export, reads 1.0 and 0.5 for the first two.
TIES = [b"1.00000000000000011102230246251565404236316680908203125" + b"0" * 715,
        b"0.500000000000000055511151231257827021181583404541015625" + b"0" * 720,
        b"12345.6780000000007930793799459934234619140625" + b"0" * 760]
KEYED = [b'"k\\ud800":1,', b'"extra":{"a":[1,{"b":null}]},', b'"x\\nnew":NaN,', b'"n":18446744073709551616,',
         b'"s":"\\udfff",']


def corpus() -> list[bytes]:
    """Lines to build hour files from: the real sample's entries and generated ones, each cut to
    3 ``spot_prices`` samples (the shape is kept, the export is fast)."""
    entries = [e for hour in range(6) for e in small_entries(4, seed=hour, hour=hour)]
    if SAMPLE.exists() or os.environ.get("CI"):
        with gzip.open(require_shared(SAMPLE), "rt", encoding="utf-8") as f:
            real = [json.loads(line) for line in f if line.strip()]
        for entry in real:
            entry["spot_prices"] = entry["spot_prices"][:3]
        entries += real
    return [dumps(e) for e in entries]


# -- mutations: each takes (rng, data, corpus) and returns (new data, what it did) ------------------

def _pos(rng: random.Random, data: bytes) -> int:
    return rng.randrange(len(data) + 1)


def flip(rng, data, _):
    if not data:
        return data, "flip (empty)"
    at = rng.randrange(len(data))
    mask = 1 << rng.randrange(8) if rng.random() < 0.7 else rng.randrange(1, 256)
    return data[:at] + bytes([data[at] ^ mask]) + data[at + 1:], f"flip byte {at} ^ {mask:#04x}"


def insert(rng, data, _):
    at = _pos(rng, data)
    piece = rng.choice(BYTES) if rng.random() < 0.6 else bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    return data[:at] + piece + data[at:], f"insert {piece!r} at {at}"


def delete(rng, data, _):
    at = _pos(rng, data)
    size = rng.choice((1, 1, 2, 3, 8, 64))
    return data[:at] + data[at + size:], f"delete {size} bytes at {at}"


def cut(rng, data, _):
    at = _pos(rng, data)
    return data[:at], f"cut at {at} of {len(data)}"


def splice(rng, data, lines):
    other = rng.choice(lines)
    start = rng.randrange(len(other))
    piece = other[start:start + rng.randint(1, 200)]
    at = _pos(rng, data)
    return data[:at] + piece + data[at:], f"splice {len(piece)} bytes of another line at {at}"


def token(rng, data, _):
    at = _pos(rng, data)
    piece = rng.choice(TOKENS)
    return data[:at] + piece + data[at:], f"token {piece!r} at {at}"


def _after_brace(rng, data) -> int | None:
    braces = [i + 1 for i, byte in enumerate(data) if byte == 0x7B]  # after a "{"
    return rng.choice(braces) if braces else None


def keyed(rng, data, _):
    """A key/value pair after a random ``{``: valid JSON stays valid, with new content."""
    at = _after_brace(rng, data)
    if at is None:
        return data, "keyed (no object)"
    piece = rng.choice(KEYED)
    return data[:at] + piece + data[at:], f"pair {piece!r} at {at}"


def deepen(rng, data, _):
    """A field nested around orjson's limit (1024 levels), after a random ``{``."""
    at = _after_brace(rng, data)
    if at is None:
        return data, "deepen (no object)"
    depth = rng.choice((rng.randint(960, 1030), rng.randint(1, 1200)))
    value = b"[" * depth + b"]" * depth if rng.random() < 0.5 else b'{"a":' * depth + b"0" + b"}" * depth
    return data[:at] + b'"deep":' + value + b"," + data[at:], f"deep field of {depth} levels at {at}"


def rename(rng, data, _):
    """A byte inserted at the end of a key: the key becomes unknown, the field it was goes missing."""
    ends = [i for i in range(len(data) - 1) if data[i:i + 2] == b'":']
    if not ends:
        return data, "rename (no key)"
    at = rng.choice(ends)
    return data[:at] + b"_" + data[at:], f"rename the key ending at {at}"


def shuffle_lines(rng, data, lines):
    parts = data.split(b"\n")
    what = rng.choice(("swap", "duplicate", "drop", "blank", "join", "cross"))
    i, j = rng.randrange(len(parts)), rng.randrange(len(parts))
    if what == "swap":
        parts[i], parts[j] = parts[j], parts[i]
    elif what == "duplicate":
        parts.insert(j, parts[i])
    elif what == "drop":
        del parts[i]
    elif what == "blank":
        parts.insert(i, rng.choice((b"", b"   ", b"\r", b"\x0c", b"\x0b", b" \x0c\t", b"\r\x0b")))
    elif what == "join" and i + 1 < len(parts):
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    elif what == "cross":  # the start of one line with the end of another (a torn write)
        other = rng.choice(lines)
        parts[i] = parts[i][: rng.randrange(len(parts[i]) + 1)] + other[rng.randrange(len(other) + 1):]
    return b"\n".join(parts), f"lines: {what} {i} {j}"


def tie(rng, data, _):
    """A number of the text replaced by a long exact tie (one orjson misrounds)."""
    numbers = [m.span() for m in re.finditer(rb"(?<=[:\[, ])-?[0-9][0-9.eE+-]*(?=[,}\]])", data)]
    if not numbers:
        return data, "tie (no number)"
    start, end = rng.choice(numbers)
    piece = rng.choice(TIES)
    return data[:start] + piece + data[end:], f"tie of {len(piece)} digits at {start}"


TEXT_MUTATIONS = [flip, insert, delete, cut, splice, token, token, keyed, keyed, deepen, rename, shuffle_lines, shuffle_lines,
                  tie]
GZIP_MUTATIONS = [flip, flip, insert, delete, cut]


def compress(rng: random.Random, text: bytes) -> tuple[bytes, str]:
    level = rng.choice((1, 6, 9))
    if rng.random() < 0.2 and len(text) > 1:  # several members, the boundary anywhere (a writer that appends)
        at = rng.randrange(1, len(text))
        return gzip.compress(text[:at], level, mtime=0) + gzip.compress(text[at:], level, mtime=0), f"2 members split at {at}"
    return gzip.compress(text, level, mtime=0), f"level {level}"


def make_case(rng: random.Random, lines: list[bytes]) -> tuple[bytes, list[str]]:
    """One hour file and the list of what was done to it (at least one mutation)."""
    text = b"\n".join(rng.choice(lines) for _ in range(rng.randint(1, 4))) + b"\n"
    log: list[str] = []
    text_rounds = rng.choice((0, 1, 1, 1, 2, 2, 3, 3, 4, 5))
    gzip_rounds = rng.choice((0, 0, 0, 0, 0, 1, 2)) if text_rounds else rng.choice((1, 1, 2))
    for _ in range(text_rounds):
        text, what = rng.choice(TEXT_MUTATIONS)(rng, text, lines)
        log.append(what)
    blob, how = compress(rng, text)
    log.append(f"gzip {how}")
    for _ in range(gzip_rounds):
        if rng.random() < 0.15:
            extra = rng.choice((b"junk\n", b"\x00" * 8, gzip.compress(rng.choice(lines) + b"\n", mtime=0)))
            blob, what = blob + extra, f"append {len(extra)} bytes"
        else:
            blob, what = rng.choice(GZIP_MUTATIONS)(rng, blob, lines)
        log.append(f"gz {what}")
    return blob, log


def damaged(blob: bytes) -> bool:
    """Whether the standard library finds the gzip stream damaged (the reference gunzip)."""
    try:
        gzip.decompress(blob)
    except (OSError, EOFError, zlib.error):  # BadGzipFile is an OSError; a cut stream, EOFError
        return True
    return False


# -- one day ---------------------------------------------------------------------------------------

def write_day(root: Path, blobs: list[bytes]) -> Path:
    archive = root / "archive"
    folder = archive / FOLDER
    folder.mkdir(parents=True)
    for hour, blob in enumerate(blobs):
        (folder / f"{hour:02d}.jsonl.gz").write_bytes(blob)
    return archive


def run_day(archive: Path, out: Path, via_cli: bool, allow: bool) -> tuple[int, str]:
    """Export the day; returns (exit code, stderr). In-process, an expected error is exit 1."""
    if not via_cli:
        try:
            export_day(DAY, str(archive), str(out), allow_incomplete=allow)
        except InstrumetriqError as exc:
            return 1, f"error: {DATE}: {exc}\n"
        return 0, ""
    stdout, stderr = io.StringIO(), io.StringIO()
    argv = ["export", "--date", DATE, "--archive-path", str(archive), "--out-dir", str(out)] + (["--allow-incomplete"] if allow else [])
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv)
    return code, stderr.getvalue()


def check_day(archive: Path, out: Path, blobs: list[bytes], via_cli: bool, allow: bool, seen: Counter) -> None:
    code, stderr = run_day(archive, out, via_cli, allow)
    seen["days failed (expected)" if code else "days published"] += 1
    assert code in (0, 1)
    assert_stderr_lines(stderr)
    assert len([line for line in stderr.splitlines() if line.startswith("error:")]) == code
    day = out / DATE
    if code:
        assert not allow, f"--allow-incomplete could not export the day: {stderr.strip()}"
        assert not day.exists() or not any(day.iterdir()), "a failed export left files behind"
        assert "nothing published" in stderr
        return
    manifest, _ = check_published(day)
    assert allow or manifest["bad_line_count"] == 0
    seen["rows exported"] += manifest["row_count"]
    seen["lines decoded by json.loads"] += manifest["stdlib_json_lines"]
    seen["days with unknown or mistyped fields"] += bool(manifest["unknown_fields"] or manifest["mistyped_fields"])
    seen.update(f"bad: {b['reason'].split(' (')[0][:40]}" for b in manifest["bad_lines"])
    assert len(manifest["bad_lines"]) == manifest["bad_line_count"]  # fewer than MAX_BAD_LINE_RECORDS here
    for source in manifest["source_files"]:
        lost = int(damaged(blobs[source["hour"]]))
        assert source["lines_read"] + lost == source["rows"] + source["bad_lines"], (source, f"gzip damaged: {bool(lost)}")
        records = [b for b in manifest["bad_lines"] if b["file"] == source["file"]]
        assert len(records) == source["bad_lines"]
        assert len({b["line"] for b in records}) == len(records)  # one record per line


def test_fuzz_hour_files(tmp_path):
    lines = corpus()
    days = -(-CASES // 24)
    started, seen = time.perf_counter(), Counter()
    for number in range(days):
        rng = random.Random(f"{SEED}-{number}")
        cases = [make_case(rng, lines) for _ in range(24)]
        blobs = [blob for blob, _ in cases]
        root = tmp_path / f"day{number}"
        archive = write_day(root, blobs)
        via_cli = number % CLI_EVERY == 0
        allow = (number % (2 * CLI_EVERY) == 0) if via_cli else (rng.random() < 0.8)
        try:
            check_day(archive, root / "out", blobs, via_cli, allow, seen)
        except BaseException as exc:
            log = "\n".join(f"  {hour:02d}: {'; '.join(what)}" for hour, (_, what) in enumerate(cases))
            raise AssertionError(
                f"FUZZ_SEED={SEED} day {number} ({'CLI' if via_cli else 'API'}, allow_incomplete={allow}) "
                f"failed: {type(exc).__name__}: {exc}\narchive: {archive}\nmutations:\n{log}") from exc
        shutil.rmtree(root)  # keep tmp small: only a failing day stays
    seconds = time.perf_counter() - started
    print(f"fuzz: seed {SEED}, {days * 24} hour files in {days} days, {seconds:.1f} s")
    for what, count in sorted(seen.items()):
        print(f"  {what}: {count}")


# -- the reading against json.loads, line by line ---------------------------------------------------

JSON_BLANKS = b" \t\r\n"


def _reference(line: bytes):
    """What json.loads makes of one line: "blank", "bad", or the object (a byte-order mark first is
    no content; nesting beyond orjson's 1024 levels is bad whichever decoder reads it)."""
    if line.startswith(BOM):
        line = line[len(BOM):]
    if not line.strip(JSON_BLANKS):
        return "blank"
    try:
        with deep_json():
            value = json.loads(line)
    except (ValueError, RecursionError):
        return "bad"
    return value if type(value) is dict and not deeper_than(value) else "bad"


def _bits(value) -> bytes | None:
    return struct.pack("d", value) if type(value) in (int, float) and abs(value) < 2.0**53 else None


def check_against_loads(text: bytes) -> Counter:
    """Build ``text`` as one hour's chunk as the export does: the non-blank lines are exactly the
    lines read, each a row or a bad line; every line json.loads refuses is bad; the floats exported
    for ``spot_raw.mid`` and the ``spot_prices`` mids are json.loads's, bit for bit."""
    chunk = Chunk("20260115/00.jsonl.gz", 1, text.split(b"\n"))
    frame, rows = source._build_chunk(chunk, choose_lane(ReadOptions()), (DAY, 0))
    seen: Counter = Counter()
    reference = {number: _reference(line) for number, line in enumerate(chunk.lines, 1)}
    read = {n for n, r in reference.items() if r != "blank"}
    bad = {b.line for b in rows.account.bad_lines}
    assert rows.account.lines_read == len(read)
    assert set(rows.lines) | bad == read and not set(rows.lines) & bad
    assert {n for n, r in reference.items() if r == "bad"} <= bad
    mids = frame["spot_raw"].struct.field("mid").to_list()
    samples = frame["spot_prices"].to_list()
    for row, number in enumerate(rows.lines):
        entry = reference[number]
        expected = _bits(entry.get("spot_raw", {}).get("mid")) if type(entry.get("spot_raw")) is dict else None
        if expected is not None and mids[row] is not None:
            assert _bits(mids[row]) == expected, (number, mids[row], entry["spot_raw"]["mid"])
            seen["spot_raw.mid compared"] += 1
        if samples[row] is not None:
            for got, item in zip(samples[row], entry["spot_prices"]):
                if got["mid"] is not None and _bits(item.get("mid")) is not None:
                    assert _bits(got["mid"]) == _bits(item["mid"]), (number, got["mid"])
                    seen["spot_prices mids compared"] += 1
    seen["rows"] += len(rows.lines)
    seen["bad lines"] += len(bad)
    seen["blank lines"] += len(reference) - len(read)
    return seen


def _texts(count: int, seed: str) -> Iterator[bytes]:
    lines = corpus()
    rng = random.Random(seed)
    for _ in range(count):
        text = b"\n".join(rng.choice(lines) for _ in range(rng.randint(1, 4)))
        for _ in range(rng.choice((1, 1, 2, 3))):
            text, _ = rng.choice(TEXT_MUTATIONS + [tie, tie, shuffle_lines])(rng, text, lines)
        yield text


def test_ties_and_form_feeds_are_read_as_json_loads_reads_them():
    """The two findings of issue 21: a long exact tie is exported as json.loads (float()) reads it,
    in a spot_prices sample (the native lane) and elsewhere (the object lane); a line of only a form
    feed or a vertical tab is unreadable (JSON's whitespace is space, tab, LF, CR), not blank."""
    entry = small_entries(1, seed=3)[0]
    line = dumps(entry)
    entry["spot_raw"]["mid"], entry["spot_prices"][0]["mid"] = 7.123456789, 8.123456789
    tied = dumps(entry).replace(b"7.123456789", TIES[0])  # the object lane's (orjson's) float
    sample_tied = dumps(entry).replace(b"8.123456789", TIES[1])  # the native lane's
    assert TIES[0] in tied and TIES[1] in sample_tied
    seen = check_against_loads(b"\n".join([tied, sample_tied, b"\x0c", b"\x0b", b" \x0c", b"", b" \t\r", line]))
    assert seen["bad lines"] == 3 and seen["blank lines"] == 2 and seen["rows"] == 3
    assert seen["spot_raw.mid compared"] == 3 and seen["spot_prices mids compared"] >= 9


def test_fuzzed_lines_are_read_as_json_loads_reads_them():
    seen: Counter = Counter()
    for text in _texts(150, f"{SEED}-loads"):
        seen += check_against_loads(text)
    assert seen["rows"] and seen["bad lines"] and seen["spot_prices mids compared"]


@pytest.mark.slow
def test_fuzzed_lines_are_read_as_json_loads_reads_them_many_more():
    seen: Counter = Counter()
    for text in _texts(3000, f"{SEED}-loads-slow"):
        seen += check_against_loads(text)
    assert seen["rows"] and seen["bad lines"] and seen["spot_prices mids compared"]
