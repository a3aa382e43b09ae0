"""The native lane (read/native.py, read/_spans.c) changes nothing but speed: for every line, what the export makes
of it is what the object lane alone (orjson + ``frames.ListColumn``) makes of it, bad lines,
``_extra``, the manifest's figures and the bytes of data.parquet included.

Each case is a real entry whose ``spot_prices`` text (or the line around it) is replaced by one a
damaged or unusual archive could hold; each is built with the lane on and off and compared, and
whole days are exported both ways and their sha256 compared. The lane must also really be used
(``test_lane_takes_ordinary_lines``): a lane that took nothing would pass every comparison.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import sys
import threading
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from instrumetriq_polars import export_day
from instrumetriq_polars.archive import HourFile
from instrumetriq_polars.decode import open_hour
from instrumetriq_polars.frames import item_type
from instrumetriq_polars.read import lanes
from instrumetriq_polars.read.lanes import ObjectLane, choose_lane
from instrumetriq_polars.read.native import NativeLane
from instrumetriq_polars.read.options import ReadOptions
from instrumetriq_polars.source import build_hour

from .conftest import DAY
from .support.daycheck import small_entries, write_hour
from .support.readopts import scans_with
from .support.fuzz import SEED as FUZZ_SEED
from .support.fuzz import make_case

SAMPLE = '{"ts": "2026-01-15T00:00:01.123Z", "mid": 1.5, "bid": 1.25, "ask": 1.75, "spread_bps": 2.0}'

#: Texts in place of the ``spot_prices`` array.
SPANS = {
    "ordinary": f"[{SAMPLE}, {SAMPLE}]",
    "compact": '[{"ts":"2026-01-15T00:00:01Z","mid":1,"bid":2,"ask":3,"spread_bps":null}]',
    "spaced": '[ { "ts" : "2026-01-15T00:00:01Z" , "mid" : 1.5 } ]',
    "empty": "[]",
    "null_item": f"[null, {SAMPLE}]",
    "empty_item": "[{}]",
    "missing_keys": '[{"mid": 1.5}]',
    "number_ts": '[{"ts": 123, "mid": 1.5}]',
    "bool_mid": '[{"ts": "2026-01-15T00:00:01Z", "mid": true}]',
    "bool_zero": '[{"mid": false, "bid": 0.0}]',
    "string_mid": '[{"mid": "1.5"}]',
    "object_mid": '[{"mid": {"a": 1}}]',
    "list_mid": '[{"mid": [1]}]',
    "unknown_key": '[{"mid": 1.5, "extra": 1}]',
    "repeated_key": '[{"mid": 1.5, "mid": 2.5}]',
    "nan": '[{"mid": NaN}]',
    "infinity": '[{"mid": Infinity, "bid": -Infinity}]',
    "minus_zero_int": '[{"mid": -0}]',
    "minus_zero_float": '[{"mid": -0.0}]',
    "int_2_53_plus_1": '[{"mid": 9007199254740993}]',
    "int_2_53": '[{"mid": 9007199254740992}]',
    "int_beyond_64_bits": '[{"mid": 18446744073709551619}]',
    "float_2_63": '[{"mid": 9.3e18}]',
    "overflow": '[{"mid": 1e400}]',
    "largest": '[{"mid": 1.7976931348623157e308, "bid": 5e-324, "ask": 2.2250738585072011e-308}]',
    "long_fraction": '[{"mid": 0.1000000000000000055511151231257827021181583404541015625}]',
    "naive_ts": '[{"ts": "2026-01-15T00:00:01"}]',
    "offset_ts": '[{"ts": "2026-01-15T02:00:01+02:00"}]',
    "seven_digits_ts": '[{"ts": "2026-01-15T00:00:01.1234567Z"}]',
    "not_a_time": '[{"ts": "soon"}]',
    "escaped_ts": '[{"ts": "\\u0032026-01-15T00:00:01Z"}]',
    "lone_surrogate": '[{"ts": "\\ud800"}]',
    "surrogate_pair": '[{"ts": "\\ud83d\\ude00"}]',
    "raw_tab": '[{"ts": "2026-01-15T00:00:01Z\t"}]',
    "non_ascii": '[{"ts": "2026-01-15T00:00:01Z\u00e9"}]',
    "item_number": "[1]",
    "item_list": "[[]]",
    "trailing_comma": '[{"mid": 1},]',
    "unclosed": '[{"mid": 1}',
    "extra_bracket": '[{"mid": 1}]]',
    "two_arrays": '[{"mid": 1}], "x": [2]',
    "key_inside": '[{"mid": 1}], "spot_prices": [{"mid": 2}]',
}


def _full(ts: str = '"2026-01-15T00:00:01Z"', mid: str = "1.5", *, spaced: bool = False, tail: str = "") -> str:
    """A span of two items with every key of the item type, as the lane's grammar spells them
    (compact or spaced), the first one's ``ts`` and ``mid`` given as raw JSON text."""
    comma, colon = (", ", ": ") if spaced else (",", ":")
    one = comma.join(f'"{key}"{colon}{value}' for key, value in
                     (("ts", ts), ("mid", mid), ("bid", "1.25"), ("ask", "1.75"), ("spread_bps", "2.0")))
    other = comma.join(f'"{key}"{colon}{value}' for key, value in
                       (("ts", '"2026-01-15T00:00:02Z"'), ("mid", "1"), ("bid", "2"), ("ask", "3"), ("spread_bps", "4e0")))
    return f"[{{{one}{tail}}}{comma}{{{other}}}]"


#: Texts within or just outside the grammar the lane takes (_spans.c): each in both forms.
_TS = '"2026-01-15T00:00:01Z"'
for _spaced in (False, True):
    _form = "spaced" if _spaced else "compact"
    for _name, (_ts, _mid, _tail) in {
        "plain": ('"2026-01-15T00:00:01.123456+00:00"', "0.6234999999999999", ""),
        "exponent": ('"2026-01-15T00:00:01Z"', "1E+2", ""), "exponent_minus": (_TS, "-12.5e-3", ""),
        "minus_zero_int": (_TS, "-0", ""), "minus_zero": (_TS, "-0.0", ""), "underflow_negative": (_TS, "-1e-400", ""),
        "int_2_53_plus_1": (_TS, "9007199254740993", ""), "int_huge": (_TS, "123456789012345678901234567890", ""),
        "overflow": (_TS, "1e400", ""), "subnormal": (_TS, "5e-324", ""),
        "long_fraction": (_TS, "0.1000000000000000055511151231257827021181583404541015625", ""),
        "leading_zero": (_TS, "01", ""), "bare_point": (_TS, "1.", ""), "point_first": (_TS, ".5", ""),
        "plus": (_TS, "+1", ""), "bare_exponent": (_TS, "1e", ""), "double_minus": (_TS, "--1", ""),
        "hex": (_TS, "0x10", ""), "nan": (_TS, "NaN", ""), "infinity": (_TS, "-Infinity", ""),
        "quoted_number": (_TS, '"1.5"', ""), "true": (_TS, "true", ""), "null": (_TS, "null", ""),
        "ts_comma": ('"2026-01-15,00"', "1", ""), "ts_braces": ('"{2026}"', "1", ""), "ts_brackets": ('"[2026]"', "1", ""),
        "ts_blank": ('"2026-01-15 00:00:01"', "1", ""), "ts_empty": ('""', "1", ""), "ts_colons": ('":::"', "1", ""),
        "ts_escaped_quote": ('"a\\"b"', "1", ""), "ts_backslash": ('"a\\\\b"', "1", ""), "ts_unicode_escape": ('"\\u0041"', "1", ""),
        "ts_del": ('"a\x7f"', "1", ""), "ts_tab": ('"a\tb"', "1", ""), "ts_number": ("20260115", "1", ""),
        "extra_key": (_TS, "1", ',"extra":1'), "repeated_key": (_TS, "1", ',"mid":2'),
        "exponent_huge": (_TS, "1e999999999999999999999", ""), "digits_5000": (_TS, "1" * 5000, ""),
        "fraction_5000": (_TS, "0." + "0" * 5000 + "1", ""), "half_subnormal": (_TS, "2.4703282292062328e-324", ""),
        "beyond_max": (_TS, "1.7976931348623159e308", ""),
        "long_tie": (_TS, "1.00000000000000011102230246251565404236316680908203125" + "0" * 715, ""),
    }.items():
        SPANS[f"{_form}_{_name}"] = _full(_ts, _mid, spaced=_spaced, tail=_tail)
SPANS.update({
    "order": '[{"mid":1.5,"ts":"2026-01-15T00:00:01Z","bid":1.25,"ask":1.75,"spread_bps":2.0}]',
    "missing_key": '[{"ts":"2026-01-15T00:00:01Z","mid":1.5,"bid":1.25,"ask":1.75}]',
    "mixed_forms": '[{"ts": "2026-01-15T00:00:01Z","mid":1.5,"bid":1.25,"ask":1.75,"spread_bps":2.0}]',
    "two_blanks": '[{"ts":  "2026-01-15T00:00:01Z",  "mid":  1.5,  "bid":  1.25,  "ask":  1.75,  "spread_bps":  2.0}]',
    "tab_blank": '[{"ts":\t"2026-01-15T00:00:01Z","mid":1.5,"bid":1.25,"ask":1.75,"spread_bps":2.0}]',
    "trailing_item_comma": '[{"ts":"2026-01-15T00:00:01Z","mid":1.5,"bid":1.25,"ask":1.75,"spread_bps":2.0},]',
    "blank_in_brackets": '[ {"ts":"2026-01-15T00:00:01Z","mid":1.5,"bid":1.25,"ask":1.75,"spread_bps":2.0} ]',
})


def _base(seed: int = 1) -> dict:
    entry = small_entries(1, seed)[0]
    entry.pop("spot_prices")
    return entry


def _line(span: str, entry: dict | None = None, separators=(", ", ": ")) -> bytes:
    head = json.dumps(entry or _base(), separators=separators)
    return (head[:-1] + separators[0] + '"spot_prices"' + separators[1] + span + "}").encode()


def _lines_around(entry: dict) -> dict[str, bytes]:
    """Lines whose cut, not whose list, is unusual."""
    ordinary = SPANS["ordinary"]
    nan_elsewhere = dict(entry, spot_raw=dict(entry["spot_raw"], mid=float("nan")))
    huge_elsewhere = dict(entry, spot_raw=dict(entry["spot_raw"], mid=2**70))
    unknown = dict(entry, new_block={"a": [1, 2]})
    nested_key = dict(entry, new_block={"spot_prices": [{"mid": 9.0}]})
    quoted_key = dict(entry, **{'abc"spot_prices': [{"mid": 9.0}]})
    first = json.dumps({"spot_prices": json.loads(ordinary), **entry})
    return {
        "crlf": _line(ordinary) + b"\r",
        "trailing_blanks": _line(ordinary) + b" \t ",
        "leading_blanks": b"  " + _line(ordinary),
        "bom": "\ufeff".encode() + _line(ordinary),
        "compact_separators": _line(ordinary, separators=(",", ":")),
        "not_last": first.encode(),
        "null_list": _line("null"),
        "object_list": _line('{"mid": 1}'),
        "string_list": _line('"[]"'),
        "nan_elsewhere": _line(ordinary, nan_elsewhere),
        "huge_int_elsewhere": _line(ordinary, huge_elsewhere),
        "unknown_block": _line(ordinary, unknown),
        "nested_key_before": _line(ordinary, nested_key),
        "quoted_key_before": _line('[{"mid": 2.0}]', quoted_key),
        "repeated_top_key": _line(ordinary)[:-1] + b', "spot_prices": [{"mid": 3.0}]}',
        "repeated_top_key_placeholder": _line(ordinary)[:-1] + b', "spot_prices": []}',
        "missing_list": json.dumps(entry).encode(),
        "not_an_object": b"[" + _line(ordinary) + b"]",
        "broken_before": _line(ordinary).replace(b'"symbol"', b'"symbol', 1),
        "no_closing_brace": _line(ordinary)[:-1],
    }


def _built(text: bytes, lane: bool, blob: bytes | None = None, options: ReadOptions | None = None) -> tuple[bytes, object]:
    """One hour of ``text`` (or the gzip ``blob``) built as the export builds it: its frame as
    Parquet bytes, and its account."""
    options = ReadOptions(lane=lane) if options is None else options
    blob = blob if blob is not None else gzip.compress(text, mtime=0)
    label = "20260115/00.jsonl.gz"
    chunks = iter(open_hour(blob, label, options))
    parts = list(build_hour(HourFile(0, "unused", len(blob)), label, chunks, DAY, choose_lane(options)))
    built = parts[-1][1]
    out = io.BytesIO()
    pq.write_table(pl.concat([frame for frame, _ in parts]).to_arrow(), out)
    account = built.account
    figures = (account.bad_lines, dict(account.mistyped_fields), dict(account.unknown_fields), account.lines_read,
               account.stdlib_json_lines, built.report.rows, built.report.notes)
    return out.getvalue(), figures


def _assert_same(text: bytes, monkeypatch, blob: bytes | None = None, what: object = None) -> None:
    with_lane, without = _built(text, True, blob), _built(text, False, blob)
    assert with_lane[1] == without[1], what
    assert with_lane[0] == without[0], what


@pytest.mark.slow
def test_fuzzed_hours_build_as_in_the_object_lane(monkeypatch):
    """The fuzz test's mutated hour files (tests/test_fuzz.py: flipped, inserted and deleted bytes,
    JSON tokens, cut and spliced lines, damaged gzip), lines with 40 samples so that most mutations
    land in the list: each built with the lane on and off, alike."""
    lines = [_line(json.dumps(json.loads(SPANS["ordinary"]) * 20), _base(seed)) for seed in range(6)]
    rng = random.Random(FUZZ_SEED)
    for case in range(400):
        blob, log = make_case(rng, lines)
        _assert_same(b"", monkeypatch, blob, (FUZZ_SEED, case, log))


@pytest.mark.parametrize("name", sorted(SPANS))
def test_list_texts_build_as_in_the_object_lane(name, monkeypatch):
    ordinary = _line(SPANS["ordinary"])
    _assert_same(ordinary + b"\n" + _line(SPANS[name]) + b"\n" + ordinary + b"\n", monkeypatch)


@pytest.mark.parametrize("name", sorted(_lines_around(_base())))
def test_unusual_lines_build_as_in_the_object_lane(name, monkeypatch):
    ordinary = _line(SPANS["ordinary"])
    _assert_same(ordinary + b"\n" + _lines_around(_base())[name] + b"\n" + ordinary + b"\n", monkeypatch)


def _native() -> NativeLane:
    return NativeLane("spot_prices", item_type("spot_prices"))


def test_lane_takes_ordinary_lines_and_hands_back_the_rest():
    """The lane reads ordinary lines itself, written compact or spaced (so the comparisons above
    test it), and leaves out the lines it cannot prove it reads as the object lane does (a null
    value and an empty list included: the object lane's, at no loss)."""
    compact = '[{"ts":"2026-01-15T00:00:01Z","mid":1,"bid":2.5,"ask":-3e-2,"spread_bps":0.0}]'
    lines = [_line(SPANS["ordinary"]), _line(compact)]
    lines += [_line(SPANS[name]) for name in ("compact", "nan", "int_2_53_plus_1", "minus_zero_int",
                                              "unknown_key", "key_inside", "non_ascii", "empty")]
    lines.append(_line(SPANS["ordinary"])[:-1])  # no closing brace: no cut
    lane = _native().take(lines)
    assert sorted(lane.items) == [0, 1]
    assert sorted(lane.remainders) == [0, 1]
    assert len(lane.items[0]) == 2 and lane.items[0].field("mid").to_pylist() == [1.5, 1.5]
    assert lane.items[1].to_pylist() == [{"ts": datetime(2026, 1, 15, 0, 0, 1, tzinfo=timezone.utc), "mid": 1.0,
                                          "bid": 2.5, "ask": -0.03, "spread_bps": 0.0}]
    assert json.loads(lane.remainders[1])["spot_prices"] == []


def test_random_floats_read_alike(monkeypatch):
    """Float text as Python writes it and as other writers do (exponents, long fractions, integers
    below 2**53): pyarrow's reading equals orjson's, bit for bit."""
    rng = random.Random(20261127)
    samples = []
    for _ in range(3000):
        kind = rng.randrange(4)
        if kind == 0:
            value = repr(rng.uniform(-1e6, 1e6))
        elif kind == 1:
            value = repr(rng.random() * 10 ** rng.randint(-320, 308))
        elif kind == 2:
            value = f"{rng.randint(0, 9)}.{rng.randint(0, 10**30)}e{rng.randint(-40, 40)}"
        else:
            value = str(rng.randint(-(2**53) + 1, 2**53 - 1))
        samples.append(f'{{"mid": {value}}}')
    lines = [_line("[" + ", ".join(samples[i:i + 300]) + "]") for i in range(0, len(samples), 300)]
    _assert_same(b"\n".join(lines) + b"\n", monkeypatch)


def _export_sha(archive: Path, day: str, lane: bool, monkeypatch, tmp_path: Path, layout: str) -> tuple[str, dict]:
    out = tmp_path / f"out-{lane}-{layout}"
    with scans_with(monkeypatch, ReadOptions(lane=lane)):
        export_day(day, str(archive), str(out), layout=layout, allow_incomplete=True, today=date(2099, 1, 1))
    manifest = json.loads((out / day / "manifest.json").read_text())
    manifest.pop("created_ts_utc")
    data = (out / day / "data.parquet").read_bytes()
    assert hashlib.sha256(data).hexdigest() == manifest["parquet_sha256"]
    return manifest["parquet_sha256"], manifest


@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_day_with_every_case_has_the_same_bytes_with_and_without_the_lane(tmp_path, monkeypatch, layout):
    """The issue's check: a day exported with the lane forced off has the same data.parquet sha256
    (and the same manifest) as with it on; its hours hold every case above."""
    archive = tmp_path / "archive"
    folder = archive / DAY.strftime("%Y%m%d")
    cases = [_line(span) for span in SPANS.values()] + list(_lines_around(_base(2)).values())
    for hour in range(24):
        entries = small_entries(4, seed=hour, samples=5, hour=hour)
        lines = [json.dumps(e).encode() for e in entries]
        lines.insert(hour % 3, cases[hour * len(cases) // 24])
        lines.extend(cases[hour * len(cases) // 24 + 1:(hour + 1) * len(cases) // 24])
        write_hour(folder / f"{hour:02d}.jsonl.gz", lines)
    with_lane = _export_sha(archive, DAY.isoformat(), True, monkeypatch, tmp_path, layout)
    without = _export_sha(archive, DAY.isoformat(), False, monkeypatch, tmp_path, layout)
    assert with_lane[1]["bad_line_count"] > 0 and with_lane[1]["stdlib_json_lines"] > 0  # the cases did land
    assert with_lane == without


def test_real_sample_has_the_same_bytes_with_and_without_the_lane(sample_archive, tmp_path, monkeypatch):
    with_lane = _export_sha(sample_archive, "2026-01-01", True, monkeypatch, tmp_path, "flat")
    without = _export_sha(sample_archive, "2026-01-01", False, monkeypatch, tmp_path, "flat")
    assert with_lane == without and with_lane[1]["row_count"] == 147


def test_lists_read_ahead_in_the_reader_thread_or_not_give_the_same_bytes(sample_archive, tmp_path, monkeypatch):
    """``ReadOptions.parse_ahead``: the native parser runs in the reader thread, or when the chunk is
    built; no read-ahead at all: the same data.parquet."""
    shas = set()
    for number, options in enumerate((ReadOptions(), ReadOptions(parse_ahead=False), ReadOptions(read_ahead=0))):
        out = tmp_path / f"out{number}"
        with scans_with(monkeypatch, options):
            export_day("2026-01-01", str(sample_archive), str(out), allow_incomplete=True, today=date(2099, 1, 1))
        shas.add(hashlib.sha256((out / "2026-01-01" / "data.parquet").read_bytes()).hexdigest())
    assert len(shas) == 1


def test_lane_takes_exactly_its_grammar():
    """Which of the spans above the lane reads itself (the rest go to the object lane whole, and
    the comparisons above show the output is the same either way): instants only in their
    canonical forms, numbers of less than 2**53 in magnitude and not -0.0."""
    taken = {f"{form}_{name}" for form in ("compact", "spaced")
             for name in ("plain", "exponent", "exponent_minus", "long_fraction", "subnormal", "fraction_5000",
                          "half_subnormal", "long_tie", "underflow_negative_not", "int_huge_not")}
    taken = {name for name in taken if not name.endswith("_not")} | {"ordinary"}
    names = sorted(SPANS)
    lane = _native().take([_line(SPANS[name]) for name in names])
    assert {names[index] for index in lane.items} == taken


def test_without_the_extension_the_object_lane_runs_after_one_warning(monkeypatch, capsys):
    """A machine that could not build the extension reads with the object lane: one warning line
    per process; with the lane switched off, no warning."""
    monkeypatch.setitem(sys.modules, "instrumetriq_polars.read.native", None)  # import fails, as when absent
    monkeypatch.setattr(lanes, "_warned", threading.Event())
    assert isinstance(choose_lane(ReadOptions(lane=False)), ObjectLane) and capsys.readouterr().err == ""
    assert isinstance(choose_lane(ReadOptions()), ObjectLane)
    assert isinstance(choose_lane(ReadOptions()), ObjectLane)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: the native spot_prices parser is not installed")


def test_day_with_every_case_has_the_same_bytes_without_the_extension(tmp_path, monkeypatch, sample_archive):
    """Lane on, off and absent: the same data.parquet (the real sample)."""
    with_lane = _export_sha(sample_archive, "2026-01-01", True, monkeypatch, tmp_path, "flat")
    monkeypatch.setitem(sys.modules, "instrumetriq_polars.read.native", None)
    monkeypatch.setattr(lanes, "_warned", threading.Event())
    (tmp_path / "out-True-flat").rename(tmp_path / "with-lane")
    absent = _export_sha(sample_archive, "2026-01-01", True, monkeypatch, tmp_path, "flat")
    assert absent == with_lane


@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_writer_leaf_paths_are_pyarrows(layout):
    """The writer's column paths, walked from the Arrow schema, are the ones pyarrow writes (read
    back from a file), in file order, and each leaf's type is the one the file holds."""
    from instrumetriq_polars.write import parquet as writer

    schema = pl.DataFrame(schema=writer.lazy_day(lambda: iter(()), layout).collect_schema()).to_arrow().schema
    leaves = writer._leaf_columns(schema)
    written = io.BytesIO()
    pq.write_table(schema.empty_table(), written)
    parquet = pq.ParquetFile(io.BytesIO(written.getvalue())).schema
    assert list(leaves) == [parquet.column(index).path for index in range(len(parquet))]
    for index in range(len(parquet)):
        column = parquet.column(index)
        assert (column.logical_type.type == "TIMESTAMP") == (leaves[column.path].id == pa.timestamp("us").id), column.path
        assert (column.physical_type == "DOUBLE") == (leaves[column.path] == pa.float64()), column.path
