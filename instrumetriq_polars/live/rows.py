"""Entries of the live feed read by the Tier 2/3 reader itself, so a live row is the Tier 2/3 row
of the same entry: the one place the live feed calls the export's decode, normalize, instants and
frames code (nothing of it is re-implemented here).

- ``normalized(texts, name)``: each entry line decoded and normalised as the export does (for the
  ``tier1`` projection), or None with the reason it is not a row;
- ``flat_frame(texts, name)``: the lines' rows in the declared flat layout (``fields="full"`` or a
  list of columns, ``Batch.to_polars``), with the index of the line each row came from.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from ..archive import HourFile
from ..decode import Chunk
from ..read.lanes import choose_lane
from ..read.options import DEFAULT_OPTIONS
from ..schema import FLAT_SCHEMA
from ..source import build_hour, read_hour
from .files import day_hour


def _chunk(texts: list[bytes], name: str) -> Chunk:
    """The texts as the one chunk of an hour file (line 1 = ``texts[0]``; newlines cut, as split)."""
    return Chunk(name, 1, [t[:-1] if t.endswith(b"\n") else t for t in texts])


def normalized(texts: list[bytes], name: str) -> list[tuple[dict | None, str | None]]:
    """One (entry, None) or (None, reason) per text (each one line ending in a newline)."""
    out: list[tuple[dict | None, str | None]] = [(None, "not read")] * len(texts)
    for _, rows in read_hour([_chunk(texts, name)]):
        for line, entry in zip(rows.lines, rows.entries):
            out[line - 1] = (entry, None)
        for bad in rows.account.bad_lines:
            if 1 <= bad.line <= len(texts):
                out[bad.line - 1] = (None, bad.reason)
    return out


def flat_frame(texts: list[bytes], name: str) -> tuple[pl.DataFrame, list[int]]:
    """The rows of ``texts`` in the flat layout, and for each row the index of its text."""
    from ..write.parquet import to_layout  # here: a tier1-only follower does not load the Parquet writer

    day, hour = day_hour(name)
    frames, report = [], None
    chunks = iter([_chunk(texts, name)])
    for frame, built in build_hour(HourFile(hour, name, 0), name, chunks, date.fromisoformat(day), choose_lane(DEFAULT_OPTIONS)):
        frames.append(frame)
        if built is not None:
            report = built.report
    bad = {b.line for b in report.bad_lines} if report is not None else set()
    kept = [i for i in range(len(texts)) if i + 1 not in bad]
    frame = pl.concat(frames) if frames else pl.DataFrame(schema=FLAT_SCHEMA)
    return to_layout(frame, "flat") if frames else frame, kept
