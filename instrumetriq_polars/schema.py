"""The declared Tier 3 schema: one table of entry path -> type, and everything derived from it.

Every exported day has exactly these columns with these types, whatever fields the day's entries
happen to contain. The table lists every field of a v7 archive entry (the reference schema plus the
fields seen in real archives: ``platform_engagement.total_views``/``avg_*`` and
``sentiment_activity.recent_posts_*`` under ``last_cycle``).

Path syntax: ``a.b.c`` is a nested object field; ``spot_prices[].x`` is field ``x`` of every
element of the list ``spot_prices``. Types: ``string``, ``timestamp`` (an instant: Datetime("us",
"UTC"), read by the rule of ``instants.py``), ``int`` (Int64), ``float`` (Float64; a JSON integer is
widened when a float64 holds it exactly: ``exact_float``), ``bool``, ``list<string>``,
``map<string,int>`` (a dynamic-key count map, written as a Parquet MAP). ``timestamp`` marks every
field that holds an instant in the reference schema and in real data; ``bucket_meta.date`` is a
day (``YYYY-MM-DD``, derived from ``cycle_end_utc``), not an instant, and stays text.

Export versions (``schema_for(layout, version)``): version 1 wrote every timestamp as the
archive's text and had no lineage columns; version 2 types them and begins each row with its
lineage, ``archive_day`` and ``archive_hour`` (``LINEAGE_COLUMNS``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
import polars as pl

FIELDS_TABLE = """
symbol                                                                                 string
snapshot_ts                                                                            timestamp
meta.schema_version                                                                    int
meta.source                                                                            string
meta.universe_page                                                                     int
meta.universe_page_size                                                                int
meta.normalization_version                                                             string
meta.scoring_version                                                                   string
meta.pairbonus_version                                                                 string
meta.futures_api_base                                                                  string
meta.universe_snapshot_id                                                              string
meta.universe_snapshot_ts                                                              timestamp
meta.universe_snapshot_lag_sec                                                         float
meta.added_ts                                                                          timestamp
meta.expires_ts                                                                        timestamp
meta.session_id                                                                        string
meta.sample_count                                                                      int
meta.last_sample_ts                                                                    timestamp
meta.expired_ts                                                                        timestamp
meta.duration_sec                                                                      float
meta.total_samples                                                                     int
meta.archive_schema_version                                                            int
spot_raw.mid                                                                           float
spot_raw.bid                                                                           float
spot_raw.ask                                                                           float
spot_raw.spread_bps                                                                    float
spot_raw.last                                                                          float
spot_raw.range_pct_24h                                                                 float
spot_raw.ticker24_chg                                                                  float
spot_raw.taker_buy_ratio_5m                                                            float
spot_raw.depth_5bps_quote                                                              float
spot_raw.depth_10bps_quote                                                             float
spot_raw.depth_25bps_quote                                                             float
spot_raw.depth_bid_qty_quote                                                           float
spot_raw.depth_ask_qty_quote                                                           float
spot_raw.obi_5                                                                         float
spot_raw.micro_premium_pct                                                             float
spot_raw.avg_impact_pct                                                                float
spot_raw.spread_eff_raw                                                                float
spot_raw.liq_eff_raw                                                                   float
spot_raw.liq_qv_usd                                                                    float
futures_raw.contract                                                                   string
futures_raw.last_updated_ts                                                            timestamp
futures_raw.age_sec                                                                    int
futures_raw.funding_now                                                                float
futures_raw.funding_24h_mean                                                           float
futures_raw.open_interest                                                              float
futures_raw.open_interest_1h_delta_pct                                                 float
futures_raw.basis_now_bps                                                              float
futures_raw.top_long_short_accounts_1h                                                 float
futures_raw.top_long_short_positions_1h                                                float
derived.depth_spread_bps                                                               float
derived.depth_weighted                                                                 float
derived.depth_imbalance                                                                float
derived.depth_skew                                                                     float
derived.flow                                                                           float
derived.liq_global_pct                                                                 float
derived.liq_self_pct                                                                   float
derived.spread_pct                                                                     float
derived.spread_bps                                                                     float
scores.final                                                                           float
scores.mom                                                                             float
scores.vol                                                                             float
scores.str                                                                             float
scores.liq                                                                             float
scores.spread                                                                          float
scores.taker                                                                           float
scores.spread_eff_score                                                                float
scores.liq_eff_score                                                                   float
scores.flow                                                                            float
scores.depth                                                                           float
scores.microstruct                                                                     float
scores.compression_score                                                               float
flags.spot_data_ok                                                                     bool
flags.futures_data_ok                                                                  bool
flags.futures_stale                                                                    bool
flags.compression_enabled                                                              bool
flags.mom_fallback                                                                     bool
flags.vol_fallback                                                                     bool
flags.spread_fallback                                                                  bool
flags.pair_bonus_applied                                                               float
flags.twitter_data_ok                                                                  bool
flags.futures_contract_exists                                                          bool
flags.futures_contract_check_failed                                                    bool
diag.builder_version                                                                   string
diag.build_duration_ms                                                                 float
diag.admission_validated                                                               bool
diag.admission_validation_ts                                                           timestamp
twitter_sentiment_windows.last_cycle.posts_total                                       int
twitter_sentiment_windows.last_cycle.posts_pos                                         int
twitter_sentiment_windows.last_cycle.posts_neu                                         int
twitter_sentiment_windows.last_cycle.posts_neg                                         int
twitter_sentiment_windows.last_cycle.lexicon_sentiment.scale                           string
twitter_sentiment_windows.last_cycle.lexicon_sentiment.score                           float
twitter_sentiment_windows.last_cycle.category_counts.positive_general                  int
twitter_sentiment_windows.last_cycle.category_counts.negative_general                  int
twitter_sentiment_windows.last_cycle.category_counts.pump_hype                         int
twitter_sentiment_windows.last_cycle.category_counts.fud_fear                          int
twitter_sentiment_windows.last_cycle.category_counts.meme_slang                        int
twitter_sentiment_windows.last_cycle.category_counts.scam_rug                          int
twitter_sentiment_windows.last_cycle.category_counts.emoji_pos                         int
twitter_sentiment_windows.last_cycle.category_counts.emoji_neg                         int
twitter_sentiment_windows.last_cycle.top_terms.positive_general                        list<string>
twitter_sentiment_windows.last_cycle.top_terms.negative_general                        list<string>
twitter_sentiment_windows.last_cycle.top_terms.pump_hype                               list<string>
twitter_sentiment_windows.last_cycle.top_terms.fud_fear                                list<string>
twitter_sentiment_windows.last_cycle.top_terms.meme_slang                              list<string>
twitter_sentiment_windows.last_cycle.top_terms.scam_rug                                list<string>
twitter_sentiment_windows.last_cycle.platform_engagement.total_likes                   int
twitter_sentiment_windows.last_cycle.platform_engagement.total_retweets                int
twitter_sentiment_windows.last_cycle.platform_engagement.total_replies                 int
twitter_sentiment_windows.last_cycle.platform_engagement.total_quotes                  int
twitter_sentiment_windows.last_cycle.platform_engagement.total_bookmarks               int
twitter_sentiment_windows.last_cycle.platform_engagement.total_impressions             int
twitter_sentiment_windows.last_cycle.platform_engagement.total_views                   int
twitter_sentiment_windows.last_cycle.platform_engagement.avg_likes                     float
twitter_sentiment_windows.last_cycle.platform_engagement.avg_retweets                  float
twitter_sentiment_windows.last_cycle.platform_engagement.avg_replies                   float
twitter_sentiment_windows.last_cycle.platform_engagement.avg_views                     float
twitter_sentiment_windows.last_cycle.tag_counts                                        map<string,int>
twitter_sentiment_windows.last_cycle.cashtag_counts                                    map<string,int>
twitter_sentiment_windows.last_cycle.mention_counts                                    map<string,int>
twitter_sentiment_windows.last_cycle.url_domain_counts                                 map<string,int>
twitter_sentiment_windows.last_cycle.media_count                                       int
twitter_sentiment_windows.last_cycle.author_stats.distinct_authors_total               int
twitter_sentiment_windows.last_cycle.author_stats.distinct_authors_verified            int
twitter_sentiment_windows.last_cycle.author_stats.distinct_authors_blue                int
twitter_sentiment_windows.last_cycle.author_stats.followers_count_sum                  int
twitter_sentiment_windows.last_cycle.author_stats.followers_count_median               float
twitter_sentiment_windows.last_cycle.author_stats.followers_count_max                  int
twitter_sentiment_windows.last_cycle.author_stats.followers_count_mean                 float
twitter_sentiment_windows.last_cycle.content_stats.posts_original                      int
twitter_sentiment_windows.last_cycle.content_stats.posts_retweets                      int
twitter_sentiment_windows.last_cycle.content_stats.posts_with_media                    int
twitter_sentiment_windows.last_cycle.content_stats.posts_with_links                    int
twitter_sentiment_windows.last_cycle.content_stats.posts_with_hashtags                 int
twitter_sentiment_windows.last_cycle.content_stats.posts_with_cashtags                 int
twitter_sentiment_windows.last_cycle.content_stats.posts_with_mentions                 int
twitter_sentiment_windows.last_cycle.sentiment_activity.recent_posts_count             int
twitter_sentiment_windows.last_cycle.sentiment_activity.has_recent_activity            bool
twitter_sentiment_windows.last_cycle.sentiment_activity.is_silent                      bool
twitter_sentiment_windows.last_cycle.sentiment_activity.latest_tweet_at                timestamp
twitter_sentiment_windows.last_cycle.sentiment_activity.hours_since_latest_tweet       float
twitter_sentiment_windows.last_cycle.sentiment_activity.recent_posts_1h                int
twitter_sentiment_windows.last_cycle.sentiment_activity.recent_posts_4h                int
twitter_sentiment_windows.last_cycle.sentiment_activity.recent_posts_24h               int
twitter_sentiment_windows.last_cycle.sentiment_activity.config.recent_horizon_hours    int
twitter_sentiment_windows.last_cycle.sentiment_activity.config.min_recent_posts_for_activity int
twitter_sentiment_windows.last_cycle.sentiment_activity.config.silence_threshold_hours int
twitter_sentiment_windows.last_cycle.bucket_status                                     string
twitter_sentiment_windows.last_cycle.bucket_has_valid_sentiment                        bool
twitter_sentiment_windows.last_cycle.bucket_min_posts_for_score                        int
twitter_sentiment_windows.last_cycle.ai_sentiment.scoring_system                       string
twitter_sentiment_windows.last_cycle.ai_sentiment.primary_model                        string
twitter_sentiment_windows.last_cycle.ai_sentiment.referee_model                        string
twitter_sentiment_windows.last_cycle.ai_sentiment.posts_scored                         int
twitter_sentiment_windows.last_cycle.ai_sentiment.posts_pos                            int
twitter_sentiment_windows.last_cycle.ai_sentiment.posts_neu                            int
twitter_sentiment_windows.last_cycle.ai_sentiment.posts_neg                            int
twitter_sentiment_windows.last_cycle.ai_sentiment.prob_mean                            float
twitter_sentiment_windows.last_cycle.ai_sentiment.prob_std                             float
twitter_sentiment_windows.last_cycle.ai_sentiment.prob_min                             float
twitter_sentiment_windows.last_cycle.ai_sentiment.prob_max                             float
twitter_sentiment_windows.last_cycle.ai_sentiment.label_3class_mean                    float
twitter_sentiment_windows.last_cycle.hybrid_decision_stats.posts_scored                int
twitter_sentiment_windows.last_cycle.hybrid_decision_stats.posts_pos                   int
twitter_sentiment_windows.last_cycle.hybrid_decision_stats.posts_neu                   int
twitter_sentiment_windows.last_cycle.hybrid_decision_stats.posts_neg                   int
twitter_sentiment_windows.last_cycle.hybrid_decision_stats.mean_score                  float
twitter_sentiment_windows.last_cycle.hybrid_decision_stats.pos_ratio                   float
twitter_sentiment_windows.last_cycle.hybrid_decision_stats.neg_ratio                   float
twitter_sentiment_windows.last_cycle.hybrid_decision_stats.neu_ratio                   float
twitter_sentiment_windows.last_cycle.hybrid_decision_stats.decision_sources.single_model int
twitter_sentiment_windows.last_cycle.hybrid_decision_stats.decision_sources.primary_default int
twitter_sentiment_windows.last_cycle.hybrid_decision_stats.decision_sources.referee_override int
twitter_sentiment_windows.last_cycle.hybrid_decision_stats.decision_sources.referee_neutral_band int
twitter_sentiment_windows.last_cycle.hybrid_decision_stats.primary_conf_mean           float
twitter_sentiment_windows.last_cycle.hybrid_decision_stats.referee_conf_mean           float
twitter_sentiment_windows.last_2_cycles.window_cycles                                  int
twitter_sentiment_windows.last_2_cycles.from_cycle_id                                  int
twitter_sentiment_windows.last_2_cycles.to_cycle_id                                    int
twitter_sentiment_windows.last_2_cycles.cycle_start_utc                                timestamp
twitter_sentiment_windows.last_2_cycles.cycle_end_utc                                  timestamp
twitter_sentiment_windows.last_2_cycles.posts_total                                    int
twitter_sentiment_windows.last_2_cycles.posts_pos                                      int
twitter_sentiment_windows.last_2_cycles.posts_neu                                      int
twitter_sentiment_windows.last_2_cycles.posts_neg                                      int
twitter_sentiment_windows.last_2_cycles.lexicon_sentiment.scale                        string
twitter_sentiment_windows.last_2_cycles.lexicon_sentiment.score                        float
twitter_sentiment_windows.last_2_cycles.category_counts.positive_general               int
twitter_sentiment_windows.last_2_cycles.category_counts.negative_general               int
twitter_sentiment_windows.last_2_cycles.category_counts.pump_hype                      int
twitter_sentiment_windows.last_2_cycles.category_counts.fud_fear                       int
twitter_sentiment_windows.last_2_cycles.category_counts.meme_slang                     int
twitter_sentiment_windows.last_2_cycles.category_counts.scam_rug                       int
twitter_sentiment_windows.last_2_cycles.category_counts.emoji_pos                      int
twitter_sentiment_windows.last_2_cycles.category_counts.emoji_neg                      int
twitter_sentiment_windows.last_2_cycles.top_terms.negative_general                     list<string>
twitter_sentiment_windows.last_2_cycles.top_terms.positive_general                     list<string>
twitter_sentiment_windows.last_2_cycles.top_terms.fud_fear                             list<string>
twitter_sentiment_windows.last_2_cycles.top_terms.pump_hype                            list<string>
twitter_sentiment_windows.last_2_cycles.top_terms.scam_rug                             list<string>
twitter_sentiment_windows.last_2_cycles.top_terms.meme_slang                           list<string>
twitter_sentiment_windows.last_2_cycles.platform_engagement.total_likes                int
twitter_sentiment_windows.last_2_cycles.platform_engagement.total_retweets             int
twitter_sentiment_windows.last_2_cycles.platform_engagement.total_replies              int
twitter_sentiment_windows.last_2_cycles.platform_engagement.total_views                int
twitter_sentiment_windows.last_2_cycles.platform_engagement.avg_likes                  float
twitter_sentiment_windows.last_2_cycles.platform_engagement.avg_retweets               float
twitter_sentiment_windows.last_2_cycles.platform_engagement.avg_replies                float
twitter_sentiment_windows.last_2_cycles.platform_engagement.avg_views                  float
twitter_sentiment_windows.last_2_cycles.tag_counts                                     map<string,int>
twitter_sentiment_windows.last_2_cycles.cashtag_counts                                 map<string,int>
twitter_sentiment_windows.last_2_cycles.mention_counts                                 map<string,int>
twitter_sentiment_windows.last_2_cycles.url_domain_counts                              map<string,int>
twitter_sentiment_windows.last_2_cycles.media_count                                    int
twitter_sentiment_windows.last_2_cycles.author_stats.followers_count_sum               int
twitter_sentiment_windows.last_2_cycles.author_stats.followers_count_median            float
twitter_sentiment_windows.last_2_cycles.author_stats.followers_count_mean              float
twitter_sentiment_windows.last_2_cycles.author_stats.followers_count_max               int
twitter_sentiment_windows.last_2_cycles.content_stats.posts_original                   int
twitter_sentiment_windows.last_2_cycles.content_stats.posts_retweets                   int
twitter_sentiment_windows.last_2_cycles.content_stats.posts_with_media                 int
twitter_sentiment_windows.last_2_cycles.content_stats.posts_with_links                 int
twitter_sentiment_windows.last_2_cycles.content_stats.posts_with_hashtags              int
twitter_sentiment_windows.last_2_cycles.content_stats.posts_with_cashtags              int
twitter_sentiment_windows.last_2_cycles.content_stats.posts_with_mentions              int
twitter_sentiment_windows.last_2_cycles.sentiment_activity.latest_tweet_at             timestamp
twitter_sentiment_windows.last_2_cycles.sentiment_activity.recent_posts_count          int
twitter_sentiment_windows.last_2_cycles.sentiment_activity.has_recent_activity         bool
twitter_sentiment_windows.last_2_cycles.bucket_status                                  string
twitter_sentiment_windows.last_2_cycles.bucket_has_valid_sentiment                     bool
twitter_sentiment_windows.last_2_cycles.bucket_min_posts_for_score                     int
twitter_sentiment_windows.last_2_cycles.ai_sentiment.scoring_system                    string
twitter_sentiment_windows.last_2_cycles.ai_sentiment.primary_model                     string
twitter_sentiment_windows.last_2_cycles.ai_sentiment.referee_model                     string
twitter_sentiment_windows.last_2_cycles.ai_sentiment.posts_scored                      int
twitter_sentiment_windows.last_2_cycles.ai_sentiment.posts_pos                         int
twitter_sentiment_windows.last_2_cycles.ai_sentiment.posts_neu                         int
twitter_sentiment_windows.last_2_cycles.ai_sentiment.posts_neg                         int
twitter_sentiment_windows.last_2_cycles.ai_sentiment.prob_mean                         float
twitter_sentiment_windows.last_2_cycles.ai_sentiment.label_3class_mean                 float
twitter_sentiment_windows.last_2_cycles.ai_sentiment.prob_min                          float
twitter_sentiment_windows.last_2_cycles.ai_sentiment.prob_max                          float
twitter_sentiment_windows.last_2_cycles.hybrid_decision_stats.posts_scored             int
twitter_sentiment_windows.last_2_cycles.hybrid_decision_stats.posts_pos                int
twitter_sentiment_windows.last_2_cycles.hybrid_decision_stats.posts_neu                int
twitter_sentiment_windows.last_2_cycles.hybrid_decision_stats.posts_neg                int
twitter_sentiment_windows.last_2_cycles.hybrid_decision_stats.mean_score               float
twitter_sentiment_windows.last_2_cycles.hybrid_decision_stats.primary_conf_mean        float
twitter_sentiment_windows.last_2_cycles.hybrid_decision_stats.referee_conf_mean        float
twitter_sentiment_windows.last_2_cycles.hybrid_decision_stats.pos_ratio                float
twitter_sentiment_windows.last_2_cycles.hybrid_decision_stats.neg_ratio                float
twitter_sentiment_windows.last_2_cycles.hybrid_decision_stats.neu_ratio                float
twitter_sentiment_windows.last_2_cycles.hybrid_decision_stats.decision_sources.single_model int
twitter_sentiment_windows.last_2_cycles.hybrid_decision_stats.decision_sources.primary_default int
twitter_sentiment_windows.last_2_cycles.hybrid_decision_stats.decision_sources.referee_override int
twitter_sentiment_windows.last_2_cycles.hybrid_decision_stats.decision_sources.referee_neutral_band int
twitter_sentiment_meta.source                                                          string
twitter_sentiment_meta.captured_at_utc                                                 timestamp
twitter_sentiment_meta.bucket_meta.platform                                            string
twitter_sentiment_meta.bucket_meta.coin                                                string
twitter_sentiment_meta.bucket_meta.asset_unified_id                                    string
twitter_sentiment_meta.bucket_meta.date                                                string
twitter_sentiment_meta.bucket_meta.bucket_span                                         string
twitter_sentiment_meta.bucket_meta.cycle_id                                            int
twitter_sentiment_meta.bucket_meta.cycle_start_utc                                     timestamp
twitter_sentiment_meta.bucket_meta.cycle_end_utc                                       timestamp
twitter_sentiment_meta.bucket_meta.created_at_utc                                      timestamp
twitter_sentiment_meta.bucket_meta.scraper_version                                     string
twitter_sentiment_meta.bucket_meta.sentiment_model_version                             string
twitter_sentiment_meta.bucket_meta.lexicon_version                                     string
twitter_sentiment_meta.bucket_meta.platform_cycle_id                                   int
twitter_sentiment_meta.bucket_meta.is_silent                                           bool
twitter_sentiment_meta.key_used                                                        string
spot_prices[].ts                                                                       timestamp
spot_prices[].mid                                                                      float
spot_prices[].bid                                                                      float
spot_prices[].ask                                                                      float
spot_prices[].spread_bps                                                               float
"""

#: Top-level entry keys that are always empty in v7 and intentionally not exported.
DROPPED_COLUMNS = ("norm", "labels")
#: Per-row JSON text of every value the declared schema could not hold (unknown or mistyped).
EXTRA_COLUMN = "_extra"
#: Joins path parts into flat column names (``meta__added_ts``). No v7 key contains it.
SEPARATOR = "__"
#: Blocks that must never be NULL in a valid export.
REQUIRED_COLUMNS = ("symbol", "snapshot_ts", "meta", "spot_raw")

LAYOUTS: tuple[str, ...] = ("flat", "nested")
#: Export format versions (the number in the manifest's ``export_version``); the export writes the last.
VERSIONS: tuple[int, ...] = (1, 2)
CURRENT_VERSION = VERSIONS[-1]

MAP_DTYPE = pl.Map(pl.String, pl.Int64)
_TYPES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "timestamp": pl.Datetime("us", "UTC"),
    "int": pl.Int64(),
    "float": pl.Float64(),
    "bool": pl.Boolean(),
    "list<string>": pl.List(pl.String),
    "map<string,int>": MAP_DTYPE,
    "date": pl.Date(),
    "int8": pl.Int8(),
}
#: What a version wrote for a declared type that came later: version 1 kept timestamps as text.
_OLDER_TYPES = {1: {"timestamp": "string"}}

#: The row's lineage (version 2 on), first in both layouts: the archive folder's day and the hour
#: file the row came from (0-23). Int8: a signed byte is read as such by every reader (pyarrow,
#: pandas, DuckDB TINYINT, Spark ByteType; Java has no unsigned type).
LINEAGE_COLUMNS: dict[str, str] = {"archive_day": "date", "archive_hour": "int8"}

#: Every integer up to this magnitude is a float64 exactly; 2**53 + 1 is the first that is not.
EXACT_FLOAT_INT = 2**53


def exact_float(value) -> float | None:
    """The float64 a JSON number in a float field stands for exactly, or None when there is none.

    A float is itself; an integer is widened when its magnitude is at most 2**53. Beyond, a
    float64 would round some integers (2**53 + 1, 2**60 + 1), so the rule goes by magnitude, as
    pyarrow's conversion does: such an integer, like a boolean or any other value, has no exact
    float. The export treats it as a value of the wrong type (NULL column, exact in ``_extra``)
    and the verifier compares by this rule."""
    if type(value) is float:
        return value
    if type(value) is int and -EXACT_FLOAT_INT <= value <= EXACT_FLOAT_INT:
        return float(value)
    return None


@dataclass(frozen=True)
class Field:
    """One declared leaf: its path in an entry and its type name."""

    path: tuple[str, ...]
    type_name: str

    @property
    def dtype(self) -> pl.DataType:
        """The type the current export version writes."""
        return _TYPES[self.type_name]


def _parse_table(text: str) -> list[Field]:
    fields = []
    for line in text.strip().splitlines():
        path, type_name = line.split()
        if type_name not in _TYPES:
            raise ValueError(f"unknown type {type_name!r} for {path}")
        fields.append(Field(tuple(path.split(".")), type_name))
    return fields


FIELDS: tuple[Field, ...] = tuple(_parse_table(FIELDS_TABLE))
#: The paths of the fields that hold an instant (``timestamp``).
TIMESTAMP_PATHS: tuple[tuple[str, ...], ...] = tuple(f.path for f in FIELDS if f.type_name == "timestamp")


def _build_tree(fields) -> dict:
    """Nested dict: key -> subtree (dict), list-of-struct marker, or Field."""
    tree: dict = {}
    for field in fields:
        node = tree
        for part in field.path[:-1]:
            if part.endswith("[]"):
                node = node.setdefault(part[:-2], {"[]": {}})["[]"]
            else:
                node = node.setdefault(part, {})
        node[field.path[-1]] = field
    return tree


#: key -> Field | subtree; a list of objects is ``{"[]": subtree}``.
TREE: dict = _build_tree(FIELDS)


def _dtype_of(node, version: int) -> pl.DataType:
    if isinstance(node, Field):
        return _TYPES[_OLDER_TYPES.get(version, {}).get(node.type_name, node.type_name)]
    if "[]" in node:
        return pl.List(_dtype_of(node["[]"], version))
    return pl.Struct({key: _dtype_of(child, version) for key, child in node.items()})


def _nested_schema(version: int) -> dict[str, pl.DataType]:
    lineage = {name: _TYPES[type_name] for name, type_name in LINEAGE_COLUMNS.items()} if version >= 2 else {}
    return {**lineage, **{key: _dtype_of(node, version) for key, node in TREE.items()}, EXTRA_COLUMN: pl.String()}


def _flat_columns(name: str, dtype: pl.DataType, path: tuple[str, ...]):
    if isinstance(dtype, pl.Struct):
        for f in dtype.fields:
            yield from _flat_columns(name + SEPARATOR + f.name, f.dtype, path + (f.name,))
    else:
        yield name, dtype, path


def _flat(nested: dict[str, pl.DataType]) -> dict[str, tuple[pl.DataType, tuple[str, ...]]]:
    return {name: (dtype, path) for top, top_dtype in nested.items() for name, dtype, path in _flat_columns(top, top_dtype, (top,))}


#: The nested layout (current version): the lineage columns, the 12 top-level columns of the
#: reference schema, then ``_extra``.
NESTED_SCHEMA: dict[str, pl.DataType] = _nested_schema(CURRENT_VERSION)
#: flat column name -> (dtype, path of struct fields from the top-level column); current version.
FLAT_COLUMNS: dict[str, tuple[pl.DataType, tuple[str, ...]]] = _flat(NESTED_SCHEMA)
FLAT_SCHEMA: dict[str, pl.DataType] = {name: dt for name, (dt, _) in FLAT_COLUMNS.items()}


def schema_for(layout: str, version: int = CURRENT_VERSION) -> dict[str, pl.DataType]:
    """Column name -> Polars dtype of a data.parquet written in ``layout`` by export ``version``."""
    if version not in VERSIONS:
        raise ValueError(f"unknown export version {version!r} (expected one of {', '.join(map(str, VERSIONS))})")
    nested = NESTED_SCHEMA if version == CURRENT_VERSION else _nested_schema(version)
    if layout == "flat":
        return {name: dt for name, (dt, _) in _flat(nested).items()}
    if layout == "nested":
        return dict(nested)
    raise ValueError(f"unknown layout {layout!r} (expected one of {', '.join(LAYOUTS)})")


def type_name(dtype: pl.DataType) -> str:
    """The declared table's own name for ``dtype`` (``float``, ``list<string>``,
    ``struct<a:int,b:string>``...): what the fingerprint hashes, so that it does not depend on
    how a Polars release prints a type. A type the table has no name for gets ``other:<repr>``
    (it can only come from a file that is not ours, and must differ from every declared type)."""
    for name, declared in _TYPES.items():
        if not declared.is_nested() and dtype == declared:
            return name
    if isinstance(dtype, pl.Map):
        return f"map<{type_name(dtype.key)},{type_name(dtype.value)}>"
    if isinstance(dtype, pl.List):
        return f"list<{type_name(dtype.inner)}>"
    if isinstance(dtype, pl.Struct):
        return "struct<" + ",".join(f"{f.name}:{type_name(f.dtype)}" for f in dtype.fields) + ">"
    return f"other:{dtype!r}"


def fingerprint(schema: dict[str, pl.DataType]) -> str:
    """sha256 over the ordered column names and their declared type names (``type_name``):
    equal fingerprints, identical schemas."""
    text = "\n".join(f"{name}\t{type_name(dtype)}" for name, dtype in schema.items())
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


#: Fingerprints that export version 1 wrote first (a hash of how Polars 2.1 printed the types),
#: kept so that the days published then still verify. Pinned: they are never recomputed.
LEGACY_FINGERPRINTS: dict[str, str] = {
    "flat": "sha256:6f9b82a38d334b6705c07683ef554996324eca16907cdc6412a0c936d0898a84",
    "nested": "sha256:b3a3315ed661ad78e8054c432ab28db4ded78363f60ddca203dd998b1aeb13db",
}


def known_fingerprints(layout: str, version: int = CURRENT_VERSION) -> set[str]:
    """Every fingerprint a manifest of ``layout`` and export ``version`` may carry: the declared
    schema's, and for version 1 also the legacy one."""
    declared = fingerprint(schema_for(layout, version))
    return {declared, LEGACY_FINGERPRINTS[layout]} if version == 1 else {declared}


def describe(layout: str = "flat") -> str:
    """A plain-text listing of every column and dtype, in file order."""
    schema = schema_for(layout)
    width = max(map(len, schema))
    lines = [f"# layout={layout} columns={len(schema)} fingerprint={fingerprint(schema)}"]
    lines += [f"{name:<{width}}  {dtype!r}" for name, dtype in schema.items()]
    return "\n".join(lines)
