"""A chunk's text cut into lines without copying it (``TextLines``): what ``decode.Chunk`` holds and
what the native lane reads its spans from, in place."""

from __future__ import annotations

from collections.abc import Sequence


class TextLines(Sequence):
    """The lines of a chunk's text, cut at its newlines as ``text.split(b"\\n")`` cuts them, without
    copying the text: a line is sliced out only when asked for (``lines[i]``). The native lane reads
    its spans in place, in the text (``starts``/``ends``: each line's offsets in it), so the ~95% of
    the text that is ``spot_prices`` is never copied into line objects (benchmarks/RESULTS.md).
    ``drop_last``: leave out what follows the last newline (the text of a damaged hour)."""

    __slots__ = ("text", "starts", "ends")

    def __init__(self, text: bytes, drop_last: bool = False) -> None:
        starts, ends, find, pos = [], [], text.find, 0
        while (cut := find(b"\n", pos)) >= 0:
            starts.append(pos)
            ends.append(cut)
            pos = cut + 1
        if not drop_last:
            starts.append(pos)
            ends.append(len(text))
        self.text, self.starts, self.ends = text, starts, ends

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self.text[self.starts[index]:self.ends[index]]

    def __eq__(self, other) -> bool:  # equal to any sequence of the same lines (a list of them)
        return isinstance(other, Sequence) and not isinstance(other, (str, bytes)) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TextLines({len(self)} lines, {len(self.text)} bytes)"
