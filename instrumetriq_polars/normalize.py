"""Make one decoded entry fit the declared schema, losing nothing.

Works in place on the dict orjson returned (copying ~2,400 entries a day would cost more than the
checks). After ``normalize``:

- empty objects are ``None`` (an empty *count map* stays an empty map: "no hashtags" is data);
- a key the schema does not declare, or a value of the wrong type, is moved out of the entry into
  the row's ``_extra`` document (same nesting as the entry), and its path is counted;
- ``norm`` and ``labels`` are dropped when empty, and kept in ``_extra`` when they are not;
- integers in float fields stay ints here; the frame builder widens them.

Lists of objects (``spot_prices``) are checked for unknown keys here; their values are typed by
the strict frame builder (see pipeline.py), which is faster than a Python loop over ~1.8M samples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .schema import DROPPED_COLUMNS, REQUIRED_COLUMNS, TREE, Field

_ONLY_INT, _ONLY_STR, _ONLY_DICT = {int}, {str}, {dict}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _is_int64(v) -> bool:
    return type(v) is int and _INT64_MIN <= v <= _INT64_MAX


def _is_count_map(v) -> bool:
    if type(v) is not dict:
        return False
    counts = v.values()
    return not counts or (set(map(type, counts)) <= _ONLY_INT and _INT64_MIN <= min(counts) and max(counts) <= _INT64_MAX)


# Type checks per declared type. Python's bool is an int: ``type(v) is`` keeps them apart.
_CHECKS = {
    "string": lambda v: type(v) is str,
    "int": _is_int64,
    "float": lambda v: type(v) is float or type(v) is int,
    "bool": lambda v: type(v) is bool,
    "list<string>": lambda v: type(v) is list and set(map(type, v)) <= _ONLY_STR,
    "map<string,int>": _is_count_map,
}


class RejectedEntry(Exception):
    """The entry lacks a required block (symbol, snapshot_ts, meta, spot_raw): it cannot be a row."""


@dataclass
class Normalized:
    """What ``normalize`` did to one entry: its ``_extra`` JSON text and the paths moved there."""

    extra: str | None
    unknown: list[str]
    mistyped: list[str]


def normalize(entry: dict) -> Normalized:
    """Normalise ``entry`` in place (see the module docstring). Raises RejectedEntry."""
    problems = [p for p in (_required_problem(key, entry.get(key)) for key in REQUIRED_COLUMNS) if p]
    if problems:
        raise RejectedEntry("entry cannot be exported: " + "; ".join(problems))
    walker = _Walker()
    extra: dict = {}
    for key in DROPPED_COLUMNS:
        value = entry.pop(key, None)
        if value not in (None, {}):
            extra[key] = value
            walker.unknown.append(key)
    walker.walk(TREE, entry, "", extra)
    return Normalized(_dumps(extra) if extra else None, walker.unknown, walker.mistyped)


def move_to_extra(entry: dict, column: str, extra_text: str | None) -> str:
    """Move a top-level value the frame builder could not type into the ``_extra`` text."""
    extra = json.loads(extra_text) if extra_text else {}
    extra[column] = entry.pop(column)
    return _dumps(extra)


class _Walker:
    def __init__(self) -> None:
        self.unknown: list[str] = []
        self.mistyped: list[str] = []

    def walk(self, node: dict, obj: dict, prefix: str, extra: dict) -> None:
        moved = []
        for key, value in obj.items():
            spec = node.get(key)
            if value is None:
                continue
            if spec is None:
                moved.append(key)
                self.unknown.append(prefix + key)
            elif type(spec) is Field:
                if not _CHECKS[spec.type_name](value):
                    moved.append(key)
                    self.mistyped.append(prefix + key)
            elif "[]" in spec:
                if not self._list_of_objects_ok(spec["[]"], value, prefix + key):
                    moved.append(key)
            elif type(value) is not dict:
                moved.append(key)
                self.mistyped.append(prefix + key)
            elif not value:
                obj[key] = None
            else:
                sub_extra: dict = {}
                self.walk(spec, value, prefix + key + ".", sub_extra)
                if sub_extra:
                    extra[key] = sub_extra
                if not value:  # everything inside moved out
                    obj[key] = None
        for key in moved:
            extra[key] = obj.pop(key)

    def _list_of_objects_ok(self, item_node: dict, value, path: str) -> bool:
        if type(value) is not list or not set(map(type, value)) <= _ONLY_DICT:
            self.mistyped.append(path)
            return False
        unknown = set().union(*value) - item_node.keys() if value else ()
        self.unknown.extend(f"{path}[].{key}" for key in sorted(unknown))
        return not unknown


def _required_problem(key: str, value) -> str | None:
    if value is None or value == {}:
        return f"required field '{key}' is missing or empty"
    expected = dict if type(TREE[key]) is dict else str
    if type(value) is not expected:
        return f"required field '{key}' is a {type(value).__name__}, not {'an object' if expected is dict else 'a string'}"
    return None


def _dumps(value) -> str:
    # The standard library, not orjson: orjson writes NaN as null and refuses integers beyond 64
    # bits, and _extra must keep exactly what the archive held.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
