"""Hours read in chunks (decode.open_hour, source.build_hour): an hour whose text is larger than
ReadOptions.whole_hour_bytes is built in chunks of at most ReadOptions.chunk_bytes, and the day comes out exactly as when every hour is
read whole: the same data.parquet bytes, the same manifest, the same bad lines; damaged gzip data
keeps gunzip's semantics whatever the hour's size."""

from __future__ import annotations

import gzip
import json
import random
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

import instrumetriq_polars.decode as decode
import instrumetriq_polars.source as source
from instrumetriq_polars import export_day
from instrumetriq_polars.decode import gunzip, open_hour
from instrumetriq_polars.read.options import ReadOptions
from instrumetriq_polars.synthetic import make_entry, write_archive_day

from .conftest import DAY
from .support.readopts import scans_with

FOLDER = DAY.strftime("%Y%m%d")
PER_HOUR = 6
BOM = "\ufeff".encode()


def _entries(hour: int, count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [make_entry(rng, datetime(2026, 1, 15, hour, minute, tzinfo=timezone.utc)) for minute in range(count)]


def _text(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def _corrupt(member: bytes) -> bytes:
    damaged = bytearray(member)
    damaged[len(damaged) // 2: len(damaged) // 2 + 64] = bytes(64)
    return bytes(damaged)


@pytest.fixture(scope="module")
def damaged_day(tmp_path_factory):
    """Six hours of six entries (~118 KB of JSON each), every kind of trouble the reader handles:
    bad lines, a NaN line, a JSON array, blank lines and a byte-order mark (hour 0); mistyped
    values: a timestamp that is no instant, a string among the samples, an integer beyond 64 bits
    in a float field (hour 1); a truncated stream (2); an intact member then a corrupt one (3);
    members whose boundary falls inside a line (4)."""
    root = tmp_path_factory.mktemp("chunks") / "archive"
    write_archive_day(root, DAY, entries_per_hour=PER_HOUR, hours=range(6))
    folder = root / FOLDER

    made = _entries(0, PER_HOUR, 1)
    made[2]["spot_raw"]["mid"] = float("nan")  # json.dumps writes NaN: read by json.loads
    lines = [json.dumps(e).encode() for e in made]
    lines[1:1] = [b"{not json", b"", b"[1, 2]", b"   "]
    lines[0] = BOM + lines[0]
    (folder / "00.jsonl.gz").write_bytes(gzip.compress(_text(lines), mtime=0))

    made = _entries(1, PER_HOUR, 2)
    made[1]["meta"]["expires_ts"] = "not a time"  # the chunk is read again, timestamps parsed one by one
    made[3]["spot_prices"][5]["mid"] = "1.5"
    made[4]["meta"]["duration_sec"] = 2**70  # orjson rounds it: the line is decoded again, exactly
    (folder / "01.jsonl.gz").write_bytes(gzip.compress(_text([json.dumps(e).encode() for e in made]), mtime=0))

    blob = (folder / "02.jsonl.gz").read_bytes()
    (folder / "02.jsonl.gz").write_bytes(blob[: len(blob) * 2 // 3])

    text = gzip.decompress((folder / "03.jsonl.gz").read_bytes())
    cut = text.index(b"\n", len(text) // 2) + 1
    (folder / "03.jsonl.gz").write_bytes(gzip.compress(text[:cut], mtime=0) + _corrupt(gzip.compress(text[cut:], mtime=0)))

    text = gzip.decompress((folder / "04.jsonl.gz").read_bytes())
    members = [text[:1000], text[1000:300_000], text[300_000:]]  # both boundaries inside lines
    (folder / "04.jsonl.gz").write_bytes(b"".join(gzip.compress(m, mtime=0) for m in members))
    return root


def _export(archive, out, monkeypatch, limit: int | None):
    """Export the day (every hour whole when ``limit`` is None); returns the result and the chunks
    built, as (hour file, first line)."""
    built = []
    build_chunk = source._build_chunk
    options = ReadOptions() if limit is None else ReadOptions(whole_hour_bytes=limit, chunk_bytes=limit)

    def spy(chunk, lane, lineage):
        built.append((chunk.file[-11:-9], chunk.first_line))
        return build_chunk(chunk, lane, lineage)

    with monkeypatch.context() as patch, scans_with(monkeypatch, options):
        patch.setattr(source, "_build_chunk", spy)
        reports = []
        result = export_day(DAY, str(archive), str(out), allow_incomplete=True, progress=reports.append)
    return result, reports, built


@pytest.mark.parametrize("limit", [300_000, 50_000], ids=["two-lines-a-chunk", "every-line-longer"])
def test_a_day_read_in_chunks_is_the_day_read_whole(damaged_day, tmp_path, monkeypatch, limit):
    whole, whole_reports, whole_built = _export(damaged_day, tmp_path / "whole", monkeypatch, None)
    chunked, reports, built = _export(damaged_day, tmp_path / "chunked", monkeypatch, limit)

    assert whole_built == [(f"{hour:02d}", 1) for hour in range(6)]
    chunks = {hour: [first for h, first in built if h == f"{hour:02d}"] for hour in range(6)}
    assert chunks[2] == chunks[3] == [1]  # damaged: read whole, as gunzip reads them
    assert all(len(chunks[hour]) >= 3 and chunks[hour][0] == 1 for hour in (0, 1, 4, 5))
    if limit < 100_000:  # every entry is a line longer than the limit: a chunk of its own
        assert chunks[5] == list(range(1, PER_HOUR + 2))  # and the empty text after the last newline

    m, w = chunked.manifest.to_dict(), whole.manifest.to_dict()
    assert m.pop("created_ts_utc") and w.pop("created_ts_utc")
    assert m == w  # parquet_sha256 included: the same bytes
    assert m["bad_line_count"] == 4 and m["stdlib_json_lines"] == 1
    assert [b["line"] for b in m["bad_lines"] if b["file"].endswith("00.jsonl.gz")] == [2, 4]  # as inserted
    assert m["mistyped_fields"] == {"meta.duration_sec": 1, "meta.expires_ts": 1, "spot_prices": 1}
    assert m["rows_by_hour"]["04"] == PER_HOUR and 0 < m["rows_by_hour"]["03"] < PER_HOUR

    assert [(r.hour, r.rows, r.lines_read, r.bad_lines) for r in reports] == \
           [(r.hour, r.rows, r.lines_read, r.bad_lines) for r in whole_reports]
    assert [sorted(r.notes) for r in reports] == [sorted(r.notes) for r in whole_reports]
    assert len(reports[1].notes) == 3  # one note per mistyped path and hour, whatever the chunks


def _damaged_blobs(text: bytes) -> dict[str, bytes]:
    intact = gzip.compress(text, mtime=0)
    half = text.index(b"\n", len(text) // 2) + 1
    first, second = gzip.compress(text[:half], mtime=0), gzip.compress(text[half:], mtime=0)
    return {
        "truncated": intact[: len(intact) * 2 // 3],
        "truncated in the last member": first + second[:-20],
        "corrupt": _corrupt(intact),
        "corrupt last member": first + _corrupt(second),
        "bad crc": intact[:-8] + bytes(4) + intact[-4:],
        "junk after the last member": intact + b"junk",
        "zeros after the last member": intact + bytes(8),
        "not gzip": b"plain text\n" + text,
    }


def test_damaged_hours_of_any_size_are_read_as_gunzip_reads_them():
    """Damage found at the end of an oversized hour: no chunk of it was handed out; the hour is
    read whole, exactly as gunzip reads it."""
    text = _text([json.dumps(e).encode() for e in _entries(3, 4, 3)])
    options = ReadOptions(whole_hour_bytes=1000, chunk_bytes=1000)
    for name, blob in _damaged_blobs(text).items():
        assert _whole(open_hour(blob, "x", options)) == _gunzipped(blob), name


def _whole(chunks) -> tuple[list[bytes], object]:
    """The one chunk of an hour read whole, as (lines, damage); fails unless it is one."""
    (chunk,) = list(chunks)
    assert chunk.first_line == 1
    return chunk.lines, chunk.damages


def _gunzipped(blob: bytes) -> tuple[list[bytes], object]:
    """``gunzip``'s reading of ``blob`` as (lines, damage): a damaged text's cut last line left out."""
    text, damages = gunzip(blob, "x")
    lines = text.split(b"\n")
    return (lines[:-1] if damages else lines), tuple(damages)


def test_an_hour_that_fits_is_read_as_gunzip_reads_it_whatever_its_gzip_data():
    """Hours within ReadOptions.whole_hour_bytes: one intact member is inflated in one call (``_one_member``),
    anything else the careful way; either way the text and damage are gunzip's."""
    text = _text([json.dumps(e).encode() for e in _entries(3, 4, 3)])
    intact = gzip.compress(text, mtime=0)
    lying = bytearray(intact)
    lying[-4:] = (1).to_bytes(4, "little")  # the trailer's size field says 1 byte: the member is damaged
    blobs = {**_damaged_blobs(text), "intact": intact, "two members": gzip.compress(text[:7], mtime=0) + gzip.compress(text[7:], mtime=0),
             "empty member": gzip.compress(b"", mtime=0), "empty file": b"", "size field lies": bytes(lying)}
    taken = {name for name, blob in blobs.items() if decode._one_member(blob, len(text)) is not None}
    assert taken == {"intact", "empty member"}
    assert decode._one_member(intact, len(text)) == text and decode._one_member(intact, len(text) - 1) is None
    for limit in (len(text), len(text) + 1, 16 << 20):
        for name, blob in blobs.items():
            assert _whole(open_hour(blob, "x", ReadOptions(whole_hour_bytes=limit))) == _gunzipped(blob), name


def test_intact_hours_are_streamed_only_when_larger_than_a_chunk():
    text = _text([json.dumps(e).encode() for e in _entries(3, 4, 3)])
    members = gzip.compress(text[:5], mtime=0) + gzip.compress(b"", mtime=0) + gzip.compress(text[5:], mtime=0)
    for blob in (gzip.compress(text, mtime=0), members):
        assert _whole(open_hour(blob, "x", ReadOptions(whole_hour_bytes=len(text), chunk_bytes=150_000))) == (text.split(b"\n"), ()) == _gunzipped(blob)
        chunks = list(open_hour(blob, "x", ReadOptions(whole_hour_bytes=len(text) - 1, chunk_bytes=150_000)))
        texts = [b"\n".join(chunk.lines) for chunk in chunks]
        assert b"\n".join(texts) == text and len(chunks) == 4 and max(map(len, texts)) <= 150_000
        assert [chunk.first_line for chunk in chunks] == [1 + text.count(b"\n", 0, sum(len(t) + 1 for t in texts[:i])) for i in range(4)]
    assert _whole(open_hour(b"", "x")) == ([b""], ()) == _gunzipped(b"")


_lines = st.lists(st.one_of(st.just(b""), st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"x"))), max_size=30)


@given(lines=_lines, limit=st.integers(1, 60), piece=st.integers(1, 50), newline_at_end=st.booleans())
def test_chunks_cut_at_newlines_within_the_limit(lines, limit, piece, newline_at_end):
    """Chunks joined by the newlines at their cuts give the text back; each one's first line is its
    line number in the text; a chunk is at most ``limit`` bytes unless it is one line."""
    text = b"\n".join(lines) + (b"\n" if newline_at_end else b"")
    pieces = (text[start:start + piece] for start in range(0, len(text), piece))
    chunks = list(decode._line_chunks(pieces, limit))
    assert b"\n".join(chunk for _, chunk in chunks) == text
    before = 0
    for first, chunk in chunks:
        assert first == text.count(b"\n", 0, before) + 1
        assert len(chunk) <= limit or b"\n" not in chunk
        before += len(chunk) + 1


def test_each_inflate_call_is_given_a_bounded_slice_of_the_input(monkeypatch):
    """The decompressor copies the input it leaves (``unconsumed_tail``) at every call: given the
    rest of the hour each time, a pass was quadratic (the 20x hour's check pass: 0.16-0.99 s
    instead of 0.08 s)."""
    text = _text([json.dumps(e).encode() for e in _entries(3, 4, 3)])
    blob = gzip.compress(text, mtime=0)
    given = []
    real = decode._zlib.decompressobj

    class Recording:
        def __init__(self, wbits):
            self._stream = real(wbits)

        def decompress(self, data, max_length=0):
            given.append(len(data))
            return self._stream.decompress(data, max_length)

        def __getattr__(self, name):
            return getattr(self._stream, name)

    monkeypatch.setattr(decode._zlib, "decompressobj", Recording)
    chunks = open_hour(blob, "x", ReadOptions(whole_hour_bytes=1000, chunk_bytes=150_000))
    assert b"\n".join(b"\n".join(chunk.lines) for chunk in chunks) == text
    assert len(given) > 2 * len(blob) // decode._FEED and max(given) <= decode._FEED


def test_the_cross_check_reads_the_archive_in_the_same_chunks(damaged_day, tmp_path, monkeypatch):
    """verify --against-archive reads an oversized hour chunk by chunk too: the same rows, bad
    lines and rows per hour, and every row compared with its own source line."""
    from instrumetriq_polars.verify import verify_day

    export_day(DAY, str(damaged_day), str(tmp_path / "out"), allow_incomplete=True)
    whole = verify_day(DAY.isoformat(), str(tmp_path / "out"), against_archive=str(damaged_day), sample_size=10_000)
    read = []
    reader, opener = source.read_hour, decode.open_hour
    small = ReadOptions(whole_hour_bytes=50_000, chunk_bytes=50_000)

    def spy(chunks):
        for chunk, rows in reader(chunks):
            read.append((chunk.file[-11:-9], chunk.first_line))
            yield chunk, rows

    monkeypatch.setattr("instrumetriq_polars.verify.crosscheck.read_hour", spy)
    monkeypatch.setattr("instrumetriq_polars.verify.crosscheck.open_hour", lambda data, label: opener(data, label, small))
    chunked = verify_day(DAY.isoformat(), str(tmp_path / "out"), against_archive=str(damaged_day), sample_size=10_000)
    assert [first for hour, first in read if hour == "05"] == list(range(1, PER_HOUR + 2))
    check, reference = chunked.check("archive"), whole.check("archive")
    assert check.status == reference.status == "PASS" and not check.errors
    figures = ("archive_rows", "archive_rows_by_hour", "archive_bad_lines")
    assert {k: check.figures[k] for k in figures} == {k: reference.figures[k] for k in figures}
    assert check.figures["archive_rows"] == sum(check.figures["archive_rows_by_hour"].values()) > 4 * PER_HOUR
