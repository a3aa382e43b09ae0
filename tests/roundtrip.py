"""Rebuild archive entries from exported rows, and canonicalise source entries the same way, so the
two compare equal exactly when nothing but the documented normalisations happened."""

from __future__ import annotations

import json
import math

from instrumetriq_polars.schema import DROPPED_COLUMNS, EXTRA_COLUMN, SEPARATOR, TREE, Field


def canonical_source(entry: dict) -> dict:
    """The documented normalisations applied to a source entry (by the reference decoder)."""
    entry = {k: v for k, v in entry.items() if k not in DROPPED_COLUMNS or v not in (None, {})}
    return _canon(entry, TREE)


def _canon(value, node):
    if isinstance(node, Field):
        if node.type_name == "float" and type(value) is int and abs(value) <= 2**53:
            return float(value)  # held exactly; a bigger int is kept (in _extra), not rounded
        return value
    if isinstance(value, dict) and isinstance(node, dict) and "[]" not in node:
        out = {}
        for key, item in value.items():
            child = node.get(key)
            item = _canon(item, child) if child is not None else item
            if item is None or item == {}:
                continue
            out[key] = item
        return out
    if isinstance(value, list) and isinstance(node, dict) and "[]" in node:
        return [_canon(item, node["[]"]) if isinstance(item, dict) else item for item in value]
    return value


def rebuild_flat(row: dict) -> dict:
    nested: dict = {}
    for name, value in row.items():
        if name == EXTRA_COLUMN:
            continue
        parts = name.split(SEPARATOR)
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _finish(nested, row.get(EXTRA_COLUMN))


def rebuild_nested(row: dict) -> dict:
    return _finish({k: v for k, v in row.items() if k != EXTRA_COLUMN}, row.get(EXTRA_COLUMN))


def _finish(entry: dict, extra_text: str | None) -> dict:
    entry = _canon(entry, TREE)
    if extra_text:
        _merge(entry, json.loads(extra_text), TREE)
    return entry


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
