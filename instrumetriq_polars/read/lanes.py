"""The lanes: how a chunk's lists of objects (``spot_prices``, ~95% of a line's bytes) are read.

One interface (``Lane.take``), two implementations, chosen once per scan (``choose_lane``):

- ``ObjectLane`` takes nothing: every line is decoded whole by orjson, and its list is converted
  by ``frames.ListColumn``;
- ``native.NativeLane`` cuts each line at its last key and parses the list with a small C parser
  (``_spans.c``) straight into Arrow; the rest of each line (its *remainder*) is decoded by orjson.
  It takes a line only when it can prove the object lane would make the same of it; every other
  line is left to the object lane. Both give the same bytes.

Without the C extension (a machine with no compiler when the package was installed) the object
lane runs, after one warning line.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import Protocol

from ..frames import LIST_COLUMNS, item_type
from .options import ReadOptions

#: The list of objects the native lane reads: the one such column, an entry's last key.
(LANE_COLUMN,) = LIST_COLUMNS

_warned = threading.Event()


@dataclass
class LaneRead:
    """The lines a lane took, by index into the chunk's lines: each one's remainder (the line,
    ``[]`` in place of its list) and its items (the list's objects, as pyarrow StructArrays)."""

    column: str
    remainders: dict[int, bytes] = field(default_factory=dict)
    items: dict = field(default_factory=dict)  # index -> pa.StructArray (a slice of ``values``)
    values: object = None  # pa.StructArray: every line's items, in line order

    def drop(self, index: int) -> None:
        """Hand line ``index`` back to the object lane."""
        self.remainders.pop(index, None)
        self.items.pop(index, None)


class Lane(Protocol):
    name: str

    def take(self, lines: list[bytes]) -> LaneRead | None:
        """The lines of ``lines`` whose lists this lane read; None: it took none."""


class ObjectLane:
    """Takes no line: orjson decodes each whole, ``frames.ListColumn`` converts its list."""

    name = "object"

    def take(self, lines: list[bytes]) -> LaneRead | None:
        return None


def choose_lane(options: ReadOptions) -> Lane:
    """The lane ``options`` asks for: the native lane, or the object lane when ``options.lane`` is
    False or the extension is absent (said once per process on stderr)."""
    if not options.lane:
        return ObjectLane()
    try:
        from .native import NativeLane
    except ImportError as exc:
        if not _warned.is_set():
            _warned.set()
            sys.stderr.write(f"warning: the native spot_prices parser is not installed ({exc}); reading with the "
                             f"object lane (same output, slower): reinstall with a C compiler to build it\n")
        return ObjectLane()
    return NativeLane(LANE_COLUMN, item_type(LANE_COLUMN))
