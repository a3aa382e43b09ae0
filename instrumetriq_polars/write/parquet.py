"""The Polars side: the day's hour frames -> lazy plan (drop, flatten, select) -> Parquet writer.

The frames enter the plan through ``register_io_source``, one hour at a time as the plan pulls
them (measured: a 24-hour day's peak RSS is 1.1-1.2x a 6-hour day's; README "Benchmarks"). The
plan's batches are written by pyarrow's ``ParquetWriter``, in row groups of ``ROW_GROUP_SIZE``
rows: Polars' own sink cannot choose a column's encoding, and wrote the timestamps as PLAIN int64.
Measured on the ~1.8M ``spot_prices`` timestamps of the real-shaped day (one value's microseconds
repeated over an entry's samples, no instant shared between entries): PLAIN + zstd 6.1 MB (the
text was 1.7 MB), DELTA_BINARY_PACKED 0.14 MB, BYTE_STREAM_SPLIT 0.56 MB; on the real sample (147
entries, whose samples share their instants across symbols): PLAIN 25 KB, DELTA 261 KB,
BYTE_STREAM_SPLIT 26 KB. BYTE_STREAM_SPLIT is small on both (README "The dataset").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from polars.io.plugins import register_io_source

from ..frames import SOURCE_SCHEMA
from ..schema import DROPPED_COLUMNS, FLAT_COLUMNS, NESTED_SCHEMA, schema_for

#: Rows per Parquet row group: ~10 hours of a full day (100 entries an hour). Measured on the
#: real-shaped full day against 128-4096 rows and one group (README "The dataset"): from 128 to
#: 1024 rows the file shrinks 1.5 MB and its footer from ~750 to ~190 KB, and queries run up to
#: 4x faster; beyond, little changes but the rows held before a group is written.
ROW_GROUP_SIZE = 1024
#: zstd level: Polars' default (the level the exports were measured with before this writer).
ZSTD_LEVEL = 3


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
    """Run ``plan`` and write its rows to ``out`` as zstd Parquet, in row groups of exactly
    ``ROW_GROUP_SIZE`` rows (the last one smaller), whatever the sizes of the batches Polars
    yields. Held at most: one row group of rows, and its copy while it is written."""
    schema = pl.DataFrame(schema=plan.collect_schema()).to_arrow().schema
    with _writer(out, schema) as writer:
        held: list[pl.DataFrame] = []
        rows = 0
        for batch in plan.collect_batches():
            held.append(batch)
            rows += batch.height
            while rows >= ROW_GROUP_SIZE:
                held = _write_group(writer, held, ROW_GROUP_SIZE, schema)
                rows -= ROW_GROUP_SIZE
        if rows:
            _write_group(writer, held, rows, schema)


def _write_group(writer: pq.ParquetWriter, held: list[pl.DataFrame], rows: int, schema: pa.Schema) -> list[pl.DataFrame]:
    """Write the first ``rows`` rows of ``held`` as one row group; return the rest. Both are
    copied into one chunk per column, so that the batches' buffers are freed, and so that the
    pages, which pyarrow cuts per chunk, depend on the rows only: the same rows give the same
    bytes (measured: the same table in 77-row chunks gives another file than in one chunk)."""
    frames = pl.concat(held, rechunk=False)
    held.clear()
    group, rest = frames.head(rows).rechunk(), frames.slice(rows).rechunk()
    del frames
    writer.write_table(group.to_arrow().cast(schema), row_group_size=rows)
    return [rest]


def _writer(out: IO[bytes], schema: pa.Schema) -> pq.ParquetWriter:
    """pyarrow's writer with the encodings Polars' sink used, except for the timestamps:
    dictionary encoding where it may pay (text, integers, booleans), PLAIN for floats (measured:
    BYTE_STREAM_SPLIT doubled them), and BYTE_STREAM_SPLIT for every timestamp column (pyarrow,
    pandas, Polars, DuckDB and Spark read it: tests/test_readers.py)."""
    leaves = _leaf_columns(schema)
    instants = [path for path, kind in leaves.items() if pa.types.is_timestamp(kind)]
    dictionary = [path for path, kind in leaves.items() if not (pa.types.is_timestamp(kind) or pa.types.is_floating(kind))]
    return pq.ParquetWriter(out, schema, compression="zstd", compression_level=ZSTD_LEVEL, use_dictionary=dictionary,
                            column_encoding=dict.fromkeys(instants, "BYTE_STREAM_SPLIT"), write_statistics=True)


_LISTS = (pa.ListType, pa.LargeListType, pa.FixedSizeListType, pa.ListViewType, pa.LargeListViewType)


def _leaf_columns(schema: pa.Schema) -> dict[str, pa.DataType]:
    """Parquet column path (``spot_prices.list.element.ts``) -> Arrow type of every leaf of ``schema``,
    named as pyarrow's writer names them (a list's items ``list.element``, a map's
    ``key_value.key`` and ``key_value.value``; tests/test_columnar.py checks the names against a
    file pyarrow wrote). Walked, not read back from an empty file: that cost ~25 ms a process."""
    leaves: dict[str, pa.DataType] = {}
    for field in schema:
        _add_leaves(leaves, field.name, field.type)
    return leaves


def _add_leaves(leaves: dict[str, pa.DataType], path: str, dtype: pa.DataType) -> None:
    if pa.types.is_struct(dtype):
        for child in dtype:
            _add_leaves(leaves, f"{path}.{child.name}", child.type)
    elif pa.types.is_map(dtype):
        _add_leaves(leaves, f"{path}.key_value.key", dtype.key_type)
        _add_leaves(leaves, f"{path}.key_value.value", dtype.item_type)
    elif isinstance(dtype, _LISTS):
        _add_leaves(leaves, f"{path}.list.element", dtype.value_type)
    else:
        leaves[path] = dtype
