"""The columnar lane: an entry's list of flat objects (``spot_prices``, ~95% of a line's bytes) read
straight into Arrow, the rest of the line by orjson (decode.py).

Each line is cut at its top-level ``"spot_prices"`` key, the entry's last: the array after it (the
*span*) goes to Arrow, the line with ``[]`` in place of the span (the *remainder*) to orjson. No
Python object is made per sample. A chunk's spans are read in batches of ~4 MiB (``ReadOptions.batch_bytes``),
each in three vectorised steps:

1. **checked** against one regular expression (RE2, ``pyarrow.compute.match_substring_regex``)
   that spells out the only text the lane takes: ``[{"ts":"…","mid":N,"bid":N,"ask":N,
   "spread_bps":N},…]`` with the item type's keys in its order, each once, no blanks (or, the
   *spaced* form Python's ``json.dumps`` writes by default, one after each ``,`` and ``:``, and
   none in text), numbers exactly as JSON (RFC 8259) writes them, and text values of printable
   ASCII without a quote, a backslash (so no escapes: the text is the value) or any of ``, { } [ ]``;
2. **translated** in one ``bytes.translate`` into delimited text, a row per item: ``,`` and ``[``
   become ``:``, ``}`` a newline, ``{`` and ``]`` (and a spaced span's blanks) go, so ``[{"ts":"X","mid":1.5}]`` becomes
   ``:"ts":"X":"mid":1.5`` + newline (the colons inside ``"X"`` are quoted);
3. **read** by pyarrow's CSV reader with ``:`` as the delimiter and an explicit column type per
   value (text, or float64), the key columns skipped. A span's item count is its count of ``{``.

The lane is an optimisation only: its output must be what the object lane (orjson on the whole
line + ``frames.ListColumn``) makes of the same line, so it takes a line only when it can prove
that, and hands every other line back whole (``LaneRead`` simply does not hold it):

- the cut: the key is preceded by ``{`` or ``,`` (so its quote opens a key, not a quote inside a
  key), followed by ``:`` and ``[``; after the span come only ``}`` and blanks. decode.py then
  checks that orjson reads the remainder as an object whose ``spot_prices`` is the ``[]`` put
  there, which proves the key was the root object's (and the last of its name, as orjson keeps);
- the span: it matches the expression of step 1, so it is valid JSON that orjson reads as a list
  of objects with exactly these keys, each value a string or a number; anything else (an empty
  list, blanks, other keys or another order, ``null``, ``NaN``, escapes, non-ASCII text, ...) is
  the object lane's. Given that grammar, the translation is exact and the CSV reader sees each
  value's own text;
- the values: the CSV reader rounds a number's text as orjson does (both correctly; tested
  bit for bit on random floats), but reads ``-0`` as -0.0 (orjson: the integer 0), an integer of
  any size as a rounded float (a float field refuses integers beyond 2**53 whole:
  ``schema.exact_float``) and ``1e400`` as an infinity. A line whose samples hold an infinity,
  -0.0 or a magnitude of 2**53 or more is handed back.

``ts`` is read as text: instants are decided by the one rule of instants.py, as in the object lane.
Measured on the real-shaped day (224 MB of JSON, 207 MB of spans, 2 cores), the lane alone over
the day's 24 hours: the check ~0.33 s (in its own thread, while this one translates), the
translation ~0.14 s, the counts ~0.07 s, the CSV reader ~0.3 s; in all 0.74-0.78 s of wall and
1.1-1.2 s of CPU, against 0.84-0.88 s and 1.5 s for pyarrow's JSON reader (the lane's reader
before; same runs). Whole CLI, 5 interleaved runs: median 4.29 s and 4.0 s of user CPU against
4.40 s and 4.4 s, peak RSS 290-313 MB against 283-298 MB (README "Against the peers").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from .read.lanes import LaneRead

#: What replaces the span in the remainder: an empty list, so normalize sees a list of objects.
PLACEHOLDER = b"[]"
#: The lane reads a chunk's spans in batches of about ``ReadOptions.batch_bytes`` (``read_lane``): a batch's
#: text is held three times over while it is read (joined, translated, parsed), and each batch
#: costs a few ms (RE2 compiles its expression anew at each call). Measured, whole CLI with the
#: runner's allocator settings, real-shaped day (~8.6 MB of spans an hour), 5 interleaved runs:
#: an hour at once median 4.38 s and 286-298 MB of peak RSS, 4 MiB batches 4.51 s and 276-283 MB,
#: 2 MiB batches 4.83 s and 274-275 MB (3 runs of the 20x-hour day: 292-306, 288-295, 289-296 MB).
#: The CSV reader's block size and threads. Measured, the lane alone on the real-shaped day: with
#: threads 0.70-0.76 s of wall, without 0.83-0.96 s (same CPU); blocks of 0.5, 1 and 4 MiB alike;
#: blocks of 96 KiB (below glibc's pinned mmap threshold, memory.py) no faster in the whole export.
BLOCK_SIZE = 1 << 20
THREADS = True
#: A JSON number exactly as RFC 8259 writes it (no NaN, no "+1", "01", "1." or ".5").
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
#: A text value the lane takes: printable ASCII but for " \ , { } [ ] (the translation's own) and,
#: in the spaced form, the blank.
_TEXT = r'"[\x20\x21\x23-\x2b\x2d-\x5a\x5e-\x7a\x7c\x7e]*"'
_TEXT_SPACED = r'"[\x21\x23-\x2b\x2d-\x5a\x5e-\x7a\x7c\x7e]*"'
#: Step 2: , and [ become the delimiter, } ends a row, { and ] go (and blanks, in the spaced form).
_TRANSLATION = bytes.maketrans(b",[}", b"::\n")
_DROPPED = b"{]"
_DROPPED_SPACED = b"{] "
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: A float of this magnitude or more may be an integer a float field cannot hold exactly.
_EXACT_LIMIT = 2.0**53
_NEGATIVE_ZERO_BITS = -(2**63)  # -0.0 seen as an int64


@dataclass(frozen=True)
class _Grammar:
    """How the spans of one item type are checked and read (steps 1 and 3)."""

    item_type: pa.StructType
    compact: str  # the pattern of a span as compact writers write it: ,"key":value
    spaced: str  # and as Python's json.dumps writes it by default: , "key": value
    parse: pcsv.ParseOptions
    convert: pcsv.ConvertOptions
    names: tuple[str, ...]  # the CSV columns: per item field, its key then its value
    floats: tuple[int, ...]  # positions of the float fields


@lru_cache(maxsize=None)
def _grammar(item_type: pa.StructType) -> _Grammar | None:
    """The grammar of a list of ``item_type`` objects, or None when the lane cannot read it (a
    field neither text nor float64, or a key that is not a plain name)."""
    names, types = [""], {}
    for item in item_type:
        if not _KEY.fullmatch(item.name) or not (pa.types.is_large_string(item.type) or pa.types.is_float64(item.type)):
            return None
        names += [f"key {item.name}", item.name]
        types[item.name] = item.type

    def pattern(comma: str, colon: str, text: str) -> str:
        one = comma.join(f'"{name}"{colon}' + (_NUMBER if pa.types.is_float64(kind) else text) for name, kind in types.items())
        return rf"^\[\{{{one}\}}(?:{comma}\{{{one}\}})*\]$"

    return _Grammar(
        item_type, compact=pattern(",", ":", _TEXT), spaced=pattern(", ", ": ", _TEXT_SPACED),
        parse=pcsv.ParseOptions(delimiter=":", quote_char='"', double_quote=False, escape_char=False,
                                newlines_in_values=False, ignore_empty_lines=False),
        convert=pcsv.ConvertOptions(column_types=types, include_columns=list(types), null_values=[],
                                    strings_can_be_null=False, quoted_strings_can_be_null=False, check_utf8=False),
        names=tuple(names), floats=tuple(i for i, item in enumerate(item_type) if pa.types.is_floating(item.type)))


def read_lane(lines: list[bytes], column: str, item_type: pa.StructType, batch_bytes: int) -> LaneRead:
    """Cut ``lines`` at ``column`` and read the cut lists as ``list<item_type>`` (timestamps as
    text), in batches of about ``batch_bytes`` of spans; a line that is not provably read as the
    object lane would is left out."""
    lane = LaneRead(column)
    grammar = _grammar(item_type)
    if grammar is None:
        return lane
    key = b'"' + column.encode() + b'"'
    spans: list[tuple[int, memoryview]] = []
    for index, line in enumerate(lines):
        cut = _cut(line, key)
        if cut is not None:
            lane.remainders[index] = cut[0]
            spans.append((index, cut[1]))
    for batch in _batches(spans, batch_bytes):
        taken, lists = _read(batch, grammar)
        _take(lane, taken, lists, grammar.floats)
    for index in [i for i in lane.remainders if i not in lane.items]:
        del lane.remainders[index]
    return lane


def _batches(spans: list[tuple[int, memoryview]], size: int) -> Iterator[list[tuple[int, memoryview]]]:
    """``spans`` in order, in batches of about ``size`` bytes (at least one span each)."""
    batch: list[tuple[int, memoryview]] = []
    held = 0
    for span in spans:
        if batch and held + len(span[1]) > size:
            yield batch
            batch, held = [], 0
        batch.append(span)
        held += len(span[1])
    if batch:
        yield batch


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


def _read(spans: list[tuple[int, memoryview]], grammar: _Grammar) -> tuple[list[tuple[int, memoryview]], pa.ListArray | None]:
    """The spans that match the grammar, and their lists (one per span, in order)."""
    if not spans:
        return [], None
    data = b"".join(span for _, span in spans)
    ends = list(accumulate(len(span) for _, span in spans))
    whole = _binary(data, ends)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lane") as check:
        checked = check.submit(pc.match_substring_regex, whole, grammar.compact)  # RE2 lets go of the GIL
        text = data.translate(_TRANSLATION, _DROPPED)  # meanwhile, as if every span were compact
        counts = [data.count(b"{", start, end) for start, end in zip((0, *ends), ends)]  # a matching span's
        compact = checked.result()  # only braces open its items
    if compact.false_count:  # each span that matches either form, translated on its own
        spaced = pc.match_substring_regex(whole, grammar.spaced)
        forms = [(span, _DROPPED if one else _DROPPED_SPACED)
                 for span, one, other in zip(spans, compact.to_pylist(), spaced.to_pylist()) if one or other]
        spans = [span for span, _ in forms]
        if not spans:
            return [], None
        texts = [bytes(span).translate(_TRANSLATION, dropped) for (_, span), dropped in forms]
        counts = [text.count(b"\n") for text in texts]
        text = b"".join(texts)
        del texts
    del whole, data
    read = pcsv.ReadOptions(column_names=list(grammar.names), use_threads=THREADS, block_size=BLOCK_SIZE)
    # (a BufferReader hands pyarrow the text's own bytes; a BytesIO's reads would copy each block)
    try:
        table = pcsv.read_csv(pa.BufferReader(pa.py_buffer(text)), read_options=read, parse_options=grammar.parse,
                              convert_options=grammar.convert)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):  # not seen for text of the grammar
        return [], None  # (huge exponents, 5,000 digits, subnormals read alike); the object lane reads them all
    del text  # (a chunk's size: not held while the columns are copied into one chunk each)
    offsets = pa.array([0, *accumulate(counts)], pa.int32())
    if offsets[-1].as_py() != table.num_rows:  # neither: the object lane reads them all
        return [], None
    values = pa.StructArray.from_arrays([table.column(item.name).combine_chunks() for item in grammar.item_type],
                                        fields=list(grammar.item_type))
    return spans, pa.ListArray.from_arrays(offsets, values)


def _binary(data: bytes, ends: list[int]) -> pa.LargeBinaryArray:
    """``data`` as one binary value per end offset, in order (no copy)."""
    offsets = pa.array([0, *ends], pa.int64())
    return pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(ends), [None, offsets.buffers()[1], pa.py_buffer(data)])


def _take(lane: LaneRead, batch: list[tuple[int, memoryview]], lists: pa.ListArray | None, floats: tuple[int, ...]) -> None:
    """Give each line of ``batch`` its items, unless a value is one the object lane reads otherwise."""
    if lists is None:
        return
    values = lists.flatten()
    suspect = _suspect_rows(lists, values, floats)
    offsets = lists.offsets.to_pylist()
    for position, (index, _) in enumerate(batch):
        if position not in suspect:
            lane.items[index] = values.slice(offsets[position], offsets[position + 1] - offsets[position])


def _suspect_rows(lists: pa.ListArray, values: pa.StructArray, floats: tuple[int, ...]) -> set[int]:
    """Rows (positions in ``lists``) the object lane would read otherwise: a float value that is an
    infinity, -0.0, or of 2**53 or more in magnitude (no NaN: the grammar's numbers cannot read as
    one). One pass of kernels settles most chunks."""
    masks = []
    for index in floats:
        child = values.field(index)
        beyond = pc.or_(pc.greater_equal(child, _EXACT_LIMIT), pc.less_equal(child, -_EXACT_LIMIT))
        negative_zero = pc.equal(child.view(pa.int64()), _NEGATIVE_ZERO_BITS)
        masks.append(pc.or_(beyond, negative_zero))  # bit masks: no float array made
    if not any(pc.any(mask).as_py() for mask in masks):
        return set()
    parents = pc.list_parent_indices(lists)
    rows: set[int] = set()
    for mask in masks:
        rows.update(pc.filter(parents, mask).to_pylist())
    return rows
