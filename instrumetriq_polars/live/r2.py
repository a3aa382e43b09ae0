"""``live serve --publish-r2``: after each burst, ``tier1/live/latest.json`` (the latest entry per
symbol and the ``seq`` it is current at) and ``tier1/live/YYYY-MM-DD/HH.jsonl`` (the tier1 rows of
that event-time hour so far, in ``seq`` order), for a static site that reads R2 and cannot hold an
SSE connection.

An object store has no append: an hour's object is rewritten whole each burst (an hour is ~100
entries, ~70 KB). The hour objects are written before ``latest.json``, so a reader that follows
``latest.json`` to its hour finds at least those rows. A failed upload is retried with the next
burst (the rows stay in memory until their hour is uploaded after it ended).
"""

from __future__ import annotations

import fsspec
import orjson

from ..storage import storage_options_for

PREFIX = "tier1/live"


class Publisher:
    """Keeps the rows of recent hours and the latest map; ``publish`` uploads what changed."""

    def __init__(self, url: str, storage_options: dict | None = None, *, keep_hours: int = 3):
        self.url = url.rstrip("/")
        options = storage_options_for(self.url, storage_options)
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **(options or {}))
        self.root = self.root.rstrip("/")
        self.hours: dict[str, list[dict]] = {}
        self.dirty: set[str] = set()
        self.latest: dict[str, dict] = {}
        self.last_seq = 0
        self.keep_hours = keep_hours
        self.errors = 0
        self.last_error: str | None = None

    def key(self, name: str) -> str:
        return f"{self.root}/{PREFIX}/{name}"

    def publish(self, records: list[dict]) -> bool:
        """Take a poll's journal records and upload; False when an upload failed (kept for later)."""
        for record in records:
            if record.get("k") != "e" or record["row"].get("expired_ts") is None:
                continue
            row = record["row"]
            hour = f"{row['expired_ts'][:10]}/{row['expired_ts'][11:13]}"
            self.hours.setdefault(hour, []).append(row)
            self.dirty.add(hour)
            self.latest[row["symbol"]] = row
            self.last_seq = max(self.last_seq, record["seq"])
        if not self.dirty:
            return True
        try:
            for hour in sorted(self.dirty):
                body = b"".join(orjson.dumps(r) + b"\n" for r in self.hours[hour])
                self.fs.pipe_file(self.key(f"{hour}.jsonl"), body)
            latest = {"seq": self.last_seq, "entries": [self.latest[s] for s in sorted(self.latest)]}
            self.fs.pipe_file(self.key("latest.json"), orjson.dumps(latest))
        except Exception as exc:  # network, credentials: kept dirty, retried with the next burst
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        self.dirty.clear()
        for hour in sorted(self.hours)[:-self.keep_hours]:
            del self.hours[hour]
        return True
