"""Gunzip an hour file and decode its lines: orjson first, the standard library where orjson refuses.

The archive was written by Python's ``json`` module, so every line that module parses is an entry:
lines orjson refuses (``NaN``/``Infinity`` tokens) are decoded by ``json.loads`` instead. A line
nothing parses is never dropped silently: it comes back as a ``BadLine`` naming the file and line.

Nesting: orjson refuses input nested more than ``MAX_DEPTH`` (1024) levels; the standard library
recurses once per level and stops at ``sys.getrecursionlimit()`` (1000) minus its caller's depth
(measured: ~990 levels from the export's stack). An entry orjson accepted could thus not be
re-decoded or written to ``_extra`` (a ``RecursionError`` blocked the day), so every use of the
standard library's json on entry data runs inside ``deep_json()``, and a line nested deeper than
``MAX_DEPTH`` is a bad line whichever decoder read it.

orjson turns an integer beyond 64 bits into a float, rounded (``ORJSON_ROUNDED``). Outside float
fields that value fails the schema's type check; in a float field a float that large fails it too
(normalize.py; in ``spot_prices``, one test an hour finds them: frames.py). Either way the export
re-decodes that one line with ``json.loads`` (``exact_entry``), so an integer is kept exact in
``_extra`` and a float written as such stays in its column.

An hour file of more than ``ReadOptions.whole_hour_bytes`` of text is read in line-aligned chunks
(``open_hour``), each a ``Chunk`` whose line numbers continue the hour's (``first_line``); one pass
over a chunk's lines is a ``LinePass``.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from .members import GZIP_MAGIC, Member, read_members
from .read.digits import long_number
from .read.lines import TextLines
from .read.options import DEFAULT_OPTIONS, ReadOptions
from .text import one_line

if TYPE_CHECKING:
    from .read.lanes import LaneRead

try:  # isal's gunzip is 2-3x faster than zlib's (measured in benchmarks/)
    from isal import igzip as _gzip
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - isal is a declared dependency
    import gzip as _gzip
    import zlib as _zlib

#: orjson decodes integers from -2**63 to 2**64 - 1 exactly, and any other as a float, rounded: one
#: of at least this magnitude. A float this large may thus be an integer of the text.
ORJSON_ROUNDED = 2.0**63
_GZIP_MAGIC = b"\x1f\x8b"
#: The deepest nesting an entry may have: orjson's limit, so every line orjson reads is exportable.
MAX_DEPTH = 1024
TOO_DEEP = f"JSON nested more than {MAX_DEPTH} levels deep"
_BOM = "\ufeff".encode()


@dataclass(frozen=True)
class BadLine:
    """An input line (or a whole file, line 0) that could not be exported, and why."""

    file: str
    line: int
    reason: str
    #: gzip damage: the damaged span's file offsets [start, end) (the manifest's ``damaged_spans``)
    start: int | None = None
    end: int | None = None

    def __post_init__(self) -> None:  # reasons may quote a parser's error text: one writable line
        object.__setattr__(self, "reason", one_line(self.reason))

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "reason": self.reason}

    def message(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.reason}"


@dataclass
class Chunk:
    """One chunk of an hour file's text (the whole hour when it fits), cut into lines
    (``TextLines``): what the reader hands to the builder. Its line numbers continue the hour's
    (``first_line``: the hour file's number of ``lines[0]``); ``damages``: the hour file's gzip
    damage, one ``BadLine`` per entry a damaged span held (the lines it cut are not among
    ``lines``)."""

    file: str  # YYYYMMDD/HH.jsonl.gz
    first_line: int
    lines: Sequence[bytes]  # TextLines as the reader cuts them; a list of lines from elsewhere (live)
    damages: tuple[BadLine, ...] = ()
    spans: LaneRead | None = None  # what a lane read of it ahead, in the reader thread (source.py)


class LinePass:
    """One pass over a chunk's lines, decoding them one by one as ``entries()`` is iterated (so
    only the entries the caller keeps are in memory); the counts are complete once it is exhausted.
    ``spans``: what a lane read of the chunk's lists of objects (``lanes.LaneRead``), or None."""

    def __init__(self, chunk: Chunk, spans: LaneRead | None = None) -> None:
        self.file, self.first_line, self.spans = chunk.file, chunk.first_line, spans
        self.lines = chunk.lines  # not copied: a line the lane read is never sliced out (TextLines)
        self.bad_lines: list[BadLine] = list(chunk.damages)
        self.lines_read = 0  # lines that are not blank
        self.stdlib_lines: set[int] = set()  # line numbers decoded by json.loads: orjson refused them
        self.exact_lines: set[int] = set()  # and those read again by json.loads for a long number

    def lane_items(self, line: int):
        """The items the lane read for ``line`` (a pyarrow StructArray), or None."""
        return None if self.spans is None else self.spans.items.get(line - self.first_line)

    def line(self, index: int) -> bytes:
        """Line ``index`` of the chunk, without a leading byte-order mark (an encoding mark, not
        content: RFC 8259 8.1; ``json.loads`` on bytes skips it too)."""
        line = self.lines[index]
        return line[len(_BOM):] if line.startswith(_BOM) else line

    def entries(self) -> Iterator[tuple[int, dict]]:
        """Each entry with its 1-based line number; what is not an entry goes to ``bad_lines``."""
        loads, first = orjson.loads, self.first_line
        taken = self.spans.remainders if self.spans is not None else ()
        for index in range(len(self.lines)):
            number = index + first
            if index in taken:  # a line the lane read is not blank (it holds the list's key)
                value = self._from_lane(index)
                if value is not None:
                    self.lines_read += 1
                    yield number, value
                    continue
            line = self.line(index)
            if blank(line):
                continue
            self.lines_read += 1
            try:
                value = loads(line)
            except orjson.JSONDecodeError as exc:
                value = _stdlib_loads(line)
                if value is _UNPARSEABLE or value is _DEEP:
                    reason = TOO_DEEP if value is _DEEP else _unparseable_reason(line, exc)
                    self.bad_lines.append(BadLine(self.file, number, reason))
                    continue
                self.stdlib_lines.add(number)
            else:
                if long_number(line):  # orjson may misround it (read/digits.py): the exact reading
                    exact = _stdlib_loads(line)
                    if exact is not _UNPARSEABLE and exact is not _DEEP:
                        value = exact
                        self.exact_lines.add(number)
            if type(value) is not dict:
                self.bad_lines.append(BadLine(self.file, number, f"a JSON {_JSON_KINDS.get(type(value), 'value')}, not an entry object"))
                continue
            yield number, value

    def _from_lane(self, index: int) -> dict | None:
        """The entry of line ``index`` from its remainder, if the lane read its list and orjson reads
        the remainder as an object whose list is the placeholder put there (which proves the cut
        was at the root object's key); otherwise None, and the line is read whole."""
        spans = self.spans
        remainder = spans.remainders.get(index)
        if remainder is None:
            return None
        if long_number(remainder):  # read whole, exactly (see entries)
            spans.drop(index)
            return None
        try:
            value = orjson.loads(remainder)
        except orjson.JSONDecodeError:
            value = None
        if type(value) is dict and value.get(spans.column) == []:  # (orjson makes no other value equal to [])
            return value
        spans.drop(index)
        return None

    def exact_entry(self, line: int, whole: bool = False) -> dict:
        """The entry on ``line`` decoded by the standard library (exact integers); a line the lane
        read, from its remainder (its list is the lane's: ``[]``), unless ``whole``."""
        index = line - self.first_line
        text = self.spans.remainders.get(index) if self.spans is not None and not whole else None
        with deep_json():
            return json.loads((text or self.line(index)).decode("utf-8"))


#: JSON's whitespace (RFC 8259): a line of only these is blank. ``bytes.isspace`` also takes the
#: vertical tab and the form feed, which JSON does not: such a line is unreadable, as json.loads says.
_JSON_BLANKS = b" \t\n\r"


def blank(line: bytes) -> bool:
    """Whether ``line`` is empty or holds only JSON whitespace (a blank line, skipped)."""
    return not line or (line.isspace() and not line.strip(_JSON_BLANKS))


_allowance = threading.Lock()
_allowance_users = 0
_limit_before = 0


@contextmanager
def deep_json():
    """Lets the standard library's ``json`` read and write values ``MAX_DEPTH`` levels deep,
    wherever the caller is: the recursion limit is raised by ``MAX_DEPTH`` (and a margin) while
    any thread is inside, and put back when the last one leaves. Measured on the thread Polars
    runs the export's hours on: 10,000 levels still fit its C stack, so 1,024 leave ample room."""
    global _allowance_users, _limit_before
    with _allowance:
        if not _allowance_users:
            _limit_before = sys.getrecursionlimit()
            sys.setrecursionlimit(_limit_before + MAX_DEPTH + 64)
        _allowance_users += 1
    try:
        yield
    finally:
        with _allowance:
            _allowance_users -= 1
            if not _allowance_users:
                sys.setrecursionlimit(_limit_before)


def deeper_than(value, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests lists/objects more than ``limit`` levels (without recursing)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if type(item) is dict else item if type(item) is list else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if type(child) in (dict, list))
    return False


def gunzip(data: bytes, file: str) -> tuple[bytes, list[BadLine]]:
    """Decompress a whole gzip file. Damaged gzip data is skipped by the CRC-checked resync of
    ``members.read_members`` (the one member reader; the live feed's too), so the intact members
    after damage are read. Each damaged span becomes one ``BadLine`` per entry it held (at least
    one; more when several member headers lie inside it), carrying the span's offsets. A cut
    (incomplete) member keeps the complete lines it inflates to; a corrupt one (inflate error, CRC
    or size mismatch) is dropped whole: its CRC cannot vouch for any part. The text returned ends
    after a newline whenever there was damage (a line the damage cut is lost with it)."""
    try:
        return _gzip.decompress(data), []
    except Exception:  # noqa: BLE001 - fall through to the careful path below
        pass
    scan = read_members(data, final=True)
    items = sorted([*scan.members, *scan.damaged], key=lambda item: item.start)
    text, damages = bytearray(), []
    for index, item in enumerate(items):
        if isinstance(item, Member):
            text += item.text
            continue
        del text[text.rfind(b"\n") + 1:]  # a line cut by the damage is part of what it lost
        if item.reason.startswith("incomplete member"):
            text += _complete_lines(data, item.start, item.end)
        read_after = any(isinstance(later, Member) for later in items[index + 1:])
        lost = _span_lines(data, file, item, _count_lines(text), read_after)
        damages += lost
        text += b"\n" * len(lost)  # each lost entry keeps its line number (a blank line: not read, not counted)
    if damages:
        del text[text.rfind(b"\n") + 1:]
    return bytes(text), damages


_TRUNCATED = "hour file is truncated (gzip stream ends early); the entries after this line are lost"


def _span_lines(data: bytes, file: str, span, lines_before: int, read_after: bool) -> list[BadLine]:
    """The ``BadLine``s of one damaged span: worded as before resync when nothing was read after it."""
    detail = span.reason.removeprefix("inflate failed (").removesuffix(")") if span.reason.startswith("inflate failed (") else span.reason
    held = max(1, data.count(GZIP_MAGIC, span.start, span.end)) if read_after else 1  # as before resync: one
    line = lines_before + 1
    if read_after:
        entries = "1 entry" if held == 1 else f"{held} entries"
        reason = f"gzip data damaged at bytes {span.start}-{span.end} ({detail}); {entries} lost there, the entries after it were read"
    elif span.reason.startswith("incomplete member"):
        reason = _TRUNCATED
    elif span.start == 0 and not data.startswith(_GZIP_MAGIC):
        line, reason = 0, f"not a gzip file (starts with {data[:4].hex(' ')}, not 1f 8b); none of it was read"
    elif not lines_before:
        line, reason = 0, f"gzip data is corrupt ({detail}); none of it was read"
    else:
        reason = f"gzip data is corrupt after this point ({detail}); the entries after this line are lost"
    return [BadLine(file, line + i if line else 0, reason, span.start, span.end) for i in range(held)]


def damaged_spans(bad_lines: list[BadLine]) -> list[dict]:
    """The gzip damage among ``bad_lines``, one dict per span (the manifest's ``damaged_spans``)."""
    spans: dict[tuple, dict] = {}
    for bad in bad_lines:
        if bad.start is not None:
            span = spans.setdefault((bad.file, bad.start), {"file": bad.file, "start": bad.start, "end": bad.end,
                                                            "reason": bad.reason, "entries": 0})
            span["entries"] += 1  # the entries it held, counted as lost (bad_line_count)
    return list(spans.values())


def _complete_lines(data: bytes, start: int, end: int) -> bytes:
    """The complete lines a cut member inflates to (up to the next header-like bytes in its span)."""
    stop = data.find(GZIP_MAGIC, start + 1, end)
    stream = _zlib.decompressobj(31)
    try:
        text = stream.decompress(data[start:end if stop < 0 else stop])
    except Exception:  # noqa: BLE001 - zlib/isal raise their own error types
        return b""
    return text[:text.rfind(b"\n") + 1]


#: Decompressed bytes asked of one inflate call, and compressed bytes given to it (measured on the
#: 20x hour: fed 8 KiB at a time, its check pass took 0.08 s, 64 KiB 0.10-0.15 s, and with
#: glibc's mmap threshold pinned at 128 KiB 0.09 against 0.15-0.17 s: its output stays below it).
_PIECE = 1 << 20
_FEED = 8 << 10


class _Damaged(Exception):
    """The gzip data is not a run of intact members (truncated, corrupt, or not gzip at all)."""


def open_hour(data: bytes, file: str, options: ReadOptions = DEFAULT_OPTIONS) -> Iterator[Chunk]:
    """The hour file ``data`` as ``Chunk``s, once, keeping at most ``options.whole_hour_bytes`` of
    text. An hour that fits, or whose gzip data is damaged, is one chunk, as ``gunzip`` reads it (one
    gzip member: inflated in one call, ``_one_member``; otherwise in one pass of pieces), so that
    ``gunzip``'s damage semantics stay whole. An intact larger hour is inflated to its end first
    (its output discarded, 1 MiB at a time) to find out whether it is intact, then inflated again
    in line-aligned chunks of at most ``options.chunk_bytes``: chunks are exported as they come,
    so damage found late would come after lines of the damaged member were exported. The check is
    one more inflate of the oversized hour only (measured: 0.08 s for the 187 MB of text of the 20x
    hour, in the reader thread while the hour before it is built). Each chunk but the last ends just
    before a newline, which belongs to neither chunk; the line numbers continue from chunk to chunk."""
    limit = options.whole_hour_bytes
    text = _one_member(data, limit)
    if text is None:
        kept: list[bytes] | None = []
        size = 0
        try:
            for piece in _inflate(data, _PIECE):
                size += len(piece)
                if kept is not None and size > limit:
                    kept = None
                elif kept is not None:
                    kept.append(piece)
        except _Damaged:
            text, damages = gunzip(data, file)  # whatever its size: as before chunks
            yield _split(text, damages, file)
            return
        if kept is None:
            for first, text in _line_chunks(_inflate(data, _PIECE), options.chunk_bytes):
                yield _split(text, None, file, first)
                del text  # (a suspended generator keeps its locals)
            return
        text = b"".join(kept)
        del kept
    yield _split(text, None, file)


def _split(text: bytes, damages: list[BadLine] | None, file: str, first_line: int = 1) -> Chunk:
    """What ``gunzip`` returned (text, and the damage it found, if any), or one chunk of an intact
    hour whose first line is the hour's ``first_line``, cut into lines."""
    # after the last newline of damaged text: what the damage cut is not a line
    return Chunk(file, first_line, TextLines(text, drop_last=bool(damages)), tuple(damages or ()))


def _one_member(data: bytes, limit: int) -> bytes | None:
    """The text of ``data`` if it is one intact gzip member (its CRC and size checked) of at most
    ``limit`` bytes of text, inflated in one call; None for anything else (several members, bytes
    after the member, damage, more text), which ``open_hour`` reads the careful way. Hour files
    written whole are one member (``make_archive.py``'s, the project's generator's); the real
    archive's hold one member per entry (the fixture: 147 members for 147 lines) and are read the
    careful way, as before (this costs them one member inflated and its rest copied, ~0.1 ms).
    Measured on an hour of the real-shaped day (9.3 MB of text): 7.5 ms and 2,300 page faults,
    against 18 ms and 4,600 inflated in pieces and joined (the text then held twice for a moment);
    the same hour rewritten one member per entry: 18 ms the careful way, 15 ms by
    ``igzip.decompress``, 38 ms member by member in one call each (each copies the rest of the
    file). The gzip trailer's size field (the last member's size, modulo 2**32) skips the attempt
    for an hour that is too large."""
    if len(data) >= 18 and int.from_bytes(data[-4:], "little") > limit:
        return None
    stream = _zlib.decompressobj(31)
    try:
        text = stream.decompress(data, limit + 1)
    except Exception:  # noqa: BLE001 - zlib/isal raise their own error types
        return None
    return text if stream.eof and not stream.unused_data and len(text) <= limit else None


def _inflate(data: bytes, piece: int) -> Iterator[bytes]:
    """The text of gzip ``data``, in pieces of at most ``piece`` bytes, member after member;
    raises ``_Damaged`` unless every byte belongs to an intact member (each member's CRC and size
    are checked at its end). The input is fed ``_FEED`` bytes at a time: each call copies the input
    it did not consume (``unconsumed_tail``), so feeding all of it made a pass quadratic."""
    view, pos = memoryview(data), 0
    while pos < len(data):
        stream, tail = _zlib.decompressobj(31), b""
        while not stream.eof:
            if not tail:
                if pos >= len(data):  # the stream ends early
                    raise _Damaged
                tail, pos = view[pos:pos + _FEED], pos + _FEED
            before = len(tail)
            try:
                out = stream.decompress(tail, piece)
            except Exception as exc:  # noqa: BLE001 - zlib/isal raise their own error types
                raise _Damaged from exc
            tail = stream.unconsumed_tail
            if out:
                yield out
            elif tail and len(tail) == before:  # no progress (not seen; zlib's contract rules it out)
                raise _Damaged
        pos = min(pos, len(data)) - len(stream.unused_data)  # the next member starts after this one


def _line_chunks(pieces: Iterator[bytes], limit: int) -> Iterator[tuple[int, bytes]]:
    """Cut the text that ``pieces`` make up at newlines into chunks of at most ``limit`` bytes (a
    line longer than that is a chunk alone), each with the number of its first line. The newline
    at a cut is left out; the last chunk is the text after the last cut (possibly empty)."""
    buffer, first, searched = bytearray(), 1, 0  # buffer[:searched] of an overlong line holds no newline
    for piece in pieces:
        buffer += piece
        while len(buffer) > limit:
            cut = buffer.rfind(b"\n", 0, limit + 1)
            if cut < 0:  # the first line is longer than the limit: it ends at its newline
                cut = buffer.find(b"\n", max(searched, limit + 1))
                if cut < 0:
                    searched = len(buffer)
                    break
            with memoryview(buffer) as view, view[:cut] as head:
                chunk = bytes(head)
            del buffer[:cut + 1]
            searched = 0
            yield first, chunk
            first += chunk.count(b"\n") + 1
    yield first, bytes(buffer)


def _count_lines(text: bytes) -> int:
    return text.count(b"\n")


_UNPARSEABLE, _DEEP = object(), object()
_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def _stdlib_loads(line: bytes):
    """The line as ``json.loads`` reads it; ``_UNPARSEABLE``, or ``_DEEP`` beyond ``MAX_DEPTH``."""
    try:
        with deep_json():
            value = json.loads(line.decode("utf-8"))
    except RecursionError:
        return _DEEP
    except (UnicodeDecodeError, ValueError):
        return _UNPARSEABLE
    return _DEEP if deeper_than(value) else value


def _unparseable_reason(line: bytes, exc: Exception) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"not UTF-8 text (byte 0x{line[err.start]:02x} at column {err.start + 1})"
    return f"not valid JSON ({_short(exc)})"


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]
