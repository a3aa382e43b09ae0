"""Make one decoded entry fit the declared schema, losing nothing.

Works in place on the dict orjson returned (copying ~2,400 entries a day would cost more than the
checks). After ``normalize``:

- empty objects are ``None``, empty count maps included;
- a key the schema does not declare, or a value of the wrong type, is moved out of the entry into
  the row's ``_extra`` document (same nesting as the entry), and its path is counted;
- ``norm`` and ``labels`` are dropped when empty, and kept in ``_extra`` when they are not;
- integers in float fields stay ints here and the frame builder widens them; one beyond 2**53,
  which a float64 would round (``schema.exact_float``), is mistyped;
- in an entry decoded by orjson, a float in a float field of ``decode.ORJSON_ROUNDED`` or more in
  magnitude is mistyped too: it may be an integer orjson rounded, and the caller re-decodes the
  entry with ``json.loads`` (as for any entry with ``_extra``), whose numbers are exact;
- for entries decoded by ``json.loads`` (``by_stdlib``), text holding a lone surrogate is mistyped;
- a timestamp that is not an instant (``instants.py``) is mistyped. Parsing one value costs ~40 us,
  so the export defers the test: ``normalize`` collects the entry's timestamp texts into a list the
  caller tests in one vectorised call per hour, and normalises the hour again, each timestamp
  parsed here, only when that call fails (``source.py``).

An entry whose required field (``REQUIRED_COLUMNS``) is missing, null, blank text, a
``snapshot_ts`` that is not an instant (when timestamps are parsed here), or a block
that holds no declared value once normalised (only nulls, unknown keys or wrong-typed values) is
rejected: it cannot be a row (``required_problem`` decides, and the verifier applies the same
function to the rows it samples).

Lists of objects (``spot_prices``) are checked for unknown keys here; their values are typed by
pyarrow as each entry is read (``frames.ListColumn``), faster than a Python loop over ~1.8M
samples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from datetime import datetime

from .decode import ORJSON_ROUNDED, deep_json
from .instants import parse_instant
from .schema import DROPPED_COLUMNS, EXACT_FLOAT_INT, REQUIRED_COLUMNS, TREE, Field
from .text import representable

_ONLY_INT, _ONLY_STR, _ONLY_DICT = {int}, {str}, {dict}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _is_int64(v) -> bool:
    return type(v) is int and _INT64_MIN <= v <= _INT64_MAX


def _is_count_map(v) -> bool:
    if type(v) is not dict:
        return False
    counts = v.values()
    return not counts or (set(map(type, counts)) <= _ONLY_INT and _INT64_MIN <= min(counts) and max(counts) <= _INT64_MAX)


def _is_exact_float(v) -> bool:
    """``schema.exact_float(v) is not None``, inline: it runs for every float leaf."""
    return type(v) is float or (type(v) is int and -EXACT_FLOAT_INT <= v <= EXACT_FLOAT_INT)


# Type checks per declared type, for entries decoded by orjson. Python's bool is an int:
# ``type(v) is`` keeps them apart. orjson decodes no NaN or infinity (it refuses the line).
_CHECKS = {
    "string": lambda v: type(v) is str,
    "timestamp": lambda v: type(v) is str,  # parsed at once for the hour (see the module docstring)
    "int": _is_int64,
    "float": lambda v: (type(v) is float and -ORJSON_ROUNDED < v < ORJSON_ROUNDED)
    or (type(v) is int and -EXACT_FLOAT_INT <= v <= EXACT_FLOAT_INT),
    "bool": lambda v: type(v) is bool,
    "list<string>": lambda v: type(v) is list and set(map(type, v)) <= _ONLY_STR,
    "map<string,int>": _is_count_map,
}


def _is_text(v) -> bool:
    """A str UTF-8 can encode. ``json.loads`` keeps a lone surrogate such as ``"\\ud800"`` (orjson
    refuses the line), and Parquet text cannot hold one: such a value is mistyped."""
    if type(v) is not str:
        return False
    try:
        v.encode()
    except UnicodeEncodeError:
        return False
    return True


# The checks for entries decoded by json.loads: numbers are exact (a float of any size, NaN, inf),
# text is checked.
_STDLIB_CHECKS = {
    **_CHECKS,
    "float": _is_exact_float,
    "string": _is_text,
    "timestamp": _is_text,
    "list<string>": lambda v: type(v) is list and all(map(_is_text, v)),
    "map<string,int>": lambda v: _is_count_map(v) and all(map(_is_text, v)),
}


def _parsed(checks: dict) -> dict:
    """``checks`` with each timestamp parsed: text that is an instant."""
    text = checks["string"]
    return {**checks, "timestamp": lambda v: text(v) and parse_instant(v) is not None}


_PARSED_CHECKS, _PARSED_STDLIB_CHECKS = _parsed(_CHECKS), _parsed(_STDLIB_CHECKS)


class RejectedEntry(Exception):
    """The entry lacks a required block (symbol, snapshot_ts, meta, spot_raw): it cannot be a row."""


@dataclass
class Normalized:
    """What ``normalize`` did to one entry: its ``_extra`` JSON text and the paths moved there."""

    extra: str | None
    unknown: list[str]
    mistyped: list[str]


def normalize(entry: dict, by_stdlib: bool = False, timestamps: list[str] | None = None) -> Normalized:
    """Normalise ``entry`` in place (see the module docstring). Raises RejectedEntry.

    ``by_stdlib``: the entry was decoded by ``json.loads``: its numbers are exact, and its strings
    may hold lone surrogates, which are checked (orjson-decoded text needs no check).
    ``timestamps``: a list the entry's timestamp texts are appended to, for the caller to test
    (``instants.are_instants``); None: each is parsed here, and one that is not an instant is
    mistyped (a ``snapshot_ts`` rejects the entry)."""
    if timestamps is None:
        checks = _PARSED_STDLIB_CHECKS if by_stdlib else _PARSED_CHECKS
    else:
        checks = _STDLIB_CHECKS if by_stdlib else _CHECKS
    _require(entry, checks, normalised=False)
    walker = _Walker(checks, timestamps)
    extra: dict = {}
    for key in DROPPED_COLUMNS:
        value = entry.pop(key, None)
        if value not in (None, {}):
            extra[key] = value
            walker.unknown.append(key)
    walker.walk(walker.tree, entry, "", extra)
    _require(entry, checks, normalised=True)  # again: what is left once unknown and mistyped values moved out
    return Normalized(_dumps(extra) if extra else None, walker.unknown, walker.mistyped)


def move_to_extra(entry: dict, column: str, extra_text: str | None) -> str:
    """Move a top-level value the frame builder could not type into the ``_extra`` text."""
    return add_to_extra(extra_text, column, entry.pop(column))


def add_to_extra(extra_text: str | None, column: str, value) -> str:
    """``extra_text`` with a top-level ``column: value`` added."""
    with deep_json():
        extra = json.loads(extra_text) if extra_text else {}
    extra[column] = value
    return _dumps(extra)


#: What the walk does with a declared key: test a leaf, check a list of objects, walk a block. The
#: most common leaves of orjson-decoded entries are tested inline, without a call (``_FAST``).
_LEAF, _LIST, _BLOCK, _FLOAT, _INT, _STR = 0, 1, 2, 3, 4, 5
_FAST = {"float": _FLOAT, "int": _INT, "string": _STR}


def _compiled(node: dict, checks: dict, top: bool = True) -> dict:
    """``node`` (a ``TREE`` block) as key -> (kind, payload, flag), for the walk: a leaf's check
    function and whether it is a timestamp; a list's item node; a block's compiled node and
    whether it is a required top-level block. Built once per set of checks (measured: the walk
    is the building thread's largest Python step)."""
    compiled = {}
    for key, spec in node.items():
        if type(spec) is Field:
            fast = _FAST.get(spec.type_name) if checks[spec.type_name] is _CHECKS[spec.type_name] else None
            compiled[key] = (fast or _LEAF, checks[spec.type_name], spec.type_name == "timestamp")
        elif "[]" in spec:
            compiled[key] = (_LIST, spec["[]"], False)
        else:
            compiled[key] = (_BLOCK, _compiled(spec, checks, False), top and key in REQUIRED_COLUMNS)
    return compiled


_COMPILED = {id(checks): _compiled(TREE, checks) for checks in (_CHECKS, _STDLIB_CHECKS, _PARSED_CHECKS, _PARSED_STDLIB_CHECKS)}


class _Walker:
    def __init__(self, checks: dict, timestamps: list[str] | None) -> None:
        self.tree = _COMPILED[id(checks)]
        self.timestamps = timestamps
        self.unknown: list[str] = []
        self.mistyped: list[str] = []

    def walk(self, node: dict, obj: dict, prefix: str, extra: dict) -> None:
        """Normalise the block ``obj`` against ``node`` (``_compiled``), moving what does not fit
        into ``extra``."""
        moved = []
        timestamps = self.timestamps
        for key, value in obj.items():
            if value is None:
                continue
            spec = node.get(key)
            if spec is None:
                moved.append(key)
                self.unknown.append(prefix + representable(key))  # a key from the input: the manifest counts it
                continue
            kind, payload, flag = spec
            if kind >= _FLOAT:  # a leaf tested inline: _CHECKS' float, int and string tests
                typed = type(value)
                if kind == _FLOAT:
                    ok = ((typed is float and -ORJSON_ROUNDED < value < ORJSON_ROUNDED)
                          or (typed is int and -EXACT_FLOAT_INT <= value <= EXACT_FLOAT_INT))
                else:
                    ok = typed is str if kind == _STR else typed is int and _INT64_MIN <= value <= _INT64_MAX
                if not ok:
                    moved.append(key)
                    self.mistyped.append(prefix + key)
            elif kind == _LEAF:
                if not payload(value):
                    moved.append(key)
                    self.mistyped.append(prefix + key)
                elif flag and timestamps is not None:
                    timestamps.append(value)
                elif not value and type(value) is dict:
                    obj[key] = None  # an empty count map: NULL, like every empty object
            elif kind == _LIST:
                if not self._list_of_objects_ok(payload, value, prefix + key):
                    moved.append(key)
            elif type(value) is not dict:
                moved.append(key)
                self.mistyped.append(prefix + key)
            elif not value:
                obj[key] = None
            else:
                sub_extra: dict = {}
                self.walk(payload, value, prefix + key + ".", sub_extra)
                if sub_extra:
                    extra[key] = sub_extra
                if not value and not flag:
                    obj[key] = None  # everything inside moved out (a required block is rejected after the walk)
        for key in moved:
            extra[key] = obj.pop(key)

    def _list_of_objects_ok(self, item_node: dict, value, path: str) -> bool:
        if type(value) is not list or not set(map(type, value)) <= _ONLY_DICT:
            self.mistyped.append(path)
            return False
        unknown = set().union(*value) - item_node.keys() if value else ()
        self.unknown.extend(f"{path}[].{representable(key)}" for key in sorted(unknown))
        return not unknown


def _require(entry: dict, checks: dict, normalised: bool = False) -> None:
    problems = [p for p in (required_problem(key, entry.get(key), checks, normalised) for key in REQUIRED_COLUMNS) if p]
    if problems:
        raise RejectedEntry("entry cannot be exported: " + "; ".join(problems))


def required_problem(key: str, value, checks: dict = _CHECKS, normalised: bool = True) -> str | None:
    """Why ``value`` cannot be the required field ``key`` of a row; None when it can. The one rule
    for required fields: the export applies it to each entry (before and after normalising), the
    verifier to each sampled row rebuilt into an entry. ``normalised``: unknown and wrong-typed
    values have been moved out of ``value`` (an empty block then held only those). A timestamp
    read from a day's file (a datetime: export version 2 typed it) is an instant."""
    if value is None or (value == {} and not normalised):
        return f"required field '{key}' is missing or empty"
    spec = TREE[key]
    if type(spec) is Field and spec.type_name == "timestamp" and isinstance(value, datetime):
        return None
    expected = dict if type(spec) is dict else str
    if type(value) is not expected:
        return f"required field '{key}' is a {type(value).__name__}, not {'an object' if expected is dict else 'a string'}"
    if expected is str:
        if not checks["string"](value):
            return f"required field '{key}' is not valid Unicode text (it holds a lone surrogate)"
        if not value.strip():
            return f"required field '{key}' is blank ({value!r})"
        if not checks[spec.type_name](value):
            return f"required field '{key}' is not an ISO 8601 instant ({value!r})"
    elif not _holds_value(value):
        return f"required field '{key}' holds no declared value (only nulls, unknown keys or values of the wrong type)"
    return None


def _holds_value(node) -> bool:
    """A value other than null is somewhere in ``node`` (a block as normalised: only declared
    keys). A loop, not recursion: a block may nest as deep as orjson reads (decode.MAX_DEPTH)."""
    pending = [node]
    while pending:
        node = pending.pop()
        if type(node) is dict:
            pending.extend(node.values())
        elif node is not None:
            return True
    return False


def _dumps(value) -> str:
    # The standard library, not orjson: orjson writes NaN as null and refuses integers beyond 64
    # bits, and _extra must keep exactly what the archive held.
    # Inside deep_json(): an entry may nest as deep as orjson reads (decode.MAX_DEPTH).
    with deep_json():
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        try:
            text.encode()
        except UnicodeEncodeError:  # a lone surrogate (from json.loads): keep it as a \uXXXX escape
            text = json.dumps(value, separators=(",", ":"))
    return text
