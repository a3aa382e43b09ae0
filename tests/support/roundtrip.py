"""Rebuild archive entries from exported rows, and canonicalise source entries the same way, so the
two compare equal exactly when nothing but the documented normalisations happened.

Timestamps are compared as instants. The source's text is read by ``oracle_instant``, this
module's own reading of the documented rule (docs/dataset.md), not by the exporter's
parser: a regular expression for the grammar and the standard library's calendar arithmetic."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta, timezone

from instrumetriq_polars.schema import DROPPED_COLUMNS, EXTRA_COLUMN, LINEAGE_COLUMNS, SEPARATOR, TREE, Field

_INSTANT = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2})(?::([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,6}))?)?)?"
    r"(Z|([+-])([0-9]{2})(?::?([0-9]{2}))?)?"
)


def oracle_instant(text) -> datetime | None:
    """The instant ``text`` is by the documented rule, or None: ``YYYY-MM-DD``, ``T`` or a space,
    ``HH[:MM[:SS[.f{1,6}]]]``, then ``Z``, ``+-HH[[:]MM]`` (offset hours 00-23) or nothing (UTC); a
    real calendar date and time; in the years 0001-9999 once in UTC."""
    match = _INSTANT.fullmatch(text) if isinstance(text, str) else None
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone, sign, off_h, off_m = match.groups()
    shift = 400 if int(year) < 400 else 0  # the calendar repeats every 400 years: year 0000 computed as 0400
    try:
        moment = datetime(int(year) + shift, int(month), int(day), int(hour), int(minute or 0), int(second or 0),
                          int((fraction or "0").ljust(6, "0")), tzinfo=timezone.utc)
        if sign:
            if int(off_h) > 23 or int(off_m or 0) > 59:
                return None
            moment -= (1 if sign == "+" else -1) * timedelta(hours=int(off_h), minutes=int(off_m or 0))
        if moment.year - shift < 1:
            return None
        return moment.replace(year=moment.year - shift)
    except (ValueError, OverflowError):
        return None


def as_compared_instant(value):
    """A timestamp as compared: a typed value (a datetime) in UTC, text that is an instant as that
    instant, anything else (the export keeps it, in ``_extra``) as it is."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc)
    instant = oracle_instant(value)
    return value if instant is None else instant


def typed(spec: Field, value) -> bool:
    """Whether ``value`` is of ``spec``'s declared type, as the documentation says (the export
    moves any other value to ``_extra``)."""
    kind = spec.type_name
    if kind == "float":
        return type(value) is float or (type(value) is int and abs(value) <= 2**53)
    if kind == "int":
        return type(value) is int and -(2**63) <= value < 2**63
    if kind == "string":
        return type(value) is str
    if kind == "timestamp":
        return oracle_instant(value) is not None
    if kind == "bool":
        return type(value) is bool
    if kind == "list<string>":
        return type(value) is list and all(type(v) is str for v in value)
    return type(value) is dict and all(type(v) is int and -(2**63) <= v < 2**63 for v in value.values())


def typed_list(node: dict, value) -> bool:
    """Whether a list of objects is exported typed: every item an object of declared keys whose
    values are NULL or of their type (otherwise the whole list goes to ``_extra``, verbatim)."""
    return type(value) is list and all(
        type(item) is dict and all(k in node and (v is None or typed(node[k], v)) for k, v in item.items())
        for item in value
    )


def canonical_source(entry: dict) -> dict:
    """The documented normalisations applied to a source entry (by the reference decoder)."""
    entry = {k: v for k, v in entry.items() if k not in DROPPED_COLUMNS or v not in (None, {})}
    return _canon(entry, TREE, source=True)


def _canon(value, node, source: bool = False):
    """``source``: ``value`` is from the archive (a list of objects with a value of the wrong type
    stays verbatim, as the export keeps it); otherwise from the typed columns."""
    if isinstance(node, Field):
        if node.type_name == "float" and type(value) is int and abs(value) <= 2**53:
            return float(value)  # held exactly; a bigger int is kept (in _extra), not rounded
        if node.type_name == "timestamp":
            return as_compared_instant(value)
        return value
    if isinstance(value, dict) and isinstance(node, dict) and "[]" not in node:
        out = {}
        for key, item in value.items():
            child = node.get(key)
            item = _canon(item, child, source) if child is not None else item
            if item is None or item == {}:
                continue
            out[key] = item
        return out
    if isinstance(value, list) and isinstance(node, dict) and "[]" in node:
        if source and not typed_list(node["[]"], value):
            return value
        return [_canon(item, node["[]"], source) if isinstance(item, dict) else item for item in value]
    return value


def lineage(row: dict) -> tuple:
    """The row's lineage columns: (archive_day, archive_hour)."""
    return tuple(row[name] for name in LINEAGE_COLUMNS)


def rebuild_flat(row: dict) -> dict:
    nested: dict = {}
    for name, value in row.items():
        if name == EXTRA_COLUMN or name in LINEAGE_COLUMNS:
            continue
        parts = name.split(SEPARATOR)
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _finish(nested, row.get(EXTRA_COLUMN))


def rebuild_nested(row: dict) -> dict:
    return _finish({k: v for k, v in row.items() if k != EXTRA_COLUMN and k not in LINEAGE_COLUMNS}, row.get(EXTRA_COLUMN))


def _finish(entry: dict, extra_text: str | None) -> dict:
    entry = _canon(entry, TREE)
    if extra_text:
        _merge(entry, json.loads(extra_text), TREE)
    return entry  # a timestamp from _extra stays text: it is no instant, as in the canonical source


class ExtraConflict(AssertionError):
    """A value is both in its typed column and in ``_extra``: the export must have put it in
    exactly one place (the column is NULL when the value went to ``_extra``)."""


def _merge(target: dict, extra: dict, node, path: tuple[str, ...] = ()) -> None:
    """Put ``_extra``'s values back into the entry rebuilt from the typed columns. Only a declared
    block may come from both (some of its fields typed, others in ``_extra``); any other key found
    in both places is a conflict, never overwritten."""
    for key, value in extra.items():
        child = node.get(key) if isinstance(node, dict) else None
        here = target.get(key)
        is_block = isinstance(child, dict) and "[]" not in child
        if is_block and isinstance(value, dict) and isinstance(here, dict):
            _merge(here, value, child, (*path, key))
        elif key in target:
            where = ".".join((*path, key))
            raise ExtraConflict(f"{where} is both in its typed column ({here!r}) and in _extra ({value!r})")
        else:
            target[key] = value


def same(a, b) -> bool:
    """Deep equality where NaN equals NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b and type(a) is type(b)
