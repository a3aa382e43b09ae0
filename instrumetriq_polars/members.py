"""The one gzip member reader: intact members, incomplete tails and damaged spans of gzip bytes.

The archive's hour files are a run of gzip members (the collector appends one per entry with
``gzip.open(path, "ab")``, three ``write()`` calls each). Tier 1 (``live``) reads them as they grow;
Tier 2/3 (``decode``) read closed hour files. Both use this module, so one rule decides which bytes
are an entry and which are damage.

Rules (pure functions over bytes; no I/O):

- A member is **complete** when inflate reaches its end and its trailer's CRC32 and ISIZE hold
  (zlib checks both at the end of the stream and raises on a mismatch). With ``one_line=True`` (the
  live feed) its text must also be exactly one line ending in ``\\n``; a member that is complete but
  not one line is reported as a damaged span of its own.
- A member that runs out of data without an error is **incomplete**. An incomplete member at the
  end of the data is left alone: ``Scan.offset`` stays at its start and ``Scan.tail`` is
  ``"pending"``; read again from that offset once more bytes are there.
- An incomplete member becomes **damaged** when inflate raises, when a complete valid member starts
  after it (the collector only appends, so it can never complete), when it inflates to more than
  ``max_text`` bytes, or when the caller says no more data will come (``final=True``). Bytes that
  do not start with the gzip magic (junk) are damaged at once.
- Damaged bytes are skipped by a **resync**: every later occurrence of ``1f 8b 08`` is a candidate,
  accepted only if it inflates to its end with a valid CRC32 and ISIZE (a header-like byte run can
  occur inside deflate data). Each skipped range is one ``DamagedSpan(start, end, reason)``: bytes
  are never skipped silently. Damage with no valid member after it yet is held back (``tail`` is
  ``"damaged"``: the file is stalled on damage) until a valid member follows or ``final``.

API:

- ``read_members(data, base=0, *, final=False, one_line=False, max_text=MAX_ENTRY_TEXT) -> Scan``:
  the members and damaged spans of ``data``, whose first byte is at file offset ``base``; all
  positions in the result are file offsets. ``Scan.offset`` is where the next read starts (the
  end of the last member or span; the start of an incomplete tail).
- ``MemberStream(offset=0, *, one_line=True, max_text=...)``: the incremental form for a growing
  file: ``feed(more, final=False) -> Scan`` with the bytes that follow everything fed so far; it
  keeps only the undecided tail.

For Tier 2/3 (a closed hour file, read whole): ``read_members(data, final=True)``; join the texts
of ``scan.members``; each ``scan.damaged`` span is reported in the manifest and its lines counted
as lost. Inflate is isal's when installed (zlib's otherwise: the same results, tested); isal does
not refuse a bad header at once (it takes ``b"ab"`` as an incomplete stream), which is why a
candidate must start with the gzip magic before it is inflated.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

try:  # isal inflates members ~2.8x faster than zlib (benchmarks/RESULTS.md, Tier 1 live feed)
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - isal is a declared dependency
    _zlib = zlib

GZIP_MAGIC = b"\x1f\x8b\x08"  # ID1 ID2 CM=deflate: what every candidate member starts with
#: The largest text a member may inflate to before it is damaged (real entries are 84-104 KB).
MAX_ENTRY_TEXT = 8 << 20
_FEED = 64 << 10  # compressed bytes given to one inflate call (unconsumed input is copied each call)

PENDING, DAMAGED = "pending", "damaged"


@dataclass(frozen=True)
class Member:
    """One complete gzip member: file offsets ``[start, end)`` and its inflated text."""

    start: int
    end: int
    text: bytes


@dataclass(frozen=True)
class DamagedSpan:
    """File offsets ``[start, end)`` that hold no complete member, and why."""

    start: int
    end: int
    reason: str

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "reason": self.reason}


@dataclass
class Scan:
    """What ``read_members`` found: ``members`` and ``damaged`` in file order, ``offset`` where the
    next read starts, and ``tail``: None (every byte decided), ``"pending"`` (an incomplete member
    at ``offset``) or ``"damaged"`` (damage at ``offset`` with no valid member after it yet)."""

    members: list[Member] = field(default_factory=list)
    damaged: list[DamagedSpan] = field(default_factory=list)
    offset: int = 0
    tail: str | None = None
    tail_reason: str = ""


class _Result:
    __slots__ = ("complete", "error", "end", "text")

    def __init__(self, complete: bool, error: str, end: int = 0, text: bytes = b""):
        self.complete, self.error, self.end, self.text = complete, error, end, text


def _inflate_one(data: bytes, view: memoryview, start: int, max_text: int) -> _Result:
    """Inflate the member at ``start``: complete (with its end and text), damaged (``error`` set),
    or incomplete (neither: the data ran out without an error)."""
    head = data[start:start + 3]
    if not GZIP_MAGIC.startswith(head):
        return _Result(False, f"not a gzip member (starts with {head.hex(' ')})")
    stream = _zlib.decompressobj(31)
    pos, n, size, out, tail = start, len(data), 0, [], b""
    while True:
        if not tail:
            if pos >= n:
                return _Result(False, "")
            tail = view[pos:pos + _FEED]
            pos += len(tail)
        try:
            piece = stream.decompress(tail, max_text + 1 - size)
        except (zlib.error, _zlib.error) as exc:
            return _Result(False, f"inflate failed ({exc})")
        size += len(piece)
        if piece:
            out.append(piece)
        if size > max_text:
            return _Result(False, f"member inflates to more than {max_text} bytes")
        if stream.eof:
            return _Result(True, "", pos - len(stream.unused_data), b"".join(out))
        tail = stream.unconsumed_tail


def _one_line(text: bytes) -> bool:
    return text.endswith(b"\n") and text.find(b"\n") == len(text) - 1


def _resync(data: bytes, view: memoryview, after: int, max_text: int) -> tuple[int, _Result] | None:
    """The first candidate at or after ``after`` that is a complete member (CRC32 and ISIZE
    checked), with its inflate result; None if there is none yet."""
    at = data.find(GZIP_MAGIC, after)
    while at >= 0:
        result = _inflate_one(data, view, at, max_text)
        if result.complete:
            return at, result
        at = data.find(GZIP_MAGIC, at + 1)
    return None


def read_members(data: bytes, base: int = 0, *, final: bool = False, one_line: bool = False,
                 max_text: int = MAX_ENTRY_TEXT) -> Scan:
    """The complete members and damaged spans of ``data`` (file offset ``base`` at its first byte).
    ``final``: no more bytes will follow (an undecided tail becomes a damaged span). ``one_line``:
    a member must be one line ending in a newline (the live feed's rule)."""
    data = bytes(data)
    view, n, pos = memoryview(data), len(data), 0
    scan = Scan(offset=base)
    result = None
    while pos < n:
        if result is None:
            result = _inflate_one(data, view, pos, max_text)
        if result.complete:
            if one_line and not _one_line(result.text):
                scan.damaged.append(DamagedSpan(base + pos, base + result.end, "member text is not one line ending in a newline"))
            else:
                scan.members.append(Member(base + pos, base + result.end, result.text))
            pos, result = result.end, None
            continue
        found = _resync(data, view, pos + 1, max_text)
        reason = result.error or "incomplete member"
        if found is not None:
            at, result = found
            if not result.error and reason == "incomplete member":
                reason = "incomplete member followed by a complete one"
            scan.damaged.append(DamagedSpan(base + pos, base + at, reason))
            pos = at
            continue
        if final:
            scan.damaged.append(DamagedSpan(base + pos, base + n, reason if result.error else "incomplete member at the end of the file"))
            pos = n
            break
        scan.tail = DAMAGED if result.error else PENDING
        scan.tail_reason = reason
        break
    scan.offset = base + pos
    return scan


class MemberStream:
    """The incremental form of ``read_members`` for a growing file: ``feed`` the bytes that follow
    everything fed so far (the first ones at file offset ``offset``); each call returns what is new.
    Only the undecided tail (an incomplete member, or damage awaiting resync) is kept between calls.
    ``offset`` is always a member boundary (or the end of a damaged span)."""

    def __init__(self, offset: int = 0, *, one_line: bool = True, max_text: int = MAX_ENTRY_TEXT):
        self.offset = offset
        self.one_line = one_line
        self.max_text = max_text
        self._held = b""
        self.tail: str | None = None
        self.tail_reason = ""

    @property
    def held(self) -> int:
        """Bytes after ``offset`` fed but not yet decided."""
        return len(self._held)

    def feed(self, more: bytes = b"", *, final: bool = False) -> Scan:
        data = self._held + bytes(more) if self._held else bytes(more)
        scan = read_members(data, self.offset, final=final, one_line=self.one_line, max_text=self.max_text)
        self._held = data[scan.offset - self.offset:]
        self.offset = scan.offset
        self.tail, self.tail_reason = scan.tail, scan.tail_reason
        return scan

    def reset(self, offset: int) -> None:
        """Start again at ``offset`` (a file that was rewritten), forgetting the held tail."""
        self.offset, self._held, self.tail, self.tail_reason = offset, b"", None, ""
