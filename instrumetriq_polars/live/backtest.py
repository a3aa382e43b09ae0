"""Running alert rules off-line: ``check`` (a dry run on entry lines, such as the real fixture) and
``backtest`` (the published Tier 3 days of a range, read through ``dataset.scan``).

Both build the same ``tier1`` rows the live feed builds (``tier1.py``: from the Tier 3 columns the
fields come from, and ``spot_prices`` summarised by the same function) and evaluate them with the
same engine (``alerts.AlertEngine``) on event time, so a backtest gives the alerts the live run
gave for the same entries. Not available off-line: the lineage fields (``seq``, ``archive_day``,
``archive_hour``, ``file_offset``, ``ingest_lag_ms``) are null; ``absent`` rules use event time
(the clock stops where a silence reaches ``after``), where the live run uses the wall clock.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl

from ..dataset import column, list_partitions, scan
from .alerts import AlertEngine
from .rules import RuleSet, load_rules, template_fields
from .tier1 import TIER1_FIELDS, TIER1_SCHEMA, _spot_summary, tier1_frame, tier1_row

SPOT_FIELDS = [name for name, _, _, _ in TIER1_FIELDS if name.startswith("sp_")]


def rules_schema() -> dict:
    """The fields a rule may name: the ``tier1`` projection's."""
    return dict(TIER1_SCHEMA)


def load(path: str | Path) -> RuleSet:
    return load_rules(path, rules_schema())


def evaluate(ruleset: RuleSet, frame: pl.DataFrame) -> list[dict]:
    """Every notification the rules give on ``frame`` (tier1 rows), in event-time order."""
    engine = AlertEngine(ruleset, wall_clock=False)
    return engine.push(frame) + engine.flush()


def check(path: str | Path, lines_file: str | Path) -> tuple[RuleSet, int, list[dict]]:
    """Load the rules and dry-run them on the entries of ``lines_file`` (a .jsonl or .jsonl.gz
    of archive entries): (rules, entries evaluated, notifications)."""
    from .rows import normalized  # the export's reader: only needed here

    ruleset = load(path)
    opener = gzip.open if str(lines_file).endswith(".gz") else open
    with opener(lines_file, "rb") as f:
        texts = [line if line.endswith(b"\n") else line + b"\n" for line in f if line.strip()]
    rows = []
    for number, (entry, problem) in enumerate(normalized(texts, "20000101/00.jsonl.gz"), 1):
        if entry is not None:
            rows.append(tier1_row(entry, number, "2000-01-01", 0, 0, 0.0, problem))
    frame = tier1_frame(rows).sort("expired_ts", maintain_order=True)
    return ruleset, frame.height, evaluate(ruleset, frame)


def tier3_rows(location: str, start=None, end=None, *, fields: set[str] | None = None,
               storage_options: dict | None = None) -> pl.DataFrame:
    """The ``tier1`` rows of the published Tier 3 days from ``start`` to ``end`` (``fields``: only
    those, plus the event time and symbol), in event-time order."""
    days = [d for d in list_partitions(location, start, end, tier="daily", storage_options=storage_options) if d.published]
    lazy = scan(location, start, end, tier="daily", storage_options=storage_options)
    layout = days[0].manifest.layout if days else "flat"
    wanted = set(TIER1_SCHEMA) if fields is None else {*fields, "expired_ts", "symbol"}
    exprs = []
    for name, dtype, _, path in TIER1_FIELDS:
        if name in SPOT_FIELDS or name not in wanted:
            continue
        if path is None:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
        else:
            exprs.append(column(".".join(path), layout).cast(dtype, strict=False).alias(name))
    spots = wanted & set(SPOT_FIELDS)
    if spots:
        sample = pl.element().struct.with_fields(pl.element().struct.field("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"))
        exprs.append(column("spot_prices", layout).list.eval(sample).alias("__spot"))
    frame = lazy.select(exprs).collect()
    if spots:
        summaries = [_spot_summary(value) for value in frame.get_column("__spot").to_list()]
        frame = frame.drop("__spot").with_columns(
            pl.Series(name, [s[name] for s in summaries], dtype=TIER1_SCHEMA[name]) for name in sorted(spots))
    return frame.sort("expired_ts", maintain_order=True)


def backtest(path: str | Path, location: str, start=None, end=None, *, storage_options: dict | None = None) -> tuple[RuleSet, int, list[dict]]:
    """The notifications the rules of ``path`` give on the published days of ``location`` from
    ``start`` to ``end``: (rules, entries evaluated, notifications)."""
    ruleset = load(path)
    frame = tier3_rows(location, start, end, fields=ruleset.needed_fields() | _summary_fields(ruleset),
                       storage_options=storage_options)
    return ruleset, frame.height, evaluate(ruleset, frame)


def _summary_fields(ruleset: RuleSet) -> set[str]:
    return {name for rule in ruleset.rules for name in template_fields(rule.summary) if name in TIER1_SCHEMA}
