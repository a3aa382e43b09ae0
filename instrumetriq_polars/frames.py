"""Arrow building: normalised entries of one hour -> one strictly typed frame (nested layout),
its rows led by their lineage (the archive day and hour).

pyarrow, not Polars, turns the dicts into columns (Polars builds ``Map`` values from dicts ~30x
slower); Polars takes the Arrow data from there. ``spot_prices`` is converted entry by entry
(``ListColumn``), everything else in one ``RecordBatch`` per hour. Timestamps are converted as
text (pyarrow reads no instant from a Python string), then cast column by column to instants
(``instants.to_instants``: a whole column in one call).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import lru_cache
from itertools import accumulate

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from .decode import ORJSON_ROUNDED
from .instants import NotInstants, to_instants
from .schema import DROPPED_COLUMNS, EXTRA_COLUMN, LINEAGE_COLUMNS, NESTED_SCHEMA

ENTRY_COLUMNS = tuple(name for name in NESTED_SCHEMA if name != EXTRA_COLUMN and name not in LINEAGE_COLUMNS)

#: What the hour frames hold: the nested layout, plus the blocks the dataset drops (``norm``,
#: ``labels``: always empty in v7, and any content they have is in ``_extra``) as NULL columns,
#: which the lazy plan drops.
SOURCE_SCHEMA: dict[str, pl.DataType] = {**NESTED_SCHEMA, **{name: pl.Null() for name in DROPPED_COLUMNS}}


def _is_list_of_structs(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct)


#: Columns built through one pyarrow RecordBatch (scalars and structs, count maps included).
_RECORD_COLUMNS = tuple(c for c in ENTRY_COLUMNS if not _is_list_of_structs(NESTED_SCHEMA[c]))
#: Lists of objects (``spot_prices``): built entry by entry (``ListColumn``).
LIST_COLUMNS = tuple(c for c in ENTRY_COLUMNS if _is_list_of_structs(NESTED_SCHEMA[c]))


@lru_cache(maxsize=None)
def _arrow_schema(columns: tuple[str, ...]) -> pa.Schema:
    return pa.schema([pa.field(c, pl.Series(c, [], NESTED_SCHEMA[c]).to_arrow().type) for c in columns])


def _staged(dtype: pa.DataType) -> pa.DataType:
    """``dtype`` with every timestamp as text: the type the entries' dicts are converted to."""
    if pa.types.is_timestamp(dtype):
        return pa.large_string()
    if pa.types.is_struct(dtype):
        return pa.struct([field.with_type(_staged(field.type)) for field in dtype])
    return dtype  # no timestamp below: lists of objects are ListColumn's


@lru_cache(maxsize=None)
def _staged_schema(columns: tuple[str, ...]) -> pa.Schema:
    return pa.schema([field.with_type(_staged(field.type)) for field in _arrow_schema(columns)])


def _typed(array: pa.Array, dtype: pa.DataType) -> pa.Array:
    """A staged array (timestamps as text) as ``dtype``; NotInstants when a text is no instant.
    ``flatten`` gives a struct's children with its NULLs (a NULL struct's own child slots hold
    placeholder text, which is no instant)."""
    if array.type == dtype:
        return array
    if pa.types.is_timestamp(dtype):
        return to_instants(array)
    children = [_typed(child, field.type) for child, field in zip(array.flatten(), dtype)]
    return pa.StructArray.from_arrays(children, fields=list(dtype), mask=array.is_null())


def _staged_batch(entries: list[dict], columns: tuple[str, ...]) -> pa.RecordBatch:
    """Scalar and struct columns in one pass. pyarrow, not Polars: Polars builds ``Map`` values
    from dicts ~30x slower (measured: ~240 ms vs ~8 ms for an hour of sentiment windows)."""
    return pa.RecordBatch.from_pylist(entries, schema=_staged_schema(columns))


def _record_columns(entries: list[dict], columns: tuple[str, ...]) -> pl.DataFrame:
    staged, schema = _staged_batch(entries, columns), _arrow_schema(columns)
    typed = [_typed(array, field.type) for array, field in zip(staged.columns, schema)]
    return pl.from_arrow(pa.RecordBatch.from_arrays(typed, schema=schema))


@lru_cache(maxsize=None)
def _item_type(column: str) -> pa.DataType:
    return _arrow_schema((column,)).field(column).type.value_type


class ListColumn:
    """A List(Struct) column (``spot_prices``: ~750 samples an entry) built entry by entry.

    Each entry's samples are converted by pyarrow as soon as the entry is decoded, while its
    dicts are still in the CPU cache, and can be freed straight away (measured: the hour build
    ~10% faster than converting an hour's ~75K sample dicts at once). Their timestamps are
    converted as text, and cast to instants for the whole hour at once (``rows_to_recheck``)."""

    def __init__(self, column: str) -> None:
        self.column = column
        self._item_type = _item_type(column)
        self.staged_type = staged_item_type(column)
        self._float_fields = [i for i, field in enumerate(self._item_type) if pa.types.is_floating(field.type)]
        self._parts: list[pa.StructArray] = []
        self._bases: list[pa.StructArray | None] = []  # per part: the lane's array it is a slice of
        self._lengths: list[int | None] = []  # per entry; None: NULL
        self._concatenated: pa.StructArray | None = None  # staged (timestamps as text)
        self._typed: pa.StructArray | None = None  # the same, timestamps cast
        self._mixed = False  # some parts are typed (a lane's): each staged part is checked on its own

    def add(self, value: list | None) -> bool:
        """Append one entry's value; False (and a NULL) when it does not fit the declared type."""
        items = None if value is None else self._convert(value)
        self._lengths.append(None if items is None else len(items))
        if items is not None:
            self._parts.append(items)
            self._bases.append(None)
        return value is None or items is not None

    def add_items(self, items: pa.StructArray, base: pa.StructArray | None = None) -> None:
        """Append one entry's items as a lane read them: in ``staged_type``, or typed (timestamps
        already instants, no float of ``ORJSON_ROUNDED`` or more: nothing to check again).
        ``base``: the array ``items`` is a slice of (the lane's, for the whole chunk): consecutive
        slices of it are joined without a copy (``series``)."""
        self._lengths.append(len(items))
        self._parts.append(items)
        self._bases.append(base)
        if items.type == self._item_type:
            self._mixed = True

    def _convert(self, value: list, cast: bool = False) -> pa.StructArray | None:
        """The items of one entry (staged), or None when they do not fit the declared type;
        with ``cast``, also when a timestamp among them is no instant."""
        try:
            items = pa.array(value, type=self.staged_type)  # refuses an int beyond 2**53 in a float field
            _refuse_booleans_in_float_fields(value, items, self._float_fields)
            if cast:
                self._cast(items)
        except Exception:  # noqa: BLE001 - pyarrow raises several types; the caller keeps the value
            return None
        return items

    def _cast(self, items: pa.StructArray) -> pa.StructArray:
        return _typed(items, self._item_type)

    def rows_to_recheck(self) -> list[int]:
        """Entries (by position) to convert again from their exact decoding (``replace``): those
        with a float of ``ORJSON_ROUNDED`` or more in magnitude (orjson makes such a float of an
        integer beyond 64 bits, which a float field cannot hold exactly), and those with a
        timestamp that is no instant (they go to ``_extra`` whole). One min/max per float field and
        one cast of the hour's timestamps settle almost every hour."""
        if self._mixed:
            return self._mixed_rows_to_recheck()
        items = self._items()
        rows, start = [], 0
        try:
            self._typed = self._cast(items)
            bad_instants = False
        except NotInstants:
            bad_instants = True
        if not bad_instants and not any(_beyond(items.field(i)) for i in self._float_fields):
            return []
        for row, length in enumerate(self._lengths):
            if length and self._suspect(items.slice(start, length), bad_instants):
                rows.append(row)
            start += length or 0
        return rows

    def _suspect(self, items: pa.StructArray, bad_instants: bool) -> bool:
        if any(_beyond(items.field(i)) for i in self._float_fields):
            return True
        if bad_instants:
            try:
                self._cast(items)
            except NotInstants:
                return True
        return False

    def _mixed_rows_to_recheck(self) -> list[int]:
        """``rows_to_recheck`` when a lane gave typed parts: the staged parts (the lines the lane
        handed back, usually few) are checked and cast one by one; the typed ones need neither."""
        rows, part = [], 0
        for row, length in enumerate(self._lengths):
            if length is None:
                continue
            items = self._parts[part]
            if items.type != self._item_type:
                try:
                    if any(_beyond(items.field(i)) for i in self._float_fields):
                        raise NotInstants("a float that may be a rounded integer")  # (checked from the exact text)
                    self._parts[part], self._bases[part] = self._cast(items), None
                except NotInstants:
                    rows.append(row)
            part += 1
        return rows

    def replace(self, row: int, value: list) -> bool:
        """Convert entry ``row`` again from ``value`` (its exact decoding); False (and a NULL) when
        it does not fit the declared type."""
        if self._mixed:
            part = sum(1 for n in self._lengths[:row] if n is not None)
            converted = self._convert(value, cast=True)
            if converted is None:
                del self._parts[part], self._bases[part]
                self._lengths[row] = None
                return False
            self._parts[part], self._bases[part] = self._cast(converted), None
            self._lengths[row] = len(converted)
            return True
        items, start = self._items(), sum(n or 0 for n in self._lengths[:row])
        converted = self._convert(value, cast=True)
        kept = [items.slice(0, start), *([converted] if converted is not None else []), items.slice(start + (self._lengths[row] or 0))]
        self._concatenated, self._typed = pa.concat_arrays(kept), None
        self._lengths[row] = None if converted is None else len(converted)
        return converted is not None

    def _items(self) -> pa.StructArray:
        """The hour's samples in one array, once every entry was added (the parts are freed)."""
        if self._concatenated is None:
            self._concatenated = pa.concat_arrays(self._parts) if self._parts else pa.array([], type=self.staged_type)
            self._parts = []
        return self._concatenated

    def array(self) -> pa.ListArray:
        """The hour's column, timestamps cast (``NotInstants`` unless ``rows_to_recheck``'s rows
        were replaced)."""
        if self._mixed:
            items = _joined(self._parts, self._bases, self._item_type)
            self._parts, self._bases = [], []
        else:
            items = self._typed if self._typed is not None else self._cast(self._items())
        offsets = pa.array(list(accumulate((n or 0 for n in self._lengths), initial=0)), pa.int32())
        nulls = pa.array([n is None for n in self._lengths], pa.bool_())  # typed: an hour may be empty
        return pa.ListArray.from_arrays(offsets, items, mask=nulls)

    def series(self) -> pl.Series:
        """``array()`` as a Polars Series named after the column."""
        return pl.from_arrow(self.array()).alias(self.column)


def _joined(parts: list[pa.StructArray], bases: list[pa.StructArray | None], dtype: pa.DataType) -> pa.Array:
    """``parts`` as one array. Consecutive slices of one lane array (``bases``) are one slice of it,
    not copied: when the lane read every line of a chunk (the usual case) the hour's items are the
    lane's array as it is."""
    pieces: list[pa.Array] = []
    run_base, run_start, run_end = None, 0, 0
    for part, base in zip(parts, bases):
        if base is not None and base is run_base and part.offset - base.offset == run_end:
            run_end += len(part)
            continue
        if run_base is not None:
            pieces.append(run_base.slice(run_start, run_end - run_start))
        if base is None:
            run_base = None
            pieces.append(part)
        else:
            run_base, run_start = base, part.offset - base.offset
            run_end = run_start + len(part)
    if run_base is not None:
        pieces.append(run_base.slice(run_start, run_end - run_start))
    if len(pieces) == 1:
        return pieces[0]
    return pa.concat_arrays(pieces) if pieces else pa.array([], type=dtype)


def item_type(column: str) -> pa.StructType:
    """The declared type of the items of the list of objects ``column`` (timestamps as instants)."""
    return _item_type(column)


@lru_cache(maxsize=None)
def staged_item_type(column: str) -> pa.StructType:
    """The type the items of the list of objects ``column`` are converted to (timestamps as text)."""
    return _staged(_item_type(column))


def list_columns() -> dict[str, ListColumn]:
    """Empty builders for the schema's lists of objects, by column name."""
    return {column: ListColumn(column) for column in LIST_COLUMNS}


def _beyond(values: pa.Array) -> bool:
    """Whether a float array holds a value of ``ORJSON_ROUNDED`` or more in magnitude (NaN and
    NULL do not count). Three kernels, not ``min_max``: measured ~5x faster over an hour's samples."""
    return bool(pc.any(pc.greater_equal(pc.abs(values), ORJSON_ROUNDED)).as_py())


_ZERO_ONE = pa.array([0.0, 1.0])


def _refuse_booleans_in_float_fields(items: list[dict], struct: pa.StructArray, floats: list[int]) -> None:
    """pyarrow stores true/false in a float field as 1.0/0.0, where normalize.py (which leaves list
    items to ``ListColumn``) would move the value to ``_extra``. Only an item whose value came out
    as exactly 0.0 or 1.0 can hold a boolean, so just those few are looked at in Python; one
    test over all float fields (``floats``: their indices) first settles almost every entry
    (measured: 0.05 s a day, not 0.14)."""
    if not floats or not pc.any(pc.is_in(pa.concat_arrays([struct.field(i) for i in floats]), value_set=_ZERO_ONE)).as_py():
        return
    for index in floats:
        field = struct.type.field(index)
        suspects = pc.indices_nonzero(pc.fill_null(pc.is_in(struct.field(index), _ZERO_ONE), False))
        for row in suspects.to_pylist():
            if type(items[row].get(field.name)) is bool:
                raise TypeError(f"a boolean in the float field {field.name}")


def _build(entries: list[dict], extras: list[str | None], lists: dict[str, ListColumn], lineage: tuple[date, int]) -> pl.DataFrame:
    """The hour's frame in ``SOURCE_SCHEMA``: every column built as Arrow, and handed to Polars in
    one conversion (cheaper than converting parts and joining them in Polars)."""
    staged, schema = _staged_batch(entries, _RECORD_COLUMNS), _arrow_schema(_RECORD_COLUMNS)
    columns = {field.name: _typed(array, field.type) for array, field in zip(staged.columns, schema)}
    rows = len(entries)
    for (name, dtype), value in zip(_LINEAGE_ARROW.items(), lineage):
        columns[name] = pa.repeat(pa.scalar(value, dtype), rows)
    for name in LIST_COLUMNS:
        columns[name] = lists[name].array()
    columns[EXTRA_COLUMN] = pa.array(extras, pa.large_string())
    for name in DROPPED_COLUMNS:
        columns[name] = pa.nulls(rows)
    batch = pa.RecordBatch.from_arrays([columns[name] for name in SOURCE_SCHEMA], names=list(SOURCE_SCHEMA))
    frame = pl.from_arrow(batch)
    if any(batch.schema.equals(known) for known in _FITTING):
        return frame
    if frame.schema != SOURCE_SCHEMA:
        return frame.cast(SOURCE_SCHEMA)
    if len(_FITTING) < 8:
        _FITTING.append(batch.schema)
    return frame


#: Arrow schemas of hour batches whose conversion was seen to give ``SOURCE_SCHEMA`` exactly (no
#: cast needed): one C++ comparison, where Polars' nested dtypes compare in Python.
_FITTING: list[pa.Schema] = []


#: The lineage columns' Arrow types (``archive_day``: date32, ``archive_hour``: int8).
_LINEAGE_ARROW = {name: pl.Series(name, [], NESTED_SCHEMA[name]).to_arrow().type for name in LINEAGE_COLUMNS}


def build_hour_frame(entries: list[dict], extras: list[str | None], lists: dict[str, ListColumn],
                     on_untyped: Callable[[int, str], None], lineage: tuple[date, int]) -> pl.DataFrame:
    """One DataFrame in the nested layout, strictly typed, from normalised entries (without their
    lists of objects, already in ``lists``); ``lineage``: the archive day and hour of its rows.

    normalize.py has type-checked every value except inside lists of objects; a value the
    builder still refuses is handed to ``on_untyped(row, column)``, which moves it to
    ``_extra``, and the frame is built again. Timestamps are not re-checked here: the caller
    made sure they are instants (``NotInstants`` otherwise).
    """
    try:
        return _build(entries, extras, lists, lineage)
    except NotInstants:
        raise
    except Exception:  # noqa: BLE001 - polars/pyarrow raise several types; find the culprits
        pass
    for column in _RECORD_COLUMNS:
        for row, entry in enumerate(entries):
            if entry.get(column) is not None and not _fits(column, entry[column]):
                on_untyped(row, column)
    return _build(entries, extras, lists, lineage)


def _fits(column: str, value) -> bool:
    try:
        _staged_batch([{column: value}], (column,))
        return True
    except Exception:  # noqa: BLE001
        return False
