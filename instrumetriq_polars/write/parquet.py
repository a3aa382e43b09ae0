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

import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import IO, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from polars.io.plugins import register_io_source

from ..frames import SOURCE_SCHEMA
from ..schema import DROPPED_COLUMNS, FLAT_COLUMNS, NESTED_SCHEMA, schema_for

Frame = TypeVar("Frame", pl.LazyFrame, pl.DataFrame)

#: Rows per Parquet row group: ~10 hours of a full day (100 entries an hour). Measured on the
#: real-shaped full day against 128-4096 rows and one group (README "The dataset"): from 128 to
#: 1024 rows the file shrinks 1.5 MB and its footer from ~750 to ~190 KB, and queries run up to
#: 4x faster; beyond, little changes but the rows held before a group is written.
ROW_GROUP_SIZE = 1024
#: Bytes of encoded Parquet gathered before they are handed to the Python file object: each hand-over
#: takes the GIL, which the building thread holds most of the time.
OUT_BUFFER = 4 << 20
#: zstd level: Polars' default (the level the exports were measured with before this writer).
ZSTD_LEVEL = 3


def lazy_day(hour_frames: Callable[[], Iterator[pl.DataFrame]], layout: str) -> pl.LazyFrame:
    """A LazyFrame over the hour frames, shaped into ``layout`` inside the plan. ``sink`` keeps its
    source at most ``AHEAD_ROWS`` rows ahead of the writer (``_Gate``)."""
    gate = _Gate()
    plan = to_layout(lazy_entries(hour_frames, gate), layout)
    _GATES[id(plan)] = gate
    weakref.finalize(plan, _GATES.pop, id(plan), None)
    return plan


def lazy_entries(hour_frames: Callable[[], Iterator[pl.DataFrame]], gate: _Gate | None = None) -> pl.LazyFrame:
    """The day's rows in the nested layout: the hour frames, their dropped blocks dropped.

    ``hour_frames`` is called once each time the plan runs (an ``ArchiveDayScan.frames`` refuses
    a second call)."""
    plan = register_io_source(frame_source(hour_frames, gate), schema=SOURCE_SCHEMA, explain_name="instrumetriq_archive_day")
    return plan.drop(DROPPED_COLUMNS)


def frame_source(hour_frames: Callable[[], Iterator[pl.DataFrame]], gate: _Gate | None = None):
    """The IO source function ``register_io_source`` calls with what the plan pushes down. The
    predicate is applied before the projection: nothing in Polars' contract says a predicate names
    only projected columns. With ``gate``, the next frame is built only when the writer has
    taken all but ``AHEAD_ROWS`` of the rows handed over."""

    def source(with_columns, predicate, n_rows, batch_size):
        produced = 0
        frames = hour_frames()
        while True:
            if gate is not None:
                gate.wait_for_room()
            frame = next(frames, None)
            if frame is None:
                return
            if predicate is not None:
                frame = frame.filter(predicate)
            if with_columns is not None:
                frame = frame.select(with_columns)
            if n_rows is not None:
                frame = frame.head(n_rows - produced)
                produced += frame.height
            if gate is not None:
                gate.handed(frame.height)
            yield frame
            if n_rows is not None and produced >= n_rows:
                return

    return source


#: Rows the plan's source may have handed over that the writer has not taken yet, before it builds
#: the next frame: ~3 hours, so that Polars does not pile up built hours (a bound of ~2 hours
#: slowed the export: Polars holds one frame back before a batch comes out).
AHEAD_ROWS = 300
#: The longest the source waits for the writer: a plan whose rows do not all reach ``sink`` (a
#: filter, another consumer) would wait in vain; after one such wait the gate stays open.
GATE_WAIT = 0.25


class _Gate:
    """Rows handed to Polars by the plan's source and not yet taken by ``sink``, for one plan."""

    def __init__(self, ahead: int = AHEAD_ROWS, wait: float = GATE_WAIT) -> None:
        self._changed = threading.Condition()
        self._ahead, self._wait = ahead, wait
        self._out = 0
        self.open = False  # set for good after a wait in vain
        self.most_out = 0  # the most rows out at once (tests)

    def wait_for_room(self) -> None:
        with self._changed:
            if not self.open and not self._changed.wait_for(lambda: self._out < self._ahead, timeout=self._wait):
                self.open = True

    def handed(self, rows: int) -> None:
        with self._changed:
            self._out += rows
            self.most_out = max(self.most_out, self._out)

    def taken(self, rows: int) -> None:
        with self._changed:
            self._out = max(0, self._out - rows)
            self._changed.notify_all()


#: The gate of each live plan ``lazy_day`` made, by ``id``, for ``sink`` (removed with the plan; a
#: LazyFrame cannot be a dictionary key).
_GATES: dict[int, _Gate] = {}


def to_layout(frame: Frame, layout: str) -> Frame:
    """``frame`` (a LazyFrame or DataFrame in the nested layout) as ``layout``'s columns, in file
    order. The flat layout's columns are the nested blocks' leaves, ``block__field``: each level
    of blocks is unnested in one step (``unnest(separator="__")``), then the columns are put in
    order (one ``struct.field`` expression per column, 279 of them, cost Polars far more on every
    batch)."""
    schema_for(layout)  # validates the name
    if layout == "nested":
        return frame.select(list(NESTED_SCHEMA))
    for blocks in _BLOCK_LEVELS:
        frame = frame.unnest(blocks, separator="__")
    return frame.select(list(FLAT_COLUMNS))


def _block_levels(schema: dict[str, pl.DataType]) -> list[list[str]]:
    """The struct columns of ``schema``, level by level, as unnesting names them (``a``, then
    ``a__b``, ...)."""
    levels = []
    while structs := [name for name, dtype in schema.items() if isinstance(dtype, pl.Struct)]:
        levels.append(structs)
        schema = {(f"{name}__{field.name}" if name in structs else name): field.dtype
                  for name, dtype in schema.items()
                  for field in (dtype.fields if name in structs else [pl.Field(name, dtype)])}
    return levels


_BLOCK_LEVELS = _block_levels(dict(NESTED_SCHEMA))


def sink(plan: pl.LazyFrame, out: IO[bytes]) -> None:
    """Run ``plan`` and write its rows to ``out`` as zstd Parquet, in row groups of exactly
    ``ROW_GROUP_SIZE`` rows (the last one smaller), whatever the sizes of the batches Polars
    yields. A full row group is encoded in a writer thread while the next one is gathered (the
    encode lets go of the GIL): held at most, the group being encoded and the one being
    gathered."""
    schema = pl.DataFrame(schema=plan.collect_schema()).to_arrow().schema
    handover = _Handover(out)
    stream = pa.BufferedOutputStream(pa.PythonFile(handover, mode="w"), OUT_BUFFER)
    try:
        with _writer(stream, schema) as writer, _Encoder(writer) as encoder:
            group = _Group(schema)
            gate = _GATES.get(id(plan))
            for batch in plan.collect_batches():
                if gate is not None:
                    gate.taken(batch.height)
                while batch.height:
                    take = min(batch.height, ROW_GROUP_SIZE - group.rows)
                    group.add(batch.head(take) if take < batch.height else batch)
                    batch = batch.slice(take)
                    if group.rows == ROW_GROUP_SIZE:
                        encoder.encode(group)
                        group = _Group(schema)
            if group.rows:
                encoder.encode(group)
        stream.close()  # the last bytes reach ``out``; closing the hand-over leaves ``out`` open
    except BaseException:
        handover.discard()
        raise


class _Handover:
    """What pyarrow's buffered stream writes to: ``out``, which it must never close (its owner
    does), and which takes nothing more once the write failed. pyarrow's writer and stream
    close themselves when they are destroyed, which after a failure happens whenever the
    exception's frames go (a garbage collection, the interpreter's exit): their last writes then
    go nowhere, where they once crashed the process (a stream detached from its file, closed by
    the writer's destructor) or printed Arrow's "Error ignored" lines."""

    closed = False

    def __init__(self, out: IO[bytes]) -> None:
        self._out: IO[bytes] | None = out

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self._out is None:
            return len(data)
        try:
            return self._out.write(data)
        except BaseException:
            self._out = None
            raise

    def flush(self) -> None:
        pass  # ``out``'s owner flushes it

    def discard(self) -> None:
        self._out = None

    def close(self) -> None:
        pass


class _Encoder:
    """Encodes row groups one at a time in a thread of its own, in order. ``encode`` waits for the
    group before to be written (and raises its error); leaving the ``with`` block waits for the
    last one, on success or failure, so that the writer is never closed under an encode. (Encoded
    in the sink's own thread, a group held the source at its bound, ``AHEAD_ROWS``.)"""

    def __init__(self, writer: pq.ParquetWriter) -> None:
        self._writer = writer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-encode")
        self._pending: Future | None = None

    def __enter__(self) -> _Encoder:
        return self

    def encode(self, group: _Group) -> None:
        self._wait()
        self._pending = self._pool.submit(group.write, self._writer)

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __exit__(self, kind, error, trace) -> None:
        try:
            if kind is None:
                self._wait()
            elif self._pending is not None:
                wait([self._pending])  # its own error, if any, is not the one reported
        finally:
            self._pool.shutdown(wait=True)


class _Group:
    """The rows of one row group, gathered batch by batch. A list of flat objects
    (``spot_prices``: ~92% of the bytes) is copied into one growing buffer per field as each batch
    comes (``_Packed``), so the batch is freed at once and the group is written from those buffers
    without another copy (concatenating the batches at the end held the group twice). The other
    columns are kept as the batches' frames and concatenated when the group is written.

    Each column is written as one chunk: pyarrow cuts pages per chunk, so the same rows give
    the same bytes only in one chunk (measured: the same table in 77-row chunks gives another
    file)."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.packed = {field.name: _Packed(field.type) for field in schema if _Packed.fits(field.type)}
        self.frames: list[pl.DataFrame] = []
        self.rows = 0

    def add(self, batch: pl.DataFrame) -> None:
        for name, packed in self.packed.items():
            packed.add(batch.get_column(name).to_arrow())
        # a frame of the batch's other columns, built directly (``drop`` runs a lazy query)
        self.frames.append(pl.DataFrame([batch.get_column(name) for name in batch.columns if name not in self.packed])
                           if self.packed else batch)
        self.rows += batch.height

    def write(self, writer: pq.ParquetWriter) -> None:
        rest = pl.concat(self.frames, rechunk=True).to_arrow() if self.frames else None
        self.frames.clear()
        columns = [self.packed[field.name].array() if field.name in self.packed else rest.column(field.name).combine_chunks()
                   for field in self.schema]
        table = pa.Table.from_arrays(columns, schema=self.schema)
        del columns, rest
        self.packed.clear()
        writer.write_table(table, row_group_size=self.rows)


class _Packed:
    """One column of lists of flat objects of fixed-width fields (``spot_prices``: an instant and
    four floats), gathered into one ``bytearray`` per field, one for the list offsets, and the
    lists' validity. Items with NULLs inside (not the lane's, rare) switch the column to keeping
    the batches' arrays, concatenated at the end."""

    def __init__(self, dtype: pa.DataType) -> None:
        self.dtype = dtype
        self.widths = [field.type.bit_width // 8 for field in dtype.value_type]
        self.fields: list[bytearray] | None = [bytearray() for _ in self.widths]
        self.offsets = bytearray(bytes(8))  # int64, the first 0
        self.items = 0
        self.valid: list[pa.Array] = []  # per batch: its lists' validity
        self.nulls = False
        self.arrays: list[pa.Array] = []  # once switched: the column as arrays

    @staticmethod
    def fits(dtype: pa.DataType) -> bool:
        """A large list of structs whose fields all have a fixed width of whole bytes."""
        return (pa.types.is_large_list(dtype) and pa.types.is_struct(dtype.value_type)
                and all(_fixed_bytes(field.type) for field in dtype.value_type))

    def add(self, array: pa.Array) -> None:
        if isinstance(array, pa.ChunkedArray):
            for chunk in array.chunks:
                self.add(chunk)
            return
        if self.fields is not None:
            values = array.flatten()  # the items of these lists (the array's slice of them)
            leaves = values.flatten()
            if values.null_count or any(leaf.null_count for leaf in leaves):
                self._switch()
            else:
                self._append(array, leaves)
                return
        self.arrays.append(array)

    def _append(self, array: pa.Array, leaves: list[pa.Array]) -> None:
        for data, leaf, width in zip(self.fields, leaves, self.widths):
            with memoryview(leaf.buffers()[1]) as view:
                data += view[leaf.offset * width:(leaf.offset + len(leaf)) * width]
        offsets = pa.Array.from_buffers(pa.int64(), len(array) + 1, [None, array.buffers()[1]], offset=array.offset)
        rebased = pc.add(pc.subtract(offsets.slice(1), offsets[0]), self.items)
        with memoryview(rebased.buffers()[1]) as view:
            self.offsets += view[rebased.offset * 8:(rebased.offset + len(rebased)) * 8]
        self.items += len(leaves[0]) if leaves else 0
        self.nulls = self.nulls or bool(array.null_count)
        self.valid.append(array.is_valid())

    def _packed(self) -> pa.Array:
        rows = len(self.offsets) // 8 - 1
        leaves = [pa.Array.from_buffers(field.type, self.items, [None, pa.py_buffer(data)])
                  for field, data in zip(self.dtype.value_type, self.fields)]
        items = pa.StructArray.from_arrays(leaves, fields=list(self.dtype.value_type))
        offsets = pa.Array.from_buffers(pa.int64(), rows + 1, [None, pa.py_buffer(self.offsets)])
        mask = pc.invert(pa.concat_arrays(self.valid)) if self.nulls else None
        return pa.LargeListArray.from_arrays(offsets, items, mask=mask).cast(self.dtype)

    def _switch(self) -> None:
        if len(self.offsets) > 8:
            self.arrays.append(self._packed())
        self.fields = None

    def array(self) -> pa.Array:
        """The column of the group, in one chunk."""
        if self.fields is not None:
            return self._packed()
        return pa.concat_arrays(self.arrays) if self.arrays else pa.array([], type=self.dtype)


def _fixed_bytes(dtype: pa.DataType) -> bool:
    try:
        width = dtype.bit_width
    except ValueError:
        return False
    return width % 8 == 0 and not pa.types.is_boolean(dtype) and not pa.types.is_dictionary(dtype)


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
