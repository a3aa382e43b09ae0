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
from .support.fuzz import BOM, SEED, TEXT_MUTATIONS, TIES, make_case, shuffle_lines, tie

CASES = int(os.environ.get("FUZZ_CASES", "2400"))
DATE = DAY.isoformat()
FOLDER = DAY.strftime("%Y%m%d")
CLI_EVERY = 4  # every fourth day goes through the CLI

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
        # entries lost to gzip damage: the manifest's damaged spans (resync reads on after each), which
        # the standard library must also find damaged
        lost = sum(s["entries"] for s in manifest.get("damaged_spans", []) if s["file"] == source["file"])
        assert bool(lost) == damaged(blobs[source["hour"]]), (source, manifest.get("damaged_spans"))
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
