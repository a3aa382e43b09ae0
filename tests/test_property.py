"""Property test: random v7-shaped entries survive decode -> normalise -> flatten -> Parquet.

Entries are drawn from the declared schema itself: any subset of blocks and fields, empty objects,
nulls anywhere, ints where floats are declared, values of the wrong type, unknown fields at any
level, unicode keys in the count maps, NaN and infinities. Each batch is written as an archive hour
file with Python's json (as the collector does), exported in both layouts, read back, rebuilt
(``_extra`` merged back) and compared with the input after the documented normalisations (README,
"The dataset"):

- a missing field, a JSON null and an empty object all read back as absent (NULL); an empty count
  map stays an empty map;
- ints in float fields become floats;
- ``norm``/``labels`` are dropped when empty, kept (in ``_extra``) otherwise;
- unknown fields and values of the wrong type come back verbatim from ``_extra``; a list of objects
  (``spot_prices``) with an unknown key or a wrong-typed value in any item comes back whole from it.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from instrumetriq_polars import export_day
from instrumetriq_polars.schema import DROPPED_COLUMNS, REQUIRED_COLUMNS, TREE, Field

from .conftest import DAY
from .roundtrip import rebuild_flat, rebuild_nested, same

INT64 = st.integers(-(2**63), 2**63 - 1)
BIG_INTS = st.integers(-(2**70), 2**70)
EXACT_FLOAT_INTS = st.integers(-(2**53), 2**53)  # ints a float64 holds exactly
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
TEXT = st.text(max_size=10)  # any unicode (hypothesis leaves out lone surrogates)

SCALARS = st.none() | st.booleans() | BIG_INTS | FLOATS | TEXT
ANY_JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=6
)

RIGHT = {
    "string": TEXT,
    "int": INT64,
    "float": FLOATS | EXACT_FLOAT_INTS | BIG_INTS,
    "bool": st.booleans(),
    "list<string>": st.lists(TEXT, max_size=3),
    "map<string,int>": st.dictionaries(TEXT, INT64, max_size=4),
}


def field_value(field: Field):
    right = RIGHT[field.type_name]
    return st.one_of(right, right, right, st.none(), ANY_JSON)  # mostly right, sometimes null or anything


def unknown_fields(node: dict):
    keys = TEXT.filter(lambda k: k not in node)
    return st.dictionaries(keys, ANY_JSON, max_size=2) | st.just({})


def block(node: dict, required: bool = False):
    """An object for a declared block: any subset of its fields, maybe unknown ones."""
    fields = {}
    for key, spec in node.items():
        if isinstance(spec, Field):
            fields[key] = field_value(spec)
        elif "[]" in spec:
            fields[key] = st.one_of(st.lists(list_item(spec["[]"]), max_size=3), st.none(), ANY_JSON)
        else:
            fields[key] = block(spec)
    body = st.builds(lambda known, unknown: {**unknown, **known},
                     st.fixed_dictionaries({}, optional=fields), unknown_fields(node))
    if required:
        return body.filter(bool)
    return st.one_of(body, body, st.just({}), st.none(), ANY_JSON)


def item_value(field: Field):
    """A value in a list item. Not an int beyond 2**53 in a float field: the frame builder refuses
    to round one and the whole list goes to _extra (test_big_ints_in_float_fields covers it)."""
    right = FLOATS | EXACT_FLOAT_INTS if field.type_name == "float" else RIGHT[field.type_name]
    wrong = ANY_JSON.filter(lambda v: not (type(v) is int and abs(v) > 2**53))
    return st.one_of(right, right, right, st.none(), wrong)


def list_item(node: dict):
    item = st.fixed_dictionaries({}, optional={key: item_value(spec) for key, spec in node.items()})
    odd = st.builds(lambda known, unknown: {**unknown, **known}, item, unknown_fields(node))
    return st.one_of(item, item, item, odd)


ENTRY = st.builds(
    lambda symbol, ts, blocks, dropped: {"symbol": symbol, "snapshot_ts": ts, **blocks, **dropped},
    TEXT, TEXT,
    st.fixed_dictionaries(
        {key: block(TREE[key], required=True) for key in REQUIRED_COLUMNS if isinstance(TREE[key], dict)},
        optional={key: block(spec) for key, spec in TREE.items()
                  if key not in REQUIRED_COLUMNS and isinstance(spec, dict) and "[]" not in spec}
        | {"spot_prices": st.one_of(st.lists(list_item(TREE["spot_prices"]["[]"]), max_size=4), st.none(), ANY_JSON)},
    ),
    st.fixed_dictionaries({}, optional={key: st.one_of(st.just({}), st.none(), ANY_JSON) for key in DROPPED_COLUMNS}),
).flatmap(lambda entry: st.builds(lambda extra: {**extra, **entry}, unknown_fields(TREE)))


# -- what a rebuilt entry must equal ---------------------------------------------------------------

def _typed(spec: Field, value) -> bool:
    kind = spec.type_name
    if kind == "float":
        return type(value) in (int, float)  # list items hold no ints beyond 2**53 (see item_value)
    if kind == "int":
        return type(value) is int and -(2**63) <= value < 2**63
    if kind == "string":
        return type(value) is str
    if kind == "bool":
        return type(value) is bool
    if kind == "list<string>":
        return type(value) is list and all(type(v) is str for v in value)
    return type(value) is dict and all(type(v) is int and -(2**63) <= v < 2**63 for v in value.values())


def _typed_list(node: dict, value) -> bool:
    return type(value) is list and all(
        type(item) is dict and all(k in node and (v is None or _typed(node[k], v)) for k, v in item.items())
        for item in value
    )


def _expect(obj: dict, node: dict) -> dict:
    out = {}
    for key, value in obj.items():
        spec = node.get(key)
        if value is None:
            continue
        if spec is None:
            out[key] = value  # unknown: verbatim from _extra, even {}
        elif isinstance(spec, Field):
            out[key] = float(value) if spec.type_name == "float" and type(value) is int else value
        elif "[]" in spec:
            out[key] = [_expect(item, spec["[]"]) for item in value] if _typed_list(spec["[]"], value) else value
        elif type(value) is not dict:
            out[key] = value  # a block of the wrong type: verbatim
        elif inner := _expect(value, spec):
            out[key] = inner  # an object left empty reads back as absent
    return out


def expected(entry: dict) -> dict:
    kept = {k: v for k, v in entry.items() if k not in DROPPED_COLUMNS or v not in (None, {})}
    return _expect(kept, TREE)


# -- the property ----------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(ENTRY, min_size=1, max_size=3))
def test_entries_round_trip_through_both_layouts(entries):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "archive" / DAY.strftime("%Y%m%d")
        folder.mkdir(parents=True)
        text = "".join(json.dumps(entry) + "\n" for entry in entries)  # NaN/Infinity tokens included
        (folder / "05.jsonl.gz").write_bytes(gzip.compress(text.encode()))
        for layout, rebuild in (("flat", rebuild_flat), ("nested", rebuild_nested)):
            out = Path(tmp) / layout
            manifest = export_day(DAY, str(Path(tmp) / "archive"), str(out), layout=layout, allow_incomplete=True).manifest
            assert (manifest.row_count, manifest.bad_line_count) == (len(entries), 0)
            path = out / DAY.isoformat() / "data.parquet"
            assert pq.read_table(path).num_rows == len(entries)
            for index, row in enumerate(pl.read_parquet(path).to_dicts()):
                want = expected(entries[index])
                got = rebuild(row)
                assert same(got, want), f"{layout} entry {index}:\n got  {got!r}\n want {want!r}"


def test_big_ints_in_float_fields(tmp_path):
    """A float field holding an int a float64 cannot hold exactly: widened (rounded) like every
    int in a float field; inside a list of objects the frame builder refuses to round, so the whole
    list goes to _extra, exact."""
    from datetime import datetime, timezone
    import random

    from instrumetriq_polars.synthetic import make_entry

    entry = make_entry(random.Random(1), datetime(2026, 1, 15, 5, tzinfo=timezone.utc))
    entry["meta"]["duration_sec"] = 2**60 + 1
    entry["spot_raw"]["mid"] = 2**64 - 1
    entry["spot_raw"]["bid"] = -(2**70)
    entry["spot_prices"][1]["mid"] = 2**60 + 3
    folder = tmp_path / "archive" / DAY.strftime("%Y%m%d")
    folder.mkdir(parents=True)
    (folder / "05.jsonl.gz").write_bytes(gzip.compress(json.dumps(entry).encode()))
    manifest = export_day(DAY, str(tmp_path / "archive"), str(tmp_path / "out"), allow_incomplete=True).manifest
    assert manifest.mistyped_fields == {"spot_prices": 1} and manifest.bad_line_count == 0
    row = pl.read_parquet(tmp_path / "out" / DAY.isoformat() / "data.parquet").row(0, named=True)
    assert (row["meta__duration_sec"], row["spot_raw__mid"], row["spot_raw__bid"]) == (float(2**60 + 1), float(2**64 - 1), float(-(2**70)))
    assert row["spot_prices"] is None and json.loads(row["_extra"])["spot_prices"] == entry["spot_prices"]
