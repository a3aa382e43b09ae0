"""Writing to an archive the way the collector does: one small entry per line, each line one gzip
member appended to its hour file (``gzip.open(path, "ab")``). Shared by the live feed's tests."""

from __future__ import annotations

import gzip
import io
import json
import os
import uuid

NAME = "20260101/05.jsonl.gz"


def entry_line(i: int, symbol: str = "BTCUSDT", sid: str | None = None, pad: int = 0) -> bytes:
    entry = {"symbol": symbol, "snapshot_ts": "2026-01-01T05:00:00Z",
             "meta": {"session_id": sid or str(uuid.UUID(int=i + 1)), "expired_ts": "2026-01-01T05:10:00+00:00",
                      "added_ts": "2026-01-01T04:00:00Z", "schema_version": 7},
             "spot_raw": {"mid": 100.0 + i, "bid": 99.5, "ask": 100.5, "spread_bps": 1.0},
             "spot_prices": [{"ts": "2026-01-01T04:00:00Z", "mid": 100.0, "bid": 99.0, "ask": 101.0, "spread_bps": 2.0},
                             {"ts": "2026-01-01T04:10:00Z", "mid": 110.0, "bid": 109.0, "ask": 111.0, "spread_bps": 3.0}],
             "pad": "x" * pad}
    return json.dumps(entry).encode() + b"\n"


def member(line: bytes, name: str = "05.jsonl") -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="ab", fileobj=buffer, mtime=1767243600) as f:
        f.write(line)
    return buffer.getvalue()


def append(root, name: str, data: bytes, mtime: float | None = None) -> None:
    path = os.path.join(root, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "ab") as f:
        f.write(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
