"""The writer keeps the plan's source a bounded number of rows ahead of it (write/parquet.py ``_Gate``),
and the row groups it writes do not depend on how the rows came (``_Group``, ``_Packed``)."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import time

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.io.plugins import register_io_source

from instrumetriq_polars.write import parquet
from instrumetriq_polars.write.parquet import _Gate, frame_source

FRAMES, ROWS = 40, 10


def _frames():
    for index in range(FRAMES):
        yield pl.DataFrame({"x": list(range(index * ROWS, (index + 1) * ROWS))}, schema={"x": pl.Int64})


def test_the_source_stays_within_its_bound_while_the_consumer_is_slow():
    gate = _Gate(ahead=3 * ROWS, wait=5.0)
    plan = register_io_source(frame_source(_frames, gate), schema={"x": pl.Int64})
    seen = []
    for batch in plan.collect_batches():
        gate.taken(batch.height)
        seen.extend(batch["x"].to_list())
        time.sleep(0.002)  # a writer busy encoding
    assert seen == list(range(FRAMES * ROWS))
    assert not gate.open
    assert gate.most_out <= 3 * ROWS + ROWS  # at most one frame beyond the bound is out


def test_a_plan_whose_rows_nobody_counts_still_runs_to_the_end():
    """collect() takes no rows through the gate: the source waits once in vain, then runs freely."""
    gate = _Gate(ahead=2 * ROWS, wait=0.05)
    plan = register_io_source(frame_source(_frames, gate), schema={"x": pl.Int64})
    started = time.perf_counter()
    frame = plan.collect()
    assert frame["x"].to_list() == list(range(FRAMES * ROWS))
    assert gate.open
    assert time.perf_counter() - started < 5


def test_a_filter_that_keeps_fewer_rows_does_not_stall_the_sink():
    gate = _Gate(ahead=2 * ROWS, wait=0.05)
    plan = register_io_source(frame_source(_frames, gate), schema={"x": pl.Int64}).filter(pl.col("x") % 7 == 0)
    seen = []
    for batch in plan.collect_batches():
        gate.taken(batch.height)
        seen.extend(batch["x"].to_list())
    assert seen == [x for x in range(FRAMES * ROWS) if x % 7 == 0]


ITEM = pa.struct([("ts", pa.timestamp("us", tz="UTC")), ("mid", pa.float64())])


def _list_frame(start: int, rows: int, null_item_at: int | None = None, null_row_at: int | None = None) -> pl.DataFrame:
    lists = []
    for row in range(start, start + rows):
        items = [{"ts": 1_700_000_000_000_000 + row * 1000 + i, "mid": row + i / 8} for i in range(row % 5)]
        if row == null_item_at and items:
            items[0] = {"ts": None, "mid": None}
        lists.append(None if row == null_row_at else items)
    table = pa.table({"n": pa.array(range(start, start + rows), pa.int64()),
                      "spot_prices": pa.array(lists, pa.large_list(ITEM)),
                      "name": pa.array([f"s{row}" for row in range(start, start + rows)], pa.large_string())})
    return pl.from_arrow(table)


def _written(batches: list[pl.DataFrame], monkeypatch, group: int) -> bytes:
    monkeypatch.setattr(parquet, "ROW_GROUP_SIZE", group)

    class Plan:  # what sink asks of a plan: its schema and its batches
        def collect_schema(self):
            return batches[0].schema

        def collect_batches(self):
            return iter(batches)

    out = io.BytesIO()
    parquet.sink(Plan(), out)
    return out.getvalue()


def _reference(batches: list[pl.DataFrame], group: int) -> bytes:
    """The file as the writer made it before packing: each group's rows concatenated, rechunked."""
    rows = pl.concat(batches)
    schema = pl.DataFrame(schema=rows.schema).to_arrow().schema
    out = io.BytesIO()
    with parquet._writer(out, schema) as writer:
        for start in range(0, rows.height, group):
            part = rows.slice(start, group).rechunk()
            writer.write_table(part.to_arrow().cast(schema), row_group_size=part.height)
    return out.getvalue()


@pytest.mark.parametrize("null_item_at,null_row_at", [(None, None), (None, 13), (17, None), (17, 13)])
def test_row_groups_are_the_same_bytes_however_the_batches_are_cut(monkeypatch, null_item_at, null_row_at):
    """Lists of fixed-width objects are packed as batches come (and fall back to concatenation when
    an item holds a NULL): the file equals the one written from the rows in one batch."""
    whole = [_list_frame(0, 60, null_item_at, null_row_at)]
    cut = [_list_frame(start, rows, null_item_at, null_row_at) for start, rows in ((0, 7), (7, 1), (8, 30), (38, 22))]
    assert _written(cut, monkeypatch, 25) == _written(whole, monkeypatch, 25) == _reference(whole, 25)
    table = pq.read_table(io.BytesIO(_written(cut, monkeypatch, 25)))
    assert table.num_rows == 60
    assert [group.num_rows for group in (pq.ParquetFile(io.BytesIO(_written(cut, monkeypatch, 25))).metadata.row_group(i)
                                          for i in range(3))] == [25, 25, 10]
    assert table.column("spot_prices").to_pylist() == whole[0].to_arrow().column("spot_prices").to_pylist()


class _FailingFile(io.RawIOBase):
    """A file object that takes ``room`` bytes, then fails every write."""

    def __init__(self, room: int) -> None:
        self.room = room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.room < len(data):
            raise OSError(28, "No space left on device")
        self.room -= len(data)
        return len(data)


def test_a_write_that_fails_in_the_encoding_thread_is_the_sinks_error(monkeypatch):
    """Row groups are encoded in a thread of their own (``_Encoder``): its failure is raised by
    ``sink``, and the run neither hangs nor goes on gathering rows."""
    monkeypatch.setattr(parquet, "ROW_GROUP_SIZE", 5)
    monkeypatch.setattr(parquet, "OUT_BUFFER", 1)  # every encoded page reaches the file at once
    batches = [_list_frame(start, 5) for start in range(0, 200, 5)]
    pulled = []

    class Plan:
        def collect_schema(self):
            return batches[0].schema

        def collect_batches(self):
            for batch in batches:
                pulled.append(batch)
                yield batch

    with pytest.raises(OSError, match="No space left"):
        parquet.sink(Plan(), _FailingFile(room=600))
    assert len(pulled) < len(batches)


AFTER_FAILURE = textwrap.dedent("""
    import gc, io, sys
    from tests.test_write_gate import _FailingFile, _list_frame
    from instrumetriq_polars.write import parquet
    parquet.ROW_GROUP_SIZE = 5
    parquet.OUT_BUFFER = int(sys.argv[2])
    batches = [_list_frame(start, 5) for start in range(0, 200, 5)]

    class Recording(io.RawIOBase):  # what reaches the file, and when
        def __init__(self):
            self.writes, self.after = 0, 0
        def writable(self):
            return True
        def write(self, data):
            self.writes += 1
            return len(data)

    class Plan:
        def collect_schema(self):
            return batches[0].schema
        def collect_batches(self):
            for index, batch in enumerate(batches):
                if sys.argv[1] == "source" and index == 17:
                    raise RuntimeError("the source failed")
                yield batch

    out = _FailingFile(room=600) if sys.argv[1] == "write" else Recording()
    try:
        parquet.sink(Plan(), out)
    except (OSError, RuntimeError) as exc:
        print(type(exc).__name__)
    seen = getattr(out, "writes", 0)
    gc.collect()
    print(getattr(out, "writes", 0) - seen)
""")


@pytest.mark.parametrize("failure", ["write", "source"])
@pytest.mark.parametrize("buffer", [1, 4 << 20])
def test_after_a_failure_nothing_more_reaches_the_file_and_the_process_ends_cleanly(failure, buffer):
    """pyarrow's writer and stream close themselves when they are destroyed, after the failure
    (at a garbage collection, at exit): that once crashed the process (a detached stream closed
    by the writer) and printed Arrow's "Error ignored" lines. Nothing may be written to the file
    once ``sink`` raised, and the process must end with its own status."""
    done = subprocess.run([sys.executable, "-c", AFTER_FAILURE, failure, str(buffer)], capture_output=True, text=True,
                          timeout=120, cwd=str(__import__("pathlib").Path(__file__).parents[1]))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["OSError" if failure == "write" else "RuntimeError", "0"]
    assert "Error ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr
