"""The ``tier1`` projection: a compact row (~0.7 KB as JSON, against ~95 KB for the entry) for
dashboards and alerts, made from the entry as the Tier 2/3 export normalises it (``rows.py``), so
each field equals the Tier 2/3 column it comes from (a value the export moves to ``_extra`` is null
here too).

``TIER1_FIELDS`` is the one list of fields: name, Polars type, and one line of meaning (docs/live.md
prints it). Rows travel as JSON-ready dicts (instants as ISO text, ``...Z``); ``to_polars`` gives
them the declared types.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ..frames import ListColumn
from ..instants import NotInstants, parse_instant, to_instants

_TS = pl.Datetime("us", "UTC")

#: (name, type, meaning, path in the entry or None when computed)
TIER1_FIELDS: list[tuple[str, pl.DataType, str, tuple[str, ...] | None]] = [
    ("seq", pl.Int64, "position in the live feed's durable sequence (1, 2, 3, ...; never reused)", None),
    ("symbol", pl.String, "the entry's symbol (Tier 2/3 `symbol`)", ("symbol",)),
    ("snapshot_ts", _TS, "when the collector took the snapshot (`snapshot_ts`)", ("snapshot_ts",)),
    ("added_ts", _TS, "when the symbol was added to the watch list (`meta.added_ts`)", ("meta", "added_ts")),
    ("expired_ts", _TS, "when the watch ended and the entry was written: the event time (`meta.expired_ts`)", ("meta", "expired_ts")),
    ("last_sample_ts", _TS, "the last price sample's time (`meta.last_sample_ts`)", ("meta", "last_sample_ts")),
    ("session_id", pl.String, "the entry's unique id (`meta.session_id`; the live feed dedupes on it)", ("meta", "session_id")),
    ("mid", pl.Float64, "mid price at the snapshot (`spot_raw.mid`)", ("spot_raw", "mid")),
    ("bid", pl.Float64, "best bid (`spot_raw.bid`)", ("spot_raw", "bid")),
    ("ask", pl.Float64, "best ask (`spot_raw.ask`)", ("spot_raw", "ask")),
    ("spread_bps", pl.Float64, "bid-ask spread in basis points (`spot_raw.spread_bps`)", ("spot_raw", "spread_bps")),
    ("change_24h_pct", pl.Float64, "24 h price change in percent (`spot_raw.ticker24_chg`)", ("spot_raw", "ticker24_chg")),
    ("range_24h_pct", pl.Float64, "24 h high-low range in percent (`spot_raw.range_pct_24h`)", ("spot_raw", "range_pct_24h")),
    ("liquidity_usd", pl.Float64, "quote volume in USD, the liquidity measure (`spot_raw.liq_qv_usd`)", ("spot_raw", "liq_qv_usd")),
    ("liquidity_pct", pl.Float64, "liquidity percentile among the universe (`derived.liq_global_pct`)", ("derived", "liq_global_pct")),
    ("score", pl.Float64, "the final score, 0-100 (`scores.final`)", ("scores", "final")),
    ("posts_total", pl.Int64, "posts in the last sentiment cycle (`twitter_sentiment_windows.last_cycle.posts_total`)",
     ("twitter_sentiment_windows", "last_cycle", "posts_total")),
    ("posts_pos", pl.Int64, "positive posts in the last cycle (`...last_cycle.posts_pos`)", ("twitter_sentiment_windows", "last_cycle", "posts_pos")),
    ("posts_neu", pl.Int64, "neutral posts in the last cycle (`...last_cycle.posts_neu`)", ("twitter_sentiment_windows", "last_cycle", "posts_neu")),
    ("posts_neg", pl.Int64, "negative posts in the last cycle (`...last_cycle.posts_neg`)", ("twitter_sentiment_windows", "last_cycle", "posts_neg")),
    ("sentiment_mean", pl.Float64, "mean hybrid sentiment, -1 to 1 (`...last_cycle.hybrid_decision_stats.mean_score`)",
     ("twitter_sentiment_windows", "last_cycle", "hybrid_decision_stats", "mean_score")),
    ("lexicon_score", pl.Float64, "lexicon sentiment, -1 to 1 (`...last_cycle.lexicon_sentiment.score`)",
     ("twitter_sentiment_windows", "last_cycle", "lexicon_sentiment", "score")),
    ("is_silent", pl.Boolean, "no recent posts about the symbol (`...last_cycle.sentiment_activity.is_silent`)",
     ("twitter_sentiment_windows", "last_cycle", "sentiment_activity", "is_silent")),
    ("hours_since_latest_post", pl.Float64, "hours since the latest post (`...sentiment_activity.hours_since_latest_tweet`)",
     ("twitter_sentiment_windows", "last_cycle", "sentiment_activity", "hours_since_latest_tweet")),
    ("sp_n", pl.Int64, "`spot_prices` samples (null when the list is absent or not exportable)", None),
    ("sp_first_mid", pl.Float64, "mid of the first sample", None),
    ("sp_last_mid", pl.Float64, "mid of the last sample", None),
    ("sp_return", pl.Float64, "last mid / first mid - 1", None),
    ("sp_log_return", pl.Float64, "ln(last mid / first mid)", None),
    ("sp_mfe", pl.Float64, "maximum favourable excursion: highest mid / first mid - 1 (>= 0)", None),
    ("sp_mae", pl.Float64, "maximum adverse excursion: lowest mid / first mid - 1 (<= 0)", None),
    ("sp_max_drawdown", pl.Float64, "largest fall from a running high: max(1 - mid / highest mid so far) (>= 0)", None),
    ("sp_realized_vol", pl.Float64, "realized volatility: sqrt of the sum of squared log returns between samples", None),
    ("sp_median_spread_bps", pl.Float64, "median of the samples' `spread_bps`", None),
    ("archive_day", pl.Date, "the archive day folder the entry was read from (lineage)", None),
    ("archive_hour", pl.Int8, "the archive hour file it was read from (lineage)", None),
    ("file_offset", pl.Int64, "the byte offset of its gzip member in that file (lineage)", None),
    ("ingest_lag_ms", pl.Int64, "when the follower read it minus `expired_ts`, in milliseconds", None),
    ("problem", pl.String, "null, or why the entry is not a Tier 2/3 row (then only lineage is set)", None),
]
TIER1_SCHEMA: dict[str, pl.DataType] = {name: dtype for name, dtype, _, _ in TIER1_FIELDS}
_PATHS = [(name, dtype, path) for name, dtype, _, path in TIER1_FIELDS if path is not None]


def iso(instant: datetime) -> str:
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _get(entry: dict, path: tuple[str, ...]):
    value = entry
    for key in path:
        if type(value) is not dict:
            return None
        value = value.get(key)
    return value


def _value(dtype, value):
    if value is None:
        return None
    if dtype == _TS:
        instant = parse_instant(value)
        return iso(instant) if instant is not None else None
    if dtype == pl.Float64:
        return float(value) if type(value) in (int, float) else None
    if dtype == pl.Int64:
        return value if type(value) is int else None
    if dtype == pl.Boolean:
        return value if type(value) is bool else None
    return value if type(value) is str else None


_SPOT = ("sp_n", "sp_first_mid", "sp_last_mid", "sp_return", "sp_log_return", "sp_mfe", "sp_mae",
         "sp_max_drawdown", "sp_realized_vol", "sp_median_spread_bps")


def _spot_summary(value) -> dict:
    """The ``spot_prices`` summary of one entry (``spot_summaries`` of one)."""
    return spot_summaries([value])[0]


def spot_summaries(values: list) -> list[dict]:
    """The ``spot_prices`` summary of each entry's list, typed as the export types it, all at once
    (``frames.ListColumn``): a list it cannot type, or one holding a timestamp that is no instant,
    is null in Tier 2/3, and its summary is all null here."""
    builder, typed_ok = ListColumn("spot_prices"), []
    for value in values:
        typed_ok.append(builder.add(value) if type(value) is list else builder.add(None) and False)
    try:
        series = builder.series()
    except NotInstants:  # some list holds a timestamp that is no instant: find it entry by entry
        if len(values) == 1:
            return [dict.fromkeys(_SPOT)]
        return [_spot_summary(v) for v in values]
    column = series.to_arrow()
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets = column.offsets.to_numpy()
    items = column.values
    mids_all = pc.fill_null(items.field("mid"), float("nan")).to_numpy(zero_copy_only=False)
    spreads_all = pc.fill_null(items.field("spread_bps"), float("nan")).to_numpy(zero_copy_only=False)
    out = []
    for i, (value, ok) in enumerate(zip(values, typed_ok)):
        summary = dict.fromkeys(_SPOT)
        if ok:
            lo, hi = offsets[i], offsets[i + 1]
            _summarise(summary, mids_all[lo:hi], spreads_all[lo:hi])
        out.append(summary)
    return out


def _summarise(out: dict, mids, spreads) -> None:
    out["sp_n"] = len(mids)
    spreads = spreads[~np.isnan(spreads)]
    if len(spreads):
        out["sp_median_spread_bps"] = float(np.median(spreads))
    mids = mids[~np.isnan(mids)]
    if not len(mids):
        return
    first, last = float(mids[0]), float(mids[-1])
    out["sp_first_mid"], out["sp_last_mid"] = first, last
    if first > 0 and last > 0 and math.isfinite(first) and math.isfinite(last):
        out["sp_return"] = last / first - 1
        out["sp_log_return"] = math.log(last / first)
        out["sp_mfe"] = float(mids.max()) / first - 1
        out["sp_mae"] = float(mids.min()) / first - 1
    if (mids > 0).all() and np.isfinite(mids).all():
        highs = np.maximum.accumulate(mids)
        out["sp_max_drawdown"] = float((1 - mids / highs).max())
        steps = np.diff(np.log(mids))
        out["sp_realized_vol"] = float(np.sqrt((steps * steps).sum()))


_INSTANT_PATHS = [(name, path) for name, dtype, path in _PATHS if dtype == _TS]


def instant_texts(entries: list[dict | None]) -> list[dict]:
    """For each entry, its tier1 instants as canonical text (``...Z``, microseconds), converted by
    ``instants.to_instants`` in one call for all (a value that is not an instant: None; then each
    value is converted alone, as ``parse_instant`` would)."""
    texts = [_get(e, path) if e is not None else None for e in entries for _, path in _INSTANT_PATHS]
    texts = [t if type(t) is str else None for t in texts]
    try:
        converted = pc.strftime(to_instants(pa.array(texts, pa.string())), "%Y-%m-%dT%H:%M:%SZ").to_pylist()
    except (NotInstants, UnicodeEncodeError, pa.ArrowException):
        converted = [_value(_TS, t) for t in texts]
    width = len(_INSTANT_PATHS)
    return [dict(zip((n for n, _ in _INSTANT_PATHS), converted[i * width:(i + 1) * width])) for i in range(len(entries))]


def tier1_row(entry: dict | None, seq: int, day: str, hour: int, offset: int, ingested: float,
              problem: str | None = None, spot: dict | None = None, instants: dict | None = None) -> dict:
    """The ``tier1`` row of one normalised entry (None: not a row, ``problem`` says why);
    ``spot``: its ``spot_summaries`` result when the caller computed a batch of them."""
    row = dict.fromkeys(TIER1_SCHEMA)
    row.update(seq=seq, archive_day=day, archive_hour=hour, file_offset=offset, problem=problem)
    if entry is None:
        return row
    for name, dtype, path in _PATHS:
        if instants is None or name not in instants:
            row[name] = _value(dtype, _get(entry, path))
    if instants is not None:
        row.update(instants)
    row.update(_spot_summary(entry.get("spot_prices")) if spot is None else spot)
    if row["expired_ts"] is not None:
        expired = datetime.strptime(row["expired_ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        row["ingest_lag_ms"] = int(round((ingested - expired.timestamp()) * 1000))
    return row


def tier1_frame(rows: list[dict], columns: list[str] | None = None) -> pl.DataFrame:
    """Rows of the ``tier1`` projection as a DataFrame of the declared types (``columns``: a subset)."""
    names = list(TIER1_SCHEMA) if columns is None else columns
    staged = {n: (pl.String if TIER1_SCHEMA[n] in (_TS, pl.Date) else TIER1_SCHEMA[n]) for n in names}
    frame = pl.DataFrame([{n: r.get(n) for n in names} for r in rows], schema=staged, orient="row")
    casts = []
    for n in names:
        if TIER1_SCHEMA[n] == _TS:
            casts.append(pl.col(n).str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", time_zone="UTC"))
        elif TIER1_SCHEMA[n] == pl.Date:
            casts.append(pl.col(n).str.to_date("%Y-%m-%d"))
    return frame.with_columns(casts) if casts else frame
