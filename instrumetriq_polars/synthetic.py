"""A synthetic archive writer for the demo, tests and benchmarks (no network, no ../shared).

Entries are v7-shaped: every declared field, filled with plausible values, plus the traits that
make real archives hard: dynamic-key count maps with long-tailed keys (thousands a day), futures on
only some symbols, empty and missing blocks, ints where floats are declared, three timestamp
styles, ~720 ``spot_prices`` samples, and entries written after midnight whose ``meta.added_ts`` is
on the previous day. Written with Python's ``json`` module, like the real collector.
"""

from __future__ import annotations

import gzip
import json
import random
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from .schema import TREE, Field

SYMBOLS = [f"C{i:03d}USDT" for i in range(300)] + ["BTCUSDT", "ETHUSDT", "SOLUSDT", "PEPEUSDT"]
COUNT_MAPS = {"tag_counts": ("tag", 20000), "cashtag_counts": ("COIN", 3000),
              "mention_counts": ("user", 60000), "url_domain_counts": ("site", 8000)}
#: The most frequent keys of a long tail, most frequent first (the real sample's top hashtags), so
#: that a lookup such as ``tag_counts['btc']`` finds something in a synthetic day too.
COMMON_KEYS = {"tag": ["crypto", "btc", "bitcoin", "eth", "gold", "sol", "binance", "xrp"]}
#: meta.duration_sec of a cycle: the real sample's 147 entries lie within 7,254-7,561 s (median
#: 7,412); none is near verify's long-cycle warning (9,000 s), so a normal generated day passes.
CYCLE_SECONDS = (7250.0, 7570.0)
TERMS = ["moon", "pump", "bullish", "dump", "wagmi", "lfg", "scam", "rug", "breakout", "fud"]


def _timestamp(moment: datetime, style: int) -> str:
    """One of three spellings; the year always has four digits (strftime's %Y drops the leading
    zeros of years below 1000 on glibc)."""
    year = f"{moment.year:04d}"
    if style == 0:
        return year + moment.strftime("-%m-%dT%H:%M:%S.%fZ")
    if style == 1:
        return moment.isoformat()
    return year + moment.strftime("-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _long_tail_key(rng: random.Random, prefix: str, vocabulary: int) -> str:
    rank = int(vocabulary ** rng.random()) - 1
    common = COMMON_KEYS.get(prefix, [])
    return common[rank] if rank < len(common) else f"{prefix}{rank}"


def _fill(node: dict, rng: random.Random, moment: datetime):
    """A value for every declared field below ``node``; instants near ``moment``."""
    out = {}
    for key, spec in node.items():
        if isinstance(spec, Field):
            out[key] = _value(spec.type_name, key, rng, moment)
        elif "[]" not in spec:
            out[key] = _fill(spec, rng, moment)
    return out


def _value(type_name: str, key: str, rng: random.Random, moment: datetime):
    if type_name == "timestamp":
        return _timestamp(moment - timedelta(seconds=rng.uniform(0, 3600)), rng.randrange(3))
    if type_name == "string" and key == "date":
        return moment.date().isoformat()
    if type_name == "float":
        return round(rng.uniform(0, 100), rng.choice((2, 6, 12)))
    if type_name == "int":
        return rng.randint(0, 5000)
    if type_name == "bool":
        return rng.random() < 0.5
    if type_name == "list<string>":
        return rng.sample(TERMS, rng.randint(0, 3))
    if type_name == "map<string,int>":
        prefix, vocabulary = COUNT_MAPS[key]
        keys = {_long_tail_key(rng, prefix, vocabulary) for _ in range(min(int(rng.expovariate(1 / 6)), 200))}
        return {k: rng.randint(1, 40) for k in sorted(keys)}
    return f"{key}-v{rng.randint(1, 3)}"


def make_entry(rng: random.Random, written: datetime) -> dict:
    symbol = rng.choice(SYMBOLS)
    rng.random()  # a draw the generator once spent on rare long cycles: kept, so the rest of an entry is as before
    duration = rng.uniform(*CYCLE_SECONDS)
    added = written - timedelta(seconds=duration)
    entry = _fill(TREE, rng, added)
    # after _fill, which gives the other declared strings placeholders ("key_used-v2")
    entry.update(symbol=symbol, snapshot_ts=_timestamp(added, 2))
    meta = entry["meta"]
    meta.update(
        schema_version=7, archive_schema_version=7, source="spot+usdsm-futures",
        added_ts=_timestamp(added, 0), expires_ts=_timestamp(added + timedelta(hours=2), 0),
        expired_ts=_timestamp(written, 1), last_sample_ts=_timestamp(written - timedelta(seconds=3), rng.randrange(3)),
        duration_sec=duration, session_id=str(uuid.UUID(int=rng.getrandbits(128))),
    )
    mid = rng.uniform(0.0001, 60000)
    spread = rng.uniform(0.5, 30)
    entry["spot_raw"].update(mid=mid, bid=mid * (1 - spread / 20000), ask=mid * (1 + spread / 20000), spread_bps=spread)
    entry["derived"]["spread_bps"] = spread
    if rng.random() < 0.6:
        entry["futures_raw"].update(contract=symbol, last_updated_ts=_timestamp(written, 1), age_sec=rng.randint(0, 120))
        entry["flags"]["futures_data_ok"] = True
    else:
        entry["futures_raw"] = None
        entry["flags"]["futures_data_ok"] = False
    entry["norm"], entry["labels"] = {}, {}
    if rng.random() < 0.05:
        entry["diag"] = {}
    if rng.random() < 0.03:
        del entry["twitter_sentiment_windows"], entry["twitter_sentiment_meta"]
    else:
        stats = entry["twitter_sentiment_windows"]["last_2_cycles"]["author_stats"]
        stats["followers_count_median"] = rng.randint(1, 500) if rng.random() < 0.5 else float(rng.randint(1, 500))
    samples = rng.randint(690, 760)
    price = mid
    entry["spot_prices"] = []
    for i in range(samples):
        price *= 1 + rng.gauss(0, 0.0005)
        entry["spot_prices"].append({
            "ts": _timestamp(added + timedelta(seconds=10 * i), 1), "mid": price,
            "bid": price * (1 - spread / 20000), "ask": price * (1 + spread / 20000), "spread_bps": spread,
        })
    return entry


def write_archive_day(root: str | Path, day: date, entries_per_hour: int = 100, hours=range(24), seed: int = 7) -> list[Path]:
    """Write ``root/YYYYMMDD/HH.jsonl.gz`` for ``hours`` of ``day``; return the files written."""
    rng = random.Random(f"{seed}-{day}")
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    folder = Path(root) / f"{day.year:04d}{day.month:02d}{day.day:02d}"  # four-digit years (strftime drops zeros)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for hour in hours:
        moments = sorted(start + timedelta(hours=hour, seconds=rng.uniform(0, 3599)) for _ in range(entries_per_hour))
        lines = [json.dumps(make_entry(rng, moment), separators=(",", ":")) for moment in moments]
        path = folder / f"{hour:02d}.jsonl.gz"
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=6, mtime=0))
        written.append(path)
    return written
