"""What ``live serve`` holds in memory: the recent entries (a ring of ``ring_size``), the latest
entry per symbol, the connected stream clients with their bounded queues, and the figures
``/metrics`` reports. It runs in the server's event loop; the follower thread hands it
deliveries with ``loop.call_soon_threadsafe``.

A client's queue holds at most ``queue_size`` items. When it is full the client is marked
*overflowed*: its stream sends one ``overflow`` system event naming the last ``seq`` it sent
(``resume_after``) and ends; the client resumes from there (``Last-Event-ID``), so nothing is lost,
memory stays bounded, and no other client waits for it.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import time
from collections import deque

import orjson

from . import journal as jn
from .compact import oldest_seq

#: Upper bounds (seconds) of the delivery-latency histogram's buckets.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
OVERFLOW = object()
CLOSING = object()


def entry_frame(seq: int, data: bytes) -> bytes:
    return b"id: %d\nevent: entry\ndata: %s\n\n" % (seq, data)


def event_frame(name: str, data: dict, ident: int | None = None) -> bytes:
    head = b"id: %d\n" % ident if ident is not None else b""
    return head + b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def project(row: dict, fields: list[str] | None) -> dict:
    return row if fields is None else {name: row.get(name) for name in fields}


class Client:
    """One stream connection: a bounded queue and its filters."""

    def __init__(self, fields: list[str] | None, symbols: set[str] | None, queue_size: int):
        self.fields, self.symbols = fields, symbols
        self.queue: asyncio.Queue = asyncio.Queue(queue_size)
        self.overflowed = False
        self.sent_seq = 0

    def wants(self, row: dict) -> bool:
        return self.symbols is None or row.get("symbol") in self.symbols

    def offer(self, item) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            while not self.queue.empty():  # what it holds is re-read on resume: let it go now
                self.queue.get_nowait()
            self.queue.put_nowait(OVERFLOW)


class Hub:
    """The server's memory of the feed (see the module docstring)."""

    def __init__(self, state_dir: str, *, ring_size: int = 10_000, queue_size: int = 1_000):
        self.state_dir = state_dir
        self.ring: deque = deque()           # (seq, row, published monotonic time)
        self.ring_size = ring_size
        self.queue_size = queue_size
        self.latest: dict[str, tuple[int, dict]] = {}
        self.clients: set[Client] = set()
        self.alert_clients: set[Client] = set()
        self.alert_events: deque = deque(maxlen=1_000)  # (id, frame bytes)
        self.alert_seq = 0
        self.last_seq = 0
        self.last_append = None              # wall time of the last entry
        self.appends = deque()               # wall times of the entries of the last hour
        self.entries_total = 0
        self.delivered_total = 0
        self.overflows_total = 0
        self.damaged_bytes = 0
        self.system_total = 0
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.oldest_seq = 1
        self._offsets: list[tuple[int, int]] = []  # (seq, journal byte offset of its record)

    # -- from the follower -------------------------------------------------------------------------
    def publish(self, deliveries: list[dict], wall: float | None = None) -> None:
        """Journal records (``{"k": "e", "seq", "row", ...}`` or ``{"k": "v", "type", ...}``), in order."""
        now = time.monotonic()
        wall = time.time() if wall is None else wall
        for record in deliveries:
            if record.get("k") == "e":
                seq, row = record["seq"], record["row"]
                if seq <= self.last_seq:
                    continue
                self._remember(seq, row, now)
                self.last_seq = seq
                self.last_append = wall
                self.appends.append(wall)
                self.entries_total += 1
                for client in list(self.clients):
                    if client.wants(row) and not client.overflowed:
                        client.offer((seq, row, now))
                        self.overflows_total += client.overflowed
            else:
                self.system_total += 1
                if record.get("type") == "damaged_span":
                    self.damaged_bytes += int(record.get("end", 0)) - int(record.get("start", 0))
                data = {k: v for k, v in record.items() if k not in ("k", "trail")}
                frame = event_frame(record.get("type", "system"), data)
                for client in list(self.clients):
                    client.offer(frame)
        while self.appends and self.appends[0] < wall - 3600:
            self.appends.popleft()

    def _remember(self, seq: int, row: dict, now: float) -> None:
        self.ring.append((seq, row, now))
        while len(self.ring) > self.ring_size:
            self.ring.popleft()
        if row.get("symbol") is not None and row.get("problem") is None:
            self.latest[row["symbol"]] = (seq, row)

    def close_streams(self) -> None:
        """Tell every stream to end (the server is stopping): each sends a ``shutdown`` event."""
        for client in list(self.clients) + list(self.alert_clients):
            while not client.queue.empty():
                client.queue.get_nowait()
            client.queue.put_nowait(CLOSING)

    def publish_alerts(self, alerts: list[dict]) -> None:
        for alert in alerts:
            self.alert_seq += 1
            frame = event_frame("alert", alert, self.alert_seq)
            self.alert_events.append((self.alert_seq, frame))
            for client in list(self.alert_clients):
                client.offer(frame)

    # -- start-up: the journal's tail ---------------------------------------------------------------
    def load_journal(self) -> None:
        """Fill the ring and the latest map from the journal (a restart with an empty memory)."""
        path = os.path.join(self.state_dir, jn.JOURNAL)
        if not os.path.exists(path):
            return
        self.oldest_seq = oldest_seq(self.state_dir)   # after a compaction: what it kept
        self.last_seq = max(self.last_seq, self.oldest_seq - 1)
        size = os.path.getsize(path)
        start = self._boundary(path, max(0, size - 64 * 1024 * 1024))
        now = time.monotonic()
        for record in self._records(start):
            if record.get("k") == "e":
                self._remember(record["seq"], record["row"], now)
                self.last_seq = record["seq"]
                self.last_append = record.get("t", self.last_append)

    # -- replay --------------------------------------------------------------------------------------
    def from_ring(self, after: int, limit: int) -> list[tuple[int, dict]] | None:
        """Entries after ``after`` (at most ``limit``) if the ring still holds them, else None."""
        if after < self.last_seq and (not self.ring or after + 1 < self.ring[0][0]):
            return None
        seqs = [item[0] for item in self.ring]
        index = bisect.bisect_right(seqs, after)
        return [(seq, row) for seq, row, _ in list(self.ring)[index:index + limit]]

    def read_journal(self, after: int, limit: int | None = None):
        """Entry records after ``after`` from the journal (blocking: run in a thread)."""
        start = 0
        for seq, offset in reversed(self._offsets):
            if seq <= after + 1:
                start = offset
                break
        count = 0
        for record in self._records(start, index=True):
            if record.get("k") == "e" and record["seq"] > after:
                yield record
                count += 1
                if limit is not None and count >= limit:
                    return

    def _records(self, start: int, index: bool = False):
        previous = start
        for offset, record in jn.read_records(self.state_dir, start):
            if index and record.get("k") == "e" and record["seq"] % 512 == 0:
                if not self._offsets or self._offsets[-1][0] < record["seq"]:
                    self._offsets.append((record["seq"], previous))
            previous = offset
            yield record

    @staticmethod
    def _boundary(path: str, offset: int) -> int:
        """The start of the first journal record at or after ``offset``."""
        if offset == 0:
            return 0
        with open(path, "rb") as f:
            f.seek(offset - 1)
            f.readline()
            return f.tell()

    # -- figures -------------------------------------------------------------------------------------
    def observe_latency(self, seconds: float) -> None:
        self.latency_sum += seconds
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1

    def entries_last_hour(self) -> int:
        cutoff = time.time() - 3600
        return sum(1 for t in self.appends if t >= cutoff)

    def last_entry_age(self, now: float | None = None) -> float | None:
        return None if self.last_append is None else (now or time.time()) - self.last_append
