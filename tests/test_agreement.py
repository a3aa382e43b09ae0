"""Export and verify follow the same rules: a day the export publishes as complete passes verify
(warnings at most), whatever legal oddity its entries hold.

One synthetic entry is mutated in every way below, each mutation on its own archive line: every
declared leaf set to null, a wrong type, an empty or blank string, an unparseable timestamp (every
string field gets one; every timestamp field gets text that is no instant, 7 fraction digits, an
impossible date, a date alone, a number, and instants spelled without an offset or with another
one), NaN and +-Infinity in every float field, an integer beyond 64 bits; every
block made empty, only nulls, only unknown keys, only mistyped values, or given an unknown key. The
day is exported with --allow-incomplete (lines the export refuses become bad lines), then the
mutations it exported are exported again as a complete day and verified, with the cross-check.
"""

from __future__ import annotations

import copy
import gzip
import json
import random
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from instrumetriq_polars import export_day, verify_day
from instrumetriq_polars.schema import TREE, Field
from instrumetriq_polars.synthetic import make_entry

DAY = date(2026, 1, 15)
AFTER = date(2026, 1, 16)
UNKNOWN = "zz_not_declared"


def base_entry() -> dict:
    entry = make_entry(random.Random(11), datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc))
    entry["spot_prices"] = entry["spot_prices"][:3]  # the mutations are elsewhere: keep lines small
    entry["futures_raw"] = entry.get("futures_raw") or {"contract": "C000USDT", "funding_now": 0.0001}
    return entry


def _leaf_values(spec: Field) -> dict[str, object]:
    values = {"null": None, "a list": [1]}
    if spec.type_name == "float":
        values.update({"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf"), "2**70": 2**70})
    elif spec.type_name == "int":
        values.update({"-1": -1, "2**70": 2**70, "a float": 1.5})
    elif spec.type_name == "string":
        values.update({"empty": "", "blank": " ", "not a timestamp": "not-a-time", "a number": 7})
    elif spec.type_name == "timestamp":
        values.update({"empty": "", "blank": " ", "not a timestamp": "not-a-time", "a number": 1767225600,
                       "7 fraction digits": "2026-01-15T05:00:00.1234567Z", "an impossible date": "2026-02-30T00:00:00Z",
                       "a date alone": "2026-01-15", "without an offset": "2026-01-15 05:00:00.25",
                       "with another offset": "2026-01-15T07:00:00+02:00"})
    elif spec.type_name == "bool":
        values.update({"a string": "true"})
    return values


def mutations(entry: dict) -> dict[str, dict]:
    """name -> a mutated copy of ``entry``."""
    out: dict[str, dict] = {}

    def walk(node: dict, spec: dict, path: tuple[str, ...]) -> None:
        for key, child_spec in spec.items():
            if key == "[]" or key not in node:
                continue
            where = path + (key,)
            name = ".".join(where)
            if isinstance(child_spec, Field):
                for label, value in _leaf_values(child_spec).items():
                    out[f"{name} = {label}"] = _set(entry, where, value)
            elif "[]" in child_spec:
                out[f"{name} = []"] = _set(entry, where, [])
                out[f"{name} = [1, 2]"] = _set(entry, where, [1, 2])
                item = dict(node[key][0]) if node[key] else {}
                nan_item = {k: float("nan") for k, v in item.items() if isinstance(v, float)}
                out[f"{name}[0] NaN"] = _set(entry, where, [{**item, **nan_item}, *node[key][1:]])
                out[f"{name}[0] unknown key"] = _set(entry, where, [{**item, UNKNOWN: 1}, *node[key][1:]])
                for field, spec in child_spec["[]"].items():  # each way a sample's timestamp can be
                    if spec.type_name == "timestamp":
                        for label, value in _leaf_values(spec).items():
                            out[f"{name}.{field} = {label}"] = _set(entry, where, [{**item, field: value}, *node[key][1:]])
            elif isinstance(node[key], dict):
                block = node[key]
                out[f"{name} = {{}}"] = _set(entry, where, {})
                out[f"{name} only nulls"] = _set(entry, where, dict.fromkeys(block))
                out[f"{name} only unknown keys"] = _set(entry, where, {UNKNOWN: 1})
                out[f"{name} only mistyped values"] = _set(entry, where, {k: [1] for k in block})
                out[f"{name} plus an unknown key"] = _set(entry, where, {**block, UNKNOWN: 1})
                walk(block, child_spec, where)

    walk(entry, TREE, ())
    out["unknown top-level key"] = {**copy.deepcopy(entry), UNKNOWN: {"a": 1}}
    return out


def _set(entry: dict, path: tuple[str, ...], value) -> dict:
    mutated = copy.deepcopy(entry)
    node = mutated
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return mutated


def write_day(root: Path, entries: list[dict]) -> list[tuple[str, int]]:
    """The entries spread over the 24 hour files (Python's json, NaN written as the collector
    does); returns each entry's (hour file, line)."""
    folder = root / DAY.strftime("%Y%m%d")
    folder.mkdir(parents=True)
    hours: list[list[str]] = [[] for _ in range(24)]
    where = []
    for index, entry in enumerate(entries):
        hours[index % 24].append(json.dumps(entry))
        where.append((f"{DAY:%Y%m%d}/{index % 24:02d}.jsonl.gz", len(hours[index % 24])))
    for hour, lines in enumerate(hours):
        (folder / f"{hour:02d}.jsonl.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    return where


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    entry = base_entry()
    cases = mutations(entry)
    names = list(cases)
    root = tmp_path_factory.mktemp("agreement")
    where = write_day(root / "archive_all", [cases[n] for n in names])
    first = export_day(DAY, str(root / "archive_all"), str(root / "out_all"), allow_incomplete=True, today=AFTER)
    refused = {(b["file"], b["line"]) for b in first.manifest.bad_lines}
    exported = [n for n, w in zip(names, where) if w not in refused]
    return root, entry, cases, names, exported, first


def test_the_sweep_covers_every_kind(sweep):
    _, _, cases, names, exported, first = sweep
    assert len(names) > 1000
    assert first.manifest.bad_line_count == len(names) - len(exported) < len(names)
    for kind in ("= NaN", "= -Infinity", "= not a timestamp", "only unknown keys", "only nulls", "symbol = empty",
                 "meta.added_ts = 7 fraction digits", "spot_prices.ts = an impossible date"):
        assert any(kind in name for name in names), kind


@pytest.mark.slow
def test_a_day_published_complete_passes_verify(sweep):
    root, entry, cases, _, exported, _ = sweep
    archive = root / "archive_ok"
    write_day(archive, [entry] + [cases[n] for n in exported])
    result = export_day(DAY, str(archive), str(root / "out_ok"), today=AFTER)  # complete: no bad line
    assert not result.manifest.is_partial
    checked = verify_day(DAY, str(root / "out_ok"), against_archive=str(archive), sample_size=len(exported) + 1)
    assert checked.status != "FAIL", checked.summary()


def test_refused_lines_are_those_that_cannot_be_rows(sweep):
    """What the export refuses, it refuses for a required block or symbol/snapshot_ts: an optional
    block or field never costs a line."""
    _, _, _, names, exported, _ = sweep
    refused = sorted(set(names) - set(exported))
    required = ("symbol", "snapshot_ts", "meta", "spot_raw")
    assert refused and all(name.split(" ")[0].split(".")[0] in required for name in refused), refused
