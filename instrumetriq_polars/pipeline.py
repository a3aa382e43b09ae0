"""The Polars side: hour frames -> lazy plan (flatten, select) -> zstd Parquet sink.

Hours enter the plan one at a time through ``register_io_source``, so memory is bounded by an hour
(plus the sink's row groups), not a day.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import IO

import polars as pl
import pyarrow as pa
from polars.io.plugins import register_io_source

from .schema import EXTRA_COLUMN, FLAT_COLUMNS, NESTED_SCHEMA, schema_for

#: Rows per Parquet row group. Small enough that the sink holds about an hour of data, large
#: enough for good zstd ratios (benchmarks/bench_export.py measures both).
ROW_GROUP_SIZE = 128

ENTRY_COLUMNS = tuple(name for name in NESTED_SCHEMA if name != EXTRA_COLUMN)


def _contains_map(dtype: pl.DataType) -> bool:
    if isinstance(dtype, pl.Map):
        return True
    if isinstance(dtype, pl.Struct):
        return any(_contains_map(f.dtype) for f in dtype.fields)
    if isinstance(dtype, pl.List):
        return _contains_map(dtype.inner)
    return False


@lru_cache(maxsize=None)
def _arrow_type(column: str) -> pa.DataType:
    return pl.Series(column, [], NESTED_SCHEMA[column]).to_arrow().type


def _build_column(column: str, values: list) -> pl.Series:
    """Strictly typed Series of one top-level column. Raises if a value does not fit its dtype.

    Columns holding count maps go through pyarrow: Polars builds Map values from dicts ~30x
    slower (measured: 240 ms vs 8 ms for an hour of sentiment windows). Everything else goes
    straight to Polars, which is faster than pyarrow for ``spot_prices``.
    """
    dtype = NESTED_SCHEMA[column]
    if _contains_map(dtype):
        series = pl.from_arrow(pa.array(values, type=_arrow_type(column)))
        return series.alias(column).cast(dtype)
    return pl.Series(column, values, dtype=dtype, strict=True)


def build_hour_frame(entries: list[dict], extras: list[str | None], on_untyped: Callable[[int, str], None]) -> pl.DataFrame:
    """One DataFrame in the nested layout from normalised entries.

    A value the strict builder refuses (e.g. text inside ``spot_prices``) is handed to
    ``on_untyped(row, column)``, which moves it to ``_extra``; the column is then rebuilt.
    """
    columns = []
    for column in ENTRY_COLUMNS:
        values = [entry.get(column) for entry in entries]
        try:
            columns.append(_build_column(column, values))
        except Exception:  # noqa: BLE001 - polars/pyarrow raise several types; find the culprits
            for row, value in enumerate(values):
                if value is not None and not _fits(column, value):
                    on_untyped(row, column)
                    values[row] = None
            columns.append(_build_column(column, values))
    columns.append(pl.Series(EXTRA_COLUMN, extras, dtype=pl.String))
    return pl.DataFrame(columns)


def _fits(column: str, value) -> bool:
    try:
        _build_column(column, [value])
        return True
    except Exception:  # noqa: BLE001
        return False


@contextmanager
def gc_paused():
    """Pause the cyclic GC while an hour of fresh dicts is alive: they hold no cycles, and each
    collection would rescan all of them (measured ~2x on decode alone)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def lazy_day(hour_frames: Callable[[], Iterator[pl.DataFrame]], layout: str) -> pl.LazyFrame:
    """A LazyFrame over the hour frames, shaped into ``layout`` inside the plan."""

    def source(with_columns, predicate, n_rows, batch_size):
        produced = 0
        for frame in hour_frames():
            if with_columns is not None:
                frame = frame.select(with_columns)
            if predicate is not None:
                frame = frame.filter(predicate)
            if n_rows is not None:
                frame = frame.head(n_rows - produced)
                produced += frame.height
            yield frame
            if n_rows is not None and produced >= n_rows:
                return

    plan = register_io_source(source, schema=NESTED_SCHEMA, explain_name="instrumetriq_archive_day")
    return plan.select(layout_exprs(layout))


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
