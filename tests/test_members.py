"""The one gzip member reader (members.py): complete members, incomplete tails, damaged spans, resync."""

from __future__ import annotations

import gzip
import io
import random
import zlib

import pytest

from instrumetriq_polars.members import GZIP_MAGIC, MemberStream, read_members

from .conftest import SAMPLE, require_shared


def member(text: bytes, name: str = "00.jsonl") -> bytes:
    """One gzip member exactly as ``gzip.open(path, "ab")`` writes it (FNAME = the file's name)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="ab", fileobj=buffer, mtime=1767225600) as f:
        f.write(text)
    return buffer.getvalue()


def line(i: int, size: int = 120) -> bytes:
    rng = random.Random(i)
    body = "".join(rng.choice("abcdefghij0123456789") for _ in range(size))
    return b'{"i": %d, "x": "%s"}\n' % (i, body.encode())


def three_writes(text: bytes) -> list[bytes]:
    """The collector's three writes of one member: 19-byte header, body, 8-byte trailer."""
    whole = member(text)
    assert len(whole[:19]) == 19 and whole[3] == 0x08  # FLG=FNAME, "00.jsonl\0" ends at 19
    return [whole[:19], whole[19:-8], whole[-8:]]


def test_complete_members_with_offsets():
    parts = [member(line(i)) for i in range(3)]
    data = b"".join(parts)
    scan = read_members(data, base=100, one_line=True)
    assert [m.text for m in scan.members] == [line(i) for i in range(3)]
    bounds = [100]
    for p in parts:
        bounds.append(bounds[-1] + len(p))
    assert [(m.start, m.end) for m in scan.members] == list(zip(bounds, bounds[1:]))
    assert scan.offset == bounds[-1] and scan.tail is None and not scan.damaged


def test_three_member_file_cut_at_every_offset_then_completed():
    parts = [member(line(i)) for i in range(3)]
    data = b"".join(parts)
    boundaries = {0, len(parts[0]), len(parts[0]) + len(parts[1]), len(data)}
    for cut in range(len(data) + 1):
        stream = MemberStream()
        first = stream.feed(data[:cut])
        assert stream.offset in boundaries, cut
        assert not first.damaged, cut
        if stream.offset < cut:
            assert first.tail == "pending", cut
        second = stream.feed(data[cut:])
        texts = [m.text for m in first.members + second.members]
        assert texts == [line(i) for i in range(3)], cut
        assert not second.damaged and stream.offset == len(data) and stream.held == 0


def test_three_write_pattern_polled_between_writes():
    stream = MemberStream()
    got = []
    for i in range(4):
        for write in three_writes(line(i)):
            scan = stream.feed(write)
            got += [m.text for m in scan.members]
            assert not scan.damaged
        assert got == [line(j) for j in range(i + 1)]
    assert stream.tail is None


def test_real_fixture_member_by_member():
    data = require_shared(SAMPLE).read_bytes()
    scan = read_members(data, one_line=True, final=True)
    assert len(scan.members) == 147 and not scan.damaged
    assert b"".join(m.text for m in scan.members) == gzip.decompress(data)
    # fed in odd-sized pieces, the same members at the same offsets
    stream, got, rng, pos = MemberStream(), [], random.Random(7), 0
    while pos < len(data):
        step = rng.randint(1, 9000)
        got += stream.feed(data[pos:pos + step]).members
        pos += step
    assert [(m.start, m.end, m.text) for m in got] == [(m.start, m.end, m.text) for m in scan.members]


def _damage(kind: str) -> bytes:
    whole = member(line(99, 2000))
    if kind == "header only":
        return whole[:19]
    if kind == "cut body":
        return whole[:19 + (len(whole) - 27) // 2]
    if kind == "missing trailer":
        return whole[:-8]
    if kind == "flipped byte":
        b = bytearray(whole)
        b[len(whole) // 2] ^= 0x40
        return bytes(b)
    if kind == "flipped crc":
        b = bytearray(whole)
        b[-6] ^= 0x01
        return bytes(b)
    if kind == "junk":
        return bytes(random.Random(3).randrange(256) for _ in range(777)).replace(b"\x1f", b"\x20")
    raise AssertionError(kind)


KINDS = ["header only", "cut body", "missing trailer", "flipped byte", "flipped crc", "junk"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("before", [0, 2])
def test_damage_then_valid_members(kind, before):
    n = 5
    head = b"".join(member(line(i)) for i in range(before))
    bad = _damage(kind)
    tail_parts = [member(line(100 + i)) for i in range(n)]
    data = head + bad + b"".join(tail_parts)
    scan = read_members(data, one_line=True)
    assert [m.text for m in scan.members] == [line(i) for i in range(before)] + [line(100 + i) for i in range(n)]
    assert [(s.start, s.end) for s in scan.damaged] == [(len(head), len(head) + len(bad))]
    assert scan.offset == len(data) and scan.tail is None
    # grown write by write: the damage is held back until a valid member follows, then reported once
    stream, members, spans = MemberStream(), [], []
    for piece in [head, bad] + [w for i in range(n) for w in three_writes(line(100 + i))]:
        scan = stream.feed(piece)
        members += scan.members
        spans += scan.damaged
    assert [m.text for m in members] == [line(i) for i in range(before)] + [line(100 + i) for i in range(n)]
    assert [(s.start, s.end) for s in spans] == [(len(head), len(head) + len(bad))]


@pytest.mark.parametrize("kind", KINDS)
def test_damage_at_the_end_waits_then_final_reports_it(kind):
    head = member(line(1))
    bad = _damage(kind)
    scan = read_members(head + bad, one_line=True)
    assert len(scan.members) == 1 and not scan.damaged and scan.offset == len(head)
    if kind in ("flipped byte", "flipped crc", "junk"):
        assert scan.tail == "damaged"  # inflate raised: it can never complete
    else:
        assert scan.tail == "pending"
    final = read_members(head + bad, one_line=True, final=True)
    assert [(s.start, s.end) for s in final.damaged] == [(len(head), len(head) + len(bad))]


def test_header_looking_bytes_inside_deflate_data_are_not_accepted():
    """A member whose deflate data holds ``1f 8b 08`` (stored block of text holding it): cut before
    its trailer, then a valid member: the false header is tried and refused (no CRC/ISIZE match),
    and the damage is one span up to the real member."""
    payload = b'{"x": "' + bytes(range(256)) * 4 + GZIP_MAGIC + b'\x08\x00\x00\x00\x00\x00\xff' + b'"}\n'
    comp = zlib.compressobj(0, zlib.DEFLATED, -15)  # level 0: stored, so the text appears verbatim
    raw = comp.compress(payload) + comp.flush()
    assert GZIP_MAGIC in raw
    hdr = member(b"")[:19]
    whole = hdr + raw + zlib.crc32(payload).to_bytes(4, "little") + len(payload).to_bytes(4, "little")
    assert gzip.decompress(whole) == payload
    cut = whole[:-8]
    good = member(line(5))
    scan = read_members(cut + good)
    assert [m.text for m in scan.members] == [line(5)]
    assert [(s.start, s.end) for s in scan.damaged] == [(0, len(cut))]
    # and a crafted valid member embedded inside another member's stored data is inside that member:
    # the outer member is read whole, the embedded one is not delivered on its own
    inner = member(line(6))
    outer_payload = b'{"y": "' + inner + b'"}\n'
    outer = member(outer_payload)
    scan = read_members(outer + good)
    assert [m.text for m in scan.members] == [outer_payload, line(5)]


def test_member_not_one_line_is_damaged_for_the_live_feed():
    two = member(line(1) + line(2))
    no_newline = member(b'{"a": 1}')
    data = two + no_newline + member(line(3))
    scan = read_members(data, one_line=True)
    assert [m.text for m in scan.members] == [line(3)]
    assert [(s.start, s.end) for s in scan.damaged] == [(0, len(two)), (len(two), len(two) + len(no_newline))]
    assert len(read_members(data).members) == 3  # Tier 2/3: any text


def test_oversized_member_is_damaged():
    big = member(b"x" * 5000 + b"\n")
    scan = read_members(big[:-8], max_text=1000)
    assert scan.tail == "damaged" and "more than 1000" in scan.tail_reason
    scan = read_members(big + member(line(1)), max_text=1000)
    assert [(s.start, s.end) for s in scan.damaged] == [(0, len(big))]
    assert [m.text for m in scan.members] == [line(1)]


def test_hour_file_written_whole_is_one_member_of_many_lines():
    text = b"".join(line(i) for i in range(50))
    scan = read_members(gzip.compress(text), final=True)
    assert [m.text for m in scan.members] == [text] and not scan.damaged


@pytest.fixture(params=["isal", "zlib"])
def inflater(request, monkeypatch):
    """Both inflaters the reader may run on give the same results."""
    from instrumetriq_polars import members

    if request.param == "zlib":
        monkeypatch.setattr(members, "_zlib", zlib)
    return request.param


@pytest.mark.parametrize("kind", KINDS + ["flipped isize"])
def test_each_inflater_finds_the_same_members_and_spans(inflater, kind):
    whole = member(line(99, 2000))
    bad = whole[:-2] + bytes([whole[-2] ^ 1]) + whole[-1:] if kind == "flipped isize" else _damage(kind)
    head = member(line(1))
    data = head + bad + b"".join(member(line(100 + i)) for i in range(3))
    scan = read_members(data, one_line=True)
    assert [m.text for m in scan.members] == [line(1)] + [line(100 + i) for i in range(3)]
    assert [(s.start, s.end) for s in scan.damaged] == [(len(head), len(head) + len(bad))]
    for cut in range(len(head) - 30, len(head) + 1):
        assert read_members(head[:cut], one_line=True).tail == ("pending" if cut < len(head) else None)
