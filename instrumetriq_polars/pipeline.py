"""The Polars side: the day's hour frames -> lazy plan (drop, flatten, select) -> zstd Parquet sink.

The frames enter the plan through ``register_io_source``, one hour at a time as the sink pulls
them (measured: a 24-hour day's peak RSS is 1.1-1.2x a 6-hour day's; README "Benchmarks").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO

import polars as pl
from polars.io.plugins import register_io_source

from .frames import SOURCE_SCHEMA
from .schema import DROPPED_COLUMNS, FLAT_COLUMNS, NESTED_SCHEMA, schema_for

#: Rows per Parquet row group. Small enough that the sink holds about an hour of data, large
#: enough for good zstd ratios (benchmarks/bench_export.py measures both).
ROW_GROUP_SIZE = 128


def lazy_day(hour_frames: Callable[[], Iterator[pl.DataFrame]], layout: str) -> pl.LazyFrame:
    """A LazyFrame over the hour frames, shaped into ``layout`` inside the plan."""
    return lazy_entries(hour_frames).select(layout_exprs(layout))


def lazy_entries(hour_frames: Callable[[], Iterator[pl.DataFrame]]) -> pl.LazyFrame:
    """The day's rows in the nested layout: the hour frames, their dropped blocks dropped.

    ``hour_frames`` is called once each time the plan runs (an ``ArchiveDayScan.frames`` refuses
    a second call)."""
    plan = register_io_source(frame_source(hour_frames), schema=SOURCE_SCHEMA, explain_name="instrumetriq_archive_day")
    return plan.drop(DROPPED_COLUMNS)


def frame_source(hour_frames: Callable[[], Iterator[pl.DataFrame]]):
    """The IO source function ``register_io_source`` calls with what the plan pushes down. The
    predicate is applied before the projection: nothing in Polars' contract says a predicate names
    only projected columns."""

    def source(with_columns, predicate, n_rows, batch_size):
        produced = 0
        for frame in hour_frames():
            if predicate is not None:
                frame = frame.filter(predicate)
            if with_columns is not None:
                frame = frame.select(with_columns)
            if n_rows is not None:
                frame = frame.head(n_rows - produced)
                produced += frame.height
            yield frame
            if n_rows is not None and produced >= n_rows:
                return

    return source


def layout_exprs(layout: str) -> list[pl.Expr]:
    """Expressions that turn nested-layout columns into ``layout``'s columns, in file order."""
    schema_for(layout)  # validates the name
    if layout == "nested":
        return [pl.col(name) for name in NESTED_SCHEMA]
    exprs = []
    for name, (_, path) in FLAT_COLUMNS.items():
        expr = pl.col(path[0])
        for part in path[1:]:
            expr = expr.struct.field(part)
        exprs.append(expr.alias(name))
    return exprs


def sink(plan: pl.LazyFrame, out: IO[bytes]) -> None:
    plan.sink_parquet(out, compression="zstd", row_group_size=ROW_GROUP_SIZE, statistics=True)
