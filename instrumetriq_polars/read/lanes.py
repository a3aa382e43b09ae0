"""The lanes: how a chunk's lists of objects (``spot_prices``, ~95% of a line's bytes) are read.

One interface (``Lane.take``), two implementations, chosen once per scan (``choose_lane``):

- ``ObjectLane`` takes nothing: every line is decoded whole by orjson, and its list is converted
  by ``frames.ListColumn``;
- ``ColumnarLane`` cuts each line at its last key and reads the cut lists straight into Arrow
  (columnar.py); the rest of each line (its *remainder*) is decoded by orjson. It takes a line only
  when it can prove the object lane would make the same of it; every other line is left to the
  object lane. Both give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..frames import LIST_COLUMNS, staged_item_type
from .options import ReadOptions

#: The list of objects the columnar lane reads: the one such column, an entry's last key.
(LANE_COLUMN,) = LIST_COLUMNS


@dataclass
class LaneRead:
    """The lines a lane took, by index into the chunk's lines: each one's remainder (the line,
    ``[]`` in place of its list) and its items (the list's objects, in the staged item type)."""

    column: str
    remainders: dict[int, bytes] = field(default_factory=dict)
    items: dict = field(default_factory=dict)  # index -> pa.StructArray

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


class ColumnarLane:
    """Reads ``LANE_COLUMN``'s spans with pyarrow (columnar.py), in batches of ``batch_bytes``."""

    name = "columnar"

    def __init__(self, batch_bytes: int) -> None:
        from .. import columnar  # imported only when the lane runs (pyarrow.compute, pyarrow.csv)

        self._read = columnar.read_lane
        self._batch_bytes = batch_bytes
        self._item_type = staged_item_type(LANE_COLUMN)

    def take(self, lines: list[bytes]) -> LaneRead | None:
        return self._read(lines, LANE_COLUMN, self._item_type, self._batch_bytes)


def choose_lane(options: ReadOptions) -> Lane:
    """The lane ``options`` asks for."""
    return ColumnarLane(options.batch_bytes) if options.lane else ObjectLane()
