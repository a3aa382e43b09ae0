"""The columnar lane: an entry's list of flat objects (``spot_prices``, ~95% of a line's bytes) read
straight into Arrow by pyarrow's JSON reader, the rest of the line by orjson (decode.py).

Each line is cut at its top-level ``"spot_prices"`` key, the entry's last: the array after it (the
*span*) goes to pyarrow, wrapped as ``{"spot_prices": <span>}`` lines of one NDJSON buffer per hour
(or chunk), read against an explicit schema with unknown keys refused; the line with ``[]`` in
place of the span (the *remainder*) goes to orjson. No Python object is made per sample.

The lane is an optimisation only: its output must be what the object lane (orjson on the whole
line + ``frames.ListColumn``) makes of the same line, so it takes a line only when it can prove
that, and hands every other line back whole (``LaneRead`` simply does not hold it):

- the cut: the key is preceded by ``{`` or ``,`` (so its quote opens a key, not a quote inside a
  key), followed by ``:`` and ``[``; after the span come only ``}`` and blanks. decode.py then
  checks that orjson reads the remainder as an object whose ``spot_prices`` is the ``[]`` put
  there, which proves the key was the root object's (and the last of its name, as orjson keeps);
- the span: ASCII only (invalid UTF-8 and lone surrogates are the object lane's to judge), and
  read by pyarrow without error: it refuses a string, boolean, object or list in a float field,
  a number in ``ts``, an unknown or repeated key, an item that is not an object, and text that
  is not exactly one array (measured, pyarrow 26). A batch pyarrow refuses is split in halves
  until the refused lines are alone;
- the values: pyarrow reads ``NaN``/``Infinity`` (orjson refuses them: the object lane counts
  such a line in ``stdlib_json_lines``), reads an integer of any size as a rounded float (a
  float field refuses integers beyond 2**53 whole: ``schema.exact_float``) and ``-0`` as -0.0
  (orjson: the integer 0), and a ``null`` item as a null object (normalize calls such a list
  mistyped). A line whose samples hold a null item, NaN, an infinity, -0.0 or a magnitude of
  2**53 or more is handed back.

``ts`` is read as text: instants are decided by the one rule of instants.py, as in the object lane.
Measured on the real-shaped day (224 MB of JSON, 2 cores): cutting ~0.25 s, pyarrow ~0.7 s, orjson
on the remainders ~0.06 s, against ~0.9 s of orjson on whole lines plus ~1.0 s of ``ListColumn``
conversion of their sample dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from io import BytesIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

#: Switch for tests (and for measuring): False sends every line through the object lane.
ENABLED = True
#: What replaces the span in the remainder: an empty list, so normalize sees a list of objects.
PLACEHOLDER = b"[]"
#: pyarrow parses a batch in blocks of this size (measured on an hour of ~9 MB: 1-4 MiB alike,
#: one 16 MiB block ~40% slower); a block must hold a whole line, so a longer line raises it.
BLOCK_SIZE = 2 << 20
#: pyarrow's own threads for one batch: on. The lane runs in the thread that builds frames, which
#: waits for it; measured on the real-shaped day, whole CLI, 3 interleaved runs: 3.54-4.39 s with
#: them, 4.12-4.50 s without (+10 MB of peak RSS). They cost CPU (2.2 s vs 1.3 s for the lane
#: alone), so they pay only while a core is free, as it is here.
THREADS = True
#: A float of this magnitude or more may be an integer a float field cannot hold exactly.
_EXACT_LIMIT = 2.0**53
_NEGATIVE_ZERO_BITS = -(2**63)  # -0.0 seen as an int64


@dataclass
class LaneRead:
    """The lines the lane took, by index into the hour's lines: each one's remainder (the line,
    ``[]`` in place of its list) and its items (the list's objects, in the staged item type)."""

    column: str
    remainders: dict[int, bytes] = field(default_factory=dict)
    items: dict[int, pa.StructArray] = field(default_factory=dict)

    def drop(self, index: int) -> None:
        """Hand line ``index`` back to the object lane."""
        self.remainders.pop(index, None)
        self.items.pop(index, None)


def read_lane(lines: list[bytes], column: str, item_type: pa.StructType) -> LaneRead:
    """Cut ``lines`` at ``column`` and read the cut lists as ``list<item_type>`` (timestamps as
    text); a line that is not provably read as the object lane would is left out."""
    lane = LaneRead(column)
    if not ENABLED:
        return lane
    key = b'"' + column.encode() + b'"'
    spans: list[tuple[int, memoryview]] = []
    for index, line in enumerate(lines):
        cut = _cut(line, key)
        if cut is not None:
            lane.remainders[index] = cut[0]
            spans.append((index, cut[1]))
    schema = pa.schema([pa.field(column, pa.list_(item_type))])
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
    floats = [i for i, f in enumerate(item_type) if pa.types.is_floating(f.type)]
    for batch, lists in _parse(spans, column.encode(), options):
        _take(lane, batch, lists, floats)
    for index in [i for i in lane.remainders if i not in lane.items]:
        del lane.remainders[index]
    return lane


def _cut(line: bytes, key: bytes) -> tuple[bytes, memoryview] | None:
    """(remainder, span) of ``line``, or None when it is not cut at ``key`` as the lane needs.
    Only the bytes around the cut are looked at; the span is a view, not a copy."""
    at = line.find(key)
    if at < 1 or line[max(0, at - 64):at].rstrip()[-1:] not in (b"{", b","):
        return None
    start = line.find(b"[", at + len(key), at + len(key) + 64)
    if start < 0 or line[at + len(key):start].strip() != b":":
        return None
    tail = line[-64:].rstrip()
    if tail[-1:] != b"}" or tail[:-1].rstrip()[-1:] != b"]":
        return None
    end = len(line) - len(line[-64:]) + len(tail[:-1].rstrip())
    if end <= start:
        return None
    return line[:start] + PLACEHOLDER + line[end:], memoryview(line)[start:end]


def _parse(spans: list[tuple[int, memoryview]], column: bytes, options: pj.ParseOptions):
    """Yield (batch of spans, their lists as one ListArray per chunk) for every batch pyarrow
    reads; a refused batch is split in two until each refused line is alone (and left out)."""
    if not spans:
        return
    opening, between = b'{"' + column + b'":', b'}\n{"' + column + b'":'
    text = b"".join((opening, between.join(span for _, span in spans), b"}\n"))
    if not text.isascii():  # (one pass over the batch; rare) non-ASCII spans are the object lane's
        spans = [(index, span) for index, span in spans if bytes(span).isascii()]
        yield from _parse(spans, column, options)
        return
    longest = max(len(span) for _, span in spans) + len(opening) + 2
    read = pj.ReadOptions(use_threads=THREADS, block_size=max(BLOCK_SIZE, 2 * longest))
    try:
        table = pj.read_json(BytesIO(text), read_options=read, parse_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        table = None
    del text
    if table is not None and table.num_rows == len(spans):
        yield spans, table.column(0)
        return
    if len(spans) > 1:
        half = len(spans) // 2
        yield from _parse(spans[:half], column, options)
        yield from _parse(spans[half:], column, options)


def _take(lane: LaneRead, batch: list[tuple[int, memoryview]], lists: pa.ChunkedArray, floats: list[int]) -> None:
    """Give each line of ``batch`` its items, unless a value is one the object lane reads otherwise."""
    row = 0
    for chunk in lists.chunks:
        values = chunk.flatten()
        suspect = _suspect_rows(chunk, values, floats)
        offsets = chunk.offsets.to_pylist()
        for position in range(len(chunk)):
            index = batch[row][0]
            row += 1
            if position in suspect:  # (never NULL: each span is an array)
                continue
            start = offsets[position] - offsets[0]
            lane.items[index] = values.slice(start, offsets[position + 1] - offsets[position])


def _suspect_rows(lists: pa.ListArray, values: pa.StructArray, floats: list[int]) -> set[int]:
    """Rows (positions in ``lists``) the object lane would read otherwise: with a null item, or a
    float value that is NaN, an infinity, -0.0, or of 2**53 or more in magnitude. One pass of
    kernels settles most hours."""
    masks = [values.is_null()] if values.null_count else []  # a null item: normalize calls the list mistyped
    for index in floats:
        child = values.field(index)
        if child.null_count == len(child):
            continue
        odd = pc.or_(pc.or_(pc.is_nan(child), pc.greater_equal(pc.abs(child), _EXACT_LIMIT)),
                     pc.equal(child.view(pa.int64()), _NEGATIVE_ZERO_BITS))
        masks.append(pc.fill_null(odd, False))
    if not masks or not any(pc.any(mask).as_py() for mask in masks):
        return set()
    parents = pc.list_parent_indices(lists)
    rows: set[int] = set()
    for mask in masks:
        rows.update(pc.filter(parents, mask).to_pylist())
    return rows
