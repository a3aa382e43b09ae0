"""Property test: random v7-shaped entries survive decode -> normalise -> flatten -> Parquet.

Entries are drawn from the declared schema itself: any subset of blocks and fields, empty objects,
nulls anywhere, ints where floats are declared, values of the wrong type, unknown fields at any
level, NaN and infinities. Every example holds an entry with both sentiment windows and their
eight count map fields (tag, cashtag, mention, url_domain), mostly maps: empty maps, keys in any
script (emoji and ZWJ sequences, CJK, combining marks, NFC and NFD forms side by side, NUL, the
empty string), int64 extremes, and sometimes a value that is not an int64 (the whole map goes to
_extra). Each batch is written as an archive hour file with Python's json (as the collector does),
exported in both layouts, read back, rebuilt (``_extra`` merged back; a value found both in its
typed column and in ``_extra`` fails the test) and compared with the input after the documented
normalisations (README, "The dataset"):

- a missing field, a JSON null and an empty object (an empty count map too) all read back as
  absent (NULL);
- ints in float fields become floats when a float64 holds them exactly (up to 2**53); a bigger
  one is a value of the wrong type;
- a timestamp that is an instant (in any spelling: offsets, none, a space for ``T``, 0-6 fraction
  digits) reads back as that instant, compared as one; any other value is of the wrong type;
- ``norm``/``labels`` are dropped when empty, kept (in ``_extra``) otherwise;
- unknown fields and values of the wrong type come back verbatim from ``_extra``; a list of objects
  (``spot_prices``) with an unknown key or a wrong-typed value in any item comes back whole from it.
"""

from __future__ import annotations

import gzip
import json
import re
import tempfile
from datetime import datetime
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from instrumetriq_polars import export_day
from instrumetriq_polars.schema import DROPPED_COLUMNS, REQUIRED_COLUMNS, TREE, Field

from .conftest import DAY
from .support.roundtrip import ExtraConflict, as_compared_instant, rebuild_flat, rebuild_nested, same, typed_list

INT64 = st.integers(-(2**63), 2**63 - 1)
BIG_INTS = st.integers(-(2**70), 2**70)
EXACT_FLOAT_INTS = st.integers(-(2**53), 2**53)  # ints a float64 holds exactly
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
TEXT = st.text(max_size=10)  # any unicode (hypothesis leaves out lone surrogates)
NOT_BLANK = TEXT.filter(str.strip)  # symbol: blank text is a bad line
#: Instants in every spelling the rule accepts (a snapshot_ts that is no instant is a bad line).
INSTANT = st.builds(
    lambda moment, sep, digits, zone: f"{moment.year:04d}-" + moment.strftime(f"%m-%d{sep}%H:%M:%S")
    + (f".{moment.microsecond:06d}"[:digits + 1] if digits else "") + zone,
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), st.sampled_from("T "),
    st.integers(0, 6), st.sampled_from(["Z", "+00:00", "", "+05:30", "-0800", "-03"]),
)
# near misses: 7 fraction digits, a date alone, an impossible date
NOT_INSTANT = st.sampled_from(["2026-01-15T05:00:00.1234567Z", "2026-01-15", "2026-02-30T00:00:00Z"]) | TEXT

SCALARS = st.none() | st.booleans() | BIG_INTS | FLOATS | TEXT
ANY_JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=6
)

RIGHT = {
    "string": TEXT,
    "timestamp": INSTANT,
    "int": INT64,
    "float": FLOATS | EXACT_FLOAT_INTS | BIG_INTS,
    "bool": st.booleans(),
    "list<string>": st.lists(TEXT, max_size=3),
    "map<string,int>": st.dictionaries(TEXT, INT64, max_size=4),
}


#: A value that is of its field's type for certain (RIGHT's floats include integers beyond 2**53,
#: which are not: a required block holding only such a value is a bad line).
HELD = {"float": FLOATS | EXACT_FLOAT_INTS}


def field_value(field: Field):
    right = RIGHT[field.type_name]
    wrong = NOT_INSTANT if field.type_name == "timestamp" else ANY_JSON
    return st.one_of(right, right, right, st.none(), wrong, ANY_JSON)  # mostly right, sometimes null or anything


def unknown_fields(node: dict):
    keys = TEXT.filter(lambda k: k not in node)
    return st.dictionaries(keys, ANY_JSON, max_size=2) | st.just({})


def block_body(node: dict):
    """An object for a declared block: any subset of its fields, maybe unknown ones."""
    fields = {}
    for key, spec in node.items():
        if isinstance(spec, Field):
            fields[key] = field_value(spec)
        elif "[]" in spec:
            fields[key] = st.one_of(st.lists(list_item(spec["[]"]), max_size=3), st.none(), ANY_JSON)
        else:
            fields[key] = block(spec)
    return st.builds(lambda known, unknown: {**unknown, **known},
                     st.fixed_dictionaries({}, optional=fields), unknown_fields(node))


def block(node: dict, required: bool = False):
    """A declared block's value: mostly an object (``block_body``), sometimes ``{}``, null or anything.
    A required block always holds one declared field with a value of its type (without one the
    entry is a bad line: test_bad_input.py covers those)."""
    body = block_body(node)
    if required:
        leaves = sorted(key for key, spec in node.items() if isinstance(spec, Field))
        held = st.sampled_from(leaves).flatmap(lambda key: st.tuples(st.just(key), HELD.get(node[key].type_name, RIGHT[node[key].type_name])))
        return st.builds(lambda body, pair: {**body, pair[0]: pair[1]}, body, held)
    return st.one_of(body, body, st.just({}), st.none(), ANY_JSON)


def item_value(field: Field):
    """A value in a list item: mostly of the right type (in a float field, no int beyond 2**53, so
    that most lists stay typed), sometimes null or anything (such an int included)."""
    right = FLOATS | EXACT_FLOAT_INTS if field.type_name == "float" else RIGHT[field.type_name]
    return st.one_of(right, right, right, st.none(), ANY_JSON)


def list_item(node: dict):
    item = st.fixed_dictionaries({}, optional={key: item_value(spec) for key, spec in node.items()})
    odd = st.builds(lambda known, unknown: {**unknown, **known}, item, unknown_fields(node))
    return st.one_of(item, item, item, odd)


# -- the count maps: what real tag / cashtag / mention / url_domain maps hold -----------------------

ODD_KEYS = [
    "", " ", "\x00", "\n", '"', "\\", "a.b", "a__b", "_extra", "null",
    "🚀", "🌕moon", "👨‍👩‍👧", "🇯🇵", "👍🏽",  # emoji, a ZWJ sequence, a flag, a skin tone
    "比特币", "ビットコイン", "비트코인", "ｂｔｃ", "مرحبا", "ไทย",  # CJK, fullwidth, Arabic, Thai
    "é", "e\u0301", "\u0301", "a\u0300\u0316", "\u200d", "\ufeff",  # NFC and NFD forms, combining marks, ZWJ, BOM
]
MAP_KEY = st.one_of(
    # letters of any script (CJK...), symbols (emoji), combining marks, format characters (ZWJ)
    st.text(st.characters(categories=["Lo", "So", "Mn", "Me", "Sk", "Cf", "Zs"]), min_size=1, max_size=6),
    st.sampled_from(ODD_KEYS),
    TEXT,
)
COUNT = st.one_of(st.integers(0, 10_000), INT64, st.sampled_from([0, -1, 2**63 - 1, -(2**63)]))
COUNT_MAP = st.dictionaries(MAP_KEY, COUNT, min_size=1, max_size=6)
NOT_A_COUNT = BIG_INTS.filter(lambda v: not -(2**63) <= v < 2**63) | FLOATS | TEXT | st.booleans() | st.none()
#: A count map field: mostly a count map, often empty, sometimes a map holding a value that is not
#: an int64 (the whole map goes to _extra), null, or anything.
COUNT_MAP_FIELD = st.one_of(
    COUNT_MAP, st.just({}),
    st.builds(lambda good, bad: {**good, **bad}, st.dictionaries(MAP_KEY, COUNT, max_size=3),
              st.dictionaries(MAP_KEY, NOT_A_COUNT, min_size=1, max_size=2)),
    COUNT_MAP, st.none(), COUNT_MAP, ANY_JSON,
)
COUNT_MAPS = ("tag_counts", "cashtag_counts", "mention_counts", "url_domain_counts")
WINDOWS_NODE = TREE["twitter_sentiment_windows"]


def window_with_count_maps(node: dict):
    """A sentiment window with its four count map fields (each maybe null or of the wrong type)
    and any subset of its other fields."""
    return st.builds(lambda maps, body: {**body, **maps},
                     st.fixed_dictionaries({key: COUNT_MAP_FIELD for key in COUNT_MAPS}), block_body(node))


WINDOWS_WITH_COUNT_MAPS = st.builds(
    lambda windows, unknown: {**unknown, **windows},
    st.fixed_dictionaries({name: window_with_count_maps(node) for name, node in WINDOWS_NODE.items()}),
    unknown_fields(WINDOWS_NODE),
)


def entry(windows=None):
    """A v7-shaped entry; ``windows``: the strategy of its sentiment windows (default: optional,
    drawn like any block)."""
    optional = {key: block(spec) for key, spec in TREE.items()
                if key not in REQUIRED_COLUMNS and isinstance(spec, dict) and "[]" not in spec}
    fixed = {}
    if windows is not None:
        del optional["twitter_sentiment_windows"]
        fixed["twitter_sentiment_windows"] = windows
    return st.builds(
        lambda symbol, ts, blocks, dropped: {"symbol": symbol, "snapshot_ts": ts, **blocks, **dropped},
        NOT_BLANK, INSTANT,
        st.fixed_dictionaries(
            fixed | {key: block(TREE[key], required=True) for key in REQUIRED_COLUMNS if isinstance(TREE[key], dict)},
            optional=optional
            | {"spot_prices": st.one_of(st.lists(list_item(TREE["spot_prices"]["[]"]), max_size=4), st.none(), ANY_JSON)},
        ),
        st.fixed_dictionaries({}, optional={key: st.one_of(st.just({}), st.none(), ANY_JSON) for key in DROPPED_COLUMNS}),
    ).flatmap(lambda entry: st.builds(lambda extra: {**extra, **entry}, unknown_fields(TREE)))


ENTRY = entry()
#: Every example holds one entry with both sentiment windows and their eight count map fields
#: (drawn whatever else is drawn), among up to two entries of any shape.
ENTRIES = st.builds(lambda first, others, at: others[:at] + [first] + others[at:],
                    entry(WINDOWS_WITH_COUNT_MAPS), st.lists(ENTRY, max_size=2), st.integers(0, 2))


# -- what a rebuilt entry must equal ---------------------------------------------------------------

def _expect(obj: dict, node: dict) -> dict:
    out = {}
    for key, value in obj.items():
        spec = node.get(key)
        if value is None:
            continue
        if spec is None:
            out[key] = value  # unknown: verbatim from _extra, even {}
        elif isinstance(spec, Field):
            if value == {} and spec.type_name.startswith("map"):
                continue  # an empty count map reads back as absent, like every empty object
            widen = spec.type_name == "float" and type(value) is int and abs(value) <= 2**53
            out[key] = float(value) if widen else as_compared_instant(value) if spec.type_name == "timestamp" else value
        elif "[]" in spec:
            out[key] = [_expect(item, spec["[]"]) for item in value] if typed_list(spec["[]"], value) else value
        elif type(value) is not dict:
            out[key] = value  # a block of the wrong type: verbatim
        elif inner := _expect(value, spec):
            out[key] = inner  # an object left empty reads back as absent
    return out


def expected(entry: dict) -> dict:
    kept = {k: v for k, v in entry.items() if k not in DROPPED_COLUMNS or v not in (None, {})}
    return _expect(kept, TREE)


# -- the property ----------------------------------------------------------------------------------

def _entry(**blocks) -> dict:
    """A small valid entry with ``blocks`` added (for the examples below)."""
    return {"symbol": "BTCUSDT", "snapshot_ts": "2026-01-15T05:00:00.000Z",
            "meta": {"session_id": "s-1", "schema_version": 7}, "spot_raw": {"mid": 1.5}, **blocks}


UNICODE_COUNTS = {"🚀": 3, "👨‍👩‍👧": 1, "🇯🇵": 2, "比特币": 4, "ビットコイン": 5, "é": 6, "e\u0301": 7, "\u0301": 8,
                  "": 0, "\x00": 9, "ｂｔｃ": 2**63 - 1, "مرحبا": -(2**63)}


def _windows(last_cycle, last_2_cycles=None) -> dict:
    return {"twitter_sentiment_windows": {"last_cycle": last_cycle, "last_2_cycles": last_2_cycles}}


#: Corner cases run every time, before the drawn examples.
EXAMPLES = [
    # every count map of both windows, keys in many scripts, NFC and NFD forms side by side, int64 extremes
    [_entry(**_windows({"posts_total": 3, "tag_counts": UNICODE_COUNTS, "cashtag_counts": {"$比特币": 1, "$BTC": 2},
                        "mention_counts": {"@ユーザー": 2, "@user": 1}, "url_domain_counts": {"例え.jp": 3, "bücher.de": 1}},
                       {"window_cycles": 2, "tag_counts": {"moon": 1, "🌕": 2}, "cashtag_counts": {"$ETH": 5},
                        "mention_counts": {"@a\u0300\u0316": 1}, "url_domain_counts": {"x.com": 10}}))],
    # every count map empty: each reads back as NULL, like every empty object
    [_entry(**_windows({key: {} for key in COUNT_MAPS}, {key: {} for key in COUNT_MAPS}))],
    # count maps that are not count maps go to _extra whole, their columns NULL, beside typed siblings:
    # beyond int64, a float, text, null values, a list, null; an unknown unicode key in the window
    [_entry(**_windows({"posts_total": 5, "tag_counts": {"🚀": 2**64, "ok": 1}, "cashtag_counts": {"x": 1.5},
                        "mention_counts": {"@名前": "3"}, "url_domain_counts": {"a.b": None}, "ключ": {"😀": 1}},
                       {"tag_counts": [1, 2], "cashtag_counts": None, "mention_counts": {}, "url_domain_counts": {"z": 1}}))],
    # empty and null windows, an empty windows block, and windows of the wrong type
    [_entry(**_windows({}, None)), _entry(twitter_sentiment_windows={}), _entry(twitter_sentiment_windows=[{"tag_counts": {"a": 1}}]),
     _entry(**_windows({"tag_counts": {}}, "not a window"))],
]


def _with_examples(test):
    for entries in reversed(EXAMPLES):
        test = example(entries)(test)
    return test


# max_examples: about 0.1 s an example (two exports, two read-backs); the CI profile (conftest.py)
# makes the run deterministic.
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@_with_examples
@given(ENTRIES)
def test_entries_round_trip_through_both_layouts(entries):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "archive" / DAY.strftime("%Y%m%d")
        folder.mkdir(parents=True)
        text = "".join(json.dumps(entry) + "\n" for entry in entries)  # NaN/Infinity tokens included
        (folder / "05.jsonl.gz").write_bytes(gzip.compress(text.encode()))
        for layout, rebuild in (("flat", rebuild_flat), ("nested", rebuild_nested)):
            out = Path(tmp) / layout
            manifest = export_day(DAY, str(Path(tmp) / "archive"), str(out), layout=layout, allow_incomplete=True).manifest
            assert (manifest.row_count, manifest.bad_line_count) == (len(entries), 0), manifest.bad_lines
            path = out / DAY.isoformat() / "data.parquet"
            assert pq.read_table(path).num_rows == len(entries)
            for index, row in enumerate(pl.read_parquet(path).to_dicts()):
                want = expected(entries[index])
                got = rebuild(row)  # ExtraConflict if a value is both in its column and in _extra
                assert same(got, want), f"{layout} entry {index}:\n got  {got!r}\n want {want!r}"


def test_rebuild_refuses_a_value_both_in_its_column_and_in_extra():
    """The rebuild merges ``_extra`` into the typed columns' entry: a declared block may be split
    between them, but a value present in both places is an export bug, never overwritten."""
    row = {"symbol": "X", "meta__session_id": "typed", "meta__schema_version": None,
           "twitter_sentiment_windows__last_cycle__tag_counts": {"a": 1},
           "_extra": json.dumps({"meta": {"brand_new": 1}})}
    assert rebuild_flat(row) == {"symbol": "X", "meta": {"session_id": "typed", "brand_new": 1},
                                 "twitter_sentiment_windows": {"last_cycle": {"tag_counts": {"a": 1}}}}
    conflicts = [
        ({"meta": {"session_id": "in extra"}}, "meta.session_id"),
        ({"twitter_sentiment_windows": {"last_cycle": {"tag_counts": {"b": 2**70}}}}, "twitter_sentiment_windows.last_cycle.tag_counts"),
        ({"meta": 5}, "meta"),
        ({"symbol": "Y"}, "symbol"),
    ]
    for extra, path in conflicts:
        with pytest.raises(ExtraConflict, match=rf"^{re.escape(path)} is both in its typed column"):
            rebuild_flat({**row, "_extra": json.dumps(extra)})
    # a NULL column beside its value in _extra is how a moved value looks: no conflict
    moved = {**row, "meta__session_id": None, "_extra": json.dumps({"meta": {"session_id": ["not", "text"]}})}
    assert rebuild_flat(moved)["meta"] == {"session_id": ["not", "text"]}
