"""Issue 21, "Reliability, round 3", section 5: entries after a damaged gzip member are read.

The archive's hour files hold one gzip member per entry. A collector that died mid-member and
then appended again leaves a cut member between intact ones; the Tier 2/3 reader resyncs past it
with the one member reader (members.py: a candidate header counts only if it inflates to its end
with a valid CRC32 and ISIZE), reports the damaged span in the manifest (file, start and end
byte) and counts the entry it held as lost; verify's cross-check agrees. Each case goes through
the CLI, on the hourly and the daily tier."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import pytest

from instrumetriq_polars.cli import main

from .support.daycheck import dumps, small_entries

DAY = date(2026, 1, 15)
HOUR = 6
FILE = f"{DAY:%Y%m%d}/{HOUR:02d}.jsonl.gz"


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    return code, out, err


def members(count: int, seed: int = 1) -> list[bytes]:
    """``count`` entries, one gzip member each, as the collector appends them."""
    return [gzip.compress(dumps(e) + b"\n", mtime=0) for e in small_entries(count, seed=seed, hour=HOUR)]


def session_ids(count: int, seed: int = 1) -> list[str]:
    return [e["meta"]["session_id"] for e in small_entries(count, seed=seed, hour=HOUR)]


def cut(member: bytes) -> bytes:
    return member[: len(member) // 2]


def bad_crc(member: bytes) -> bytes:
    damaged = bytearray(member)
    damaged[-8] ^= 0xFF  # the trailer's CRC32: the text inflates whole, the check fails
    return bytes(damaged)


FALSE_HEADER = b"\x1f\x8b\x08\x00" + bytes(range(40))  # header-like bytes that inflate to nothing valid

# name -> (the hour file's pieces, the entries that must be read, the spans' pieces, entries lost)
CASES = {
    "cut then appended": (lambda m: [m[0], m[1], cut(m[5]), m[2], m[3], m[4]], [0, 1, 2, 3, 4], [2], 1),
    "bad crc": (lambda m: [m[0], m[1], bad_crc(m[2]), m[3], m[4]], [0, 1, 3, 4], [2], 1),
    "false header between": (lambda m: [m[0], FALSE_HEADER, m[1], m[2], m[3], m[4]], [0, 1, 2, 3, 4], [1], 1),
    "two cut in a row": (lambda m: [m[0], cut(m[5]), cut(m[6]), m[1], m[2], m[3], m[4]], [0, 1, 2, 3, 4], [1, 2], 2),
    "two spans": (lambda m: [cut(m[5]), m[0], m[1], bad_crc(m[2]), m[3], m[4]], [0, 1, 3, 4], [0, 3], 2),
}


def write_case(archive: Path, name: str) -> tuple[list[str], list[tuple[int, int]], int]:
    """The hour file of case ``name``; returns the session ids to read, the damaged spans' offsets
    and how many entries are lost."""
    build, read, damaged, lost = CASES[name]
    pieces = build(members(7))
    path = archive / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(pieces))
    offsets = [sum(map(len, pieces[:i])) for i in range(len(pieces) + 1)]
    spans = []
    for index in damaged:  # consecutive damaged pieces are one span
        if spans and spans[-1][1] == offsets[index]:
            spans[-1] = (spans[-1][0], offsets[index + 1])
        else:
            spans.append((offsets[index], offsets[index + 1]))
    ids = session_ids(7)
    return [ids[i] for i in read], spans, lost


@pytest.mark.parametrize("name", list(CASES))
def test_the_entries_after_damage_are_read_and_the_span_reported(tmp_path, capsys, name):
    archive, out = tmp_path / "archive", tmp_path / "out"
    expected, spans, lost = write_case(archive, name)
    hour = f"{DAY}T{HOUR:02d}"
    code, _, err = cli(capsys, "export-hourly", "--hour", hour, "--archive-path", archive, "--out-dir", out)
    assert code == 1 and not (out / str(DAY) / f"{HOUR:02d}" / "manifest.json").exists(), err  # damage fails by default
    code, _, err = cli(capsys, "export-hourly", "--hour", hour, "--archive-path", archive, "--out-dir", out, "--allow-incomplete")
    assert code == 0, err
    folder = out / str(DAY) / f"{HOUR:02d}"
    manifest = json.loads((folder / "manifest.json").read_text())
    import pyarrow.parquet as pq

    assert pq.read_table(folder / "data.parquet", columns=["meta__session_id"]).column(0).to_pylist() == expected
    assert manifest["row_count"] == manifest["lines_read"] == len(expected)
    assert manifest["bad_line_count"] == lost and manifest["is_partial"] is True
    assert [(s["file"], s["start"], s["end"]) for s in manifest["damaged_spans"]] == [(FILE, a, b) for a, b in spans]
    for start, end in spans:
        assert any(f"bytes {start}-{end}" in line for line in err.splitlines() if line.startswith("warning:")), err
    code, out_text, err = cli(capsys, "verify", "--local", out, "--hour", hour, "--against-archive", archive, "--sample-size", 100)
    assert code == 0 and "FAIL" not in out_text, out_text + err


def test_a_day_reads_past_damage_in_one_of_its_hours(tmp_path, capsys):
    """Variant: the daily tier (24 hour files, one of them damaged), and its cross-check."""
    from instrumetriq_polars.synthetic import write_archive_day

    archive, out = tmp_path / "archive", tmp_path / "out"
    write_archive_day(archive, DAY, entries_per_hour=1)
    expected, spans, lost = write_case(archive, "cut then appended")
    code, _, err = cli(capsys, "export", "--date", DAY, "--archive-path", archive, "--out-dir", out, "--allow-incomplete")
    assert code == 0, err
    manifest = json.loads((out / str(DAY) / "manifest.json").read_text())
    assert manifest["rows_by_hour"][f"{HOUR:02d}"] == len(expected) and manifest["bad_line_count"] == lost
    assert [(s["file"], s["start"], s["end"]) for s in manifest["damaged_spans"]] == [(FILE, a, b) for a, b in spans]
    code, out_text, err = cli(capsys, "verify", "--local", out, "--date", DAY, "--against-archive", archive, "--sample-size", 100)
    assert code == 0 and "FAIL" not in out_text, out_text + err


def test_an_intact_hour_has_no_damaged_spans(tmp_path, capsys):
    """The guard: members all intact, nothing reported, nothing lost."""
    archive, out = tmp_path / "archive", tmp_path / "out"
    path = archive / FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(b"".join(members(5)))
    assert cli(capsys, "export-hourly", "--hour", f"{DAY}T{HOUR:02d}", "--archive-path", archive, "--out-dir", out)[0] == 0
    manifest = json.loads((out / str(DAY) / f"{HOUR:02d}" / "manifest.json").read_text())
    assert manifest["row_count"] == 5 and manifest["bad_line_count"] == 0 and manifest.get("damaged_spans", []) == []
