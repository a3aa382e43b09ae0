"""The native lane: each line's list of flat objects (``spot_prices``, ~95% of its bytes) parsed by
a small C parser (``_spans.c``, without the GIL) straight into Arrow buffers; the rest of the line
(its *remainder*, the list replaced by ``[]``) is decoded by orjson (decode.py).

The lane takes a line only when it can prove the object lane (orjson on the whole line +
``frames.ListColumn``) makes the same of it, and hands every other line back whole:

- the cut: the key is preceded by ``{`` or ``,`` (so its quote opens a key), followed by ``:`` and
  ``[``; after the span come only ``}`` and blanks. decode.py then checks that orjson reads the
  remainder as an object whose list is the ``[]`` put there, which proves the key was the root
  object's (and the last of its name, as orjson keeps). The span is parsed in place, in the line.
- the span: the parser's grammar (``_spans.c``): the item type's keys in their order, each once,
  compact or as ``json.dumps`` writes by default; instants in their canonical form (``Z`` or
  ``+00:00``, read as microseconds: the same as ``instants.to_instants``); numbers correctly
  rounded, none of 2**53 or more in magnitude, no -0.0. Anything else is the object lane's.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate

import pyarrow as pa

from .lines import TextLines
from ._spans import parse
from .lanes import LaneRead

#: What replaces the span in the remainder: an empty list, so normalize sees a list of objects.
PLACEHOLDER = b"[]"


class NativeLane:
    """Reads ``column``'s spans with the C parser into ``item_type`` (timestamps as instants)."""

    name = "native"

    def __init__(self, column: str, item_type: pa.StructType) -> None:
        kinds = []
        for item in item_type:
            if pa.types.is_timestamp(item.type) and item.type.unit == "us":
                kinds.append("t")
            elif pa.types.is_float64(item.type):
                kinds.append("f")
            else:
                raise ValueError(f"the native lane reads instants and floats, not {item.type} ({item.name})")
        self.column, self.item_type = column, item_type
        self._key = b'"' + column.encode() + b'"'
        self._keys = [item.name.encode() for item in item_type]
        self._kinds = "".join(kinds).encode()

    def take(self, lines: Sequence[bytes]) -> LaneRead | None:
        """Read the spans of ``lines``: in place in the chunk's text when they are its
        ``lines.TextLines`` (no line is copied out), otherwise line by line."""
        lane = LaneRead(self.column)
        if isinstance(lines, TextLines):
            text, bounds = lines.text, zip(lines.starts, lines.ends)
        else:
            text, bounds = None, ((0, len(line)) for line in lines)
        indices, buffers, starts, ends = [], [], [], []
        for index, (low, high) in enumerate(bounds):
            buffer = text if text is not None else lines[index]
            cut = _cut(buffer, self._key, low, high)
            if cut is not None:
                indices.append(index)
                buffers.append(buffer)
                starts.append(cut[0])
                ends.append(cut[1])
        if not indices:
            return lane
        taken, counts, columns = parse(buffers, starts, ends, self._keys, self._kinds)
        total = sum(len(c) for c in columns[:1]) // 8
        arrays = [pa.Array.from_buffers(item.type, total, [None, pa.py_buffer(data)])
                  for item, data in zip(self.item_type, columns)]
        values = lane.values = pa.StructArray.from_arrays(arrays, fields=list(self.item_type))
        offsets = list(accumulate(memoryview(counts).cast("q")))
        start = 0
        for position, index in enumerate(indices):
            if taken[position]:
                end = offsets[position]
                buffer, low, high = buffers[position], starts[position], ends[position]
                line_start, line_end = (lines.starts[index], lines.ends[index]) if text is not None else (0, len(buffer))
                lane.items[index] = values.slice(start, end - start)
                lane.remainders[index] = buffer[line_start:low] + PLACEHOLDER + buffer[high:line_end]
                start = end
        return lane


def _cut(line: bytes, key: bytes, low: int, high: int) -> tuple[int, int] | None:
    """(start, end) of the span of the line ``line[low:high]`` (offsets in ``line``), or None when
    it is not cut at ``key`` as the lane needs. Only the bytes around the cut are looked at."""
    at = line.find(key, low, high)
    if at < low + 1 or line[max(low, at - 64):at].rstrip()[-1:] not in (b"{", b","):
        return None
    after = at + len(key)
    start = line.find(b"[", after, min(high, after + 64))
    if start < 0 or line[after:start].strip() != b":":
        return None
    tail = line[max(low, high - 64):high].rstrip()
    if tail[-1:] != b"}" or tail[:-1].rstrip()[-1:] != b"]":
        return None
    end = high - min(64, high - low) + len(tail[:-1].rstrip())
    if end <= start:
        return None
    return start, end
