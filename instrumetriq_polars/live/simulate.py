"""A collector simulator for tests, benchmarks and demos: appends entries to an archive the way the
collector does, one ``gzip.open(path, "ab")`` per entry (CPython 3.11: three writes, header, body,
trailer), in bursts sharing one ``meta.expired_ts``, each to the hour file of its ``expired_ts``.

- ``source``: "fixture" (the real sample's entries, cycled; each gets a fresh ``meta.session_id``
  and the burst's ``expired_ts``) or "synthetic" (``synthetic.make_entry``);
- ``rate``: entries a second (wall clock) within a burst; ``speed``: how fast the fake clock runs
  (1: real time; 100: an hour in 36 s), which crosses hour and day boundaries; bursts are
  ``burst_gap`` fake seconds apart;
- ``faults``: each listed fault once, spread over the run: ``crash`` (a header and half a body,
  as a collector killed mid-member), ``cut`` (a member without its trailer), ``corrupt`` (a member
  with a flipped byte), ``junk`` (random bytes), ``truncate`` (the hour file cut back to an earlier
  member boundary), ``replace`` (the hour file rewritten with the same bytes, a new inode),
  ``delete`` (the hour file removed);
- every append is reported to ``log`` as ``{"path", "end", "t", "n", "session_id", "fault"}``
  (``end``: the file's size after it; ``t``: wall time) so delivery latency can be paired.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

FAULTS = ("crash", "cut", "corrupt", "junk", "truncate", "replace", "delete")
#: Real bursts hold 4-37 entries, ~600 s apart (DESIGN.md).
BURST_SIZES = (4, 37)
BURST_GAP = 600.0


@dataclass
class SimulateOptions:
    count: int | None = None
    rate: float = 20.0
    speed: float = 1.0
    start: datetime | None = None  # the fake clock's start (default: now)
    source: str = "fixture"
    fixture: str | None = None
    faults: tuple[str, ...] = ()
    seed: int = 7
    burst_gap: float = BURST_GAP
    set_mtime: bool = True  # set each file's mtime to the fake clock (when speed != 1)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def fixture_lines(path: str) -> list[bytes]:
    with gzip.open(path, "rb") as f:
        return [line for line in f.read().split(b"\n") if line.strip()]


def _entries(options: SimulateOptions, rng: random.Random) -> Iterator[dict]:
    if options.source == "synthetic":
        from ..synthetic import make_entry

        while True:
            yield make_entry(rng, datetime.now(timezone.utc))
    if options.source != "fixture":
        raise ValueError(f"source must be fixture or synthetic, not {options.source!r}")
    lines = fixture_lines(options.fixture or _default_fixture())
    while True:
        for line in lines:
            yield json.loads(line)


def _default_fixture() -> str:
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "fixtures" / "archive_sample_2026-01-01.jsonl.gz"
        if candidate.exists():
            return str(candidate)
    raise FileNotFoundError("the real fixture archive_sample_2026-01-01.jsonl.gz was not found; use source='synthetic'")


def member_bytes(line: bytes, name: str) -> bytes:
    """The gzip member ``gzip.open(path, "ab")`` writes for ``line`` in the file ``name``."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename=name[:-3] if name.endswith(".gz") else name, mode="ab", fileobj=buffer) as f:
        f.write(line)
    return buffer.getvalue()


def hour_path(root: str, moment: datetime) -> str:
    return os.path.join(root, moment.strftime("%Y%m%d"), moment.strftime("%H") + ".jsonl.gz")


class Simulator:
    """Appends entries to ``root``; ``run()`` until ``count`` entries (or ``stop()`` is true)."""

    def __init__(self, root: str, options: SimulateOptions, log: Callable[[dict], None] | None = None,
                 stop: Callable[[], bool] | None = None):
        bad = [f for f in options.faults if f not in FAULTS]
        if bad:
            raise ValueError(f"unknown fault(s) {', '.join(bad)}: choose from {', '.join(FAULTS)}")
        self.root, self.options, self.log = root, options, log or (lambda record: None)
        self.stop = stop or (lambda: False)
        self.rng = random.Random(options.seed)
        self.start = options.start or datetime.now(timezone.utc)
        self.t0 = time.monotonic()
        self.written = 0
        self.boundaries: dict[str, list[int]] = {}  # member ends per file, for truncate
        count = options.count or 200
        step = max(1, count // (len(options.faults) + 1)) if options.faults else 0
        self.fault_at = {step * (i + 1): fault for i, fault in enumerate(options.faults)}

    def fake_now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self.t0) * self.options.speed)

    def run(self) -> int:
        entries = _entries(self.options, self.rng)
        count, rate = self.options.count, self.options.rate
        while count is None or self.written < count:
            burst_time = self.fake_now()
            size = self.rng.randint(*BURST_SIZES)
            for _ in range(size):
                if (count is not None and self.written >= count) or self.stop():
                    return self.written
                entry = next(entries)
                self.append(entry, burst_time)  # a burst shares one expired_ts, so one hour file
                if rate:
                    time.sleep(1.0 / rate)
            pause = self.options.burst_gap / max(self.options.speed, 1e-9)
            until = time.monotonic() + pause
            while time.monotonic() < until and (count is None or self.written < count):
                if self.stop():
                    return self.written
                time.sleep(min(0.05, max(0.0, until - time.monotonic())))
        return self.written

    def append(self, entry: dict, expired: datetime) -> None:
        meta = entry.setdefault("meta", {})
        meta["expired_ts"] = _iso(expired)
        meta["session_id"] = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        line = json.dumps(entry).encode() + b"\n"
        path = hour_path(self.root, expired)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.written += 1
        fault = self.fault_at.get(self.written)
        if fault in ("crash", "cut", "corrupt", "junk"):
            self._write_damage(path, line, fault)
        elif fault in ("truncate", "replace", "delete") and os.path.exists(path):
            self._rewrite(path, fault)
        with gzip.open(path, "ab") as f:  # the collector's way: three writes
            f.write(line)
        end = os.path.getsize(path)
        self.boundaries.setdefault(path, []).append(end)
        if self.options.set_mtime and self.options.speed != 1:
            stamp = expired.timestamp()
            os.utime(path, (stamp, stamp))
        self.log({"path": path, "end": end, "t": time.time(), "n": self.written, "session_id": meta["session_id"],
                  "fault": fault})

    def _write_damage(self, path: str, line: bytes, fault: str) -> None:
        whole = member_bytes(line, os.path.basename(path))
        if fault == "crash":
            data = whole[:19 + (len(whole) - 27) // 2]
        elif fault == "cut":
            data = whole[:-8]
        elif fault == "corrupt":
            flipped = bytearray(whole)
            flipped[len(whole) // 2] ^= 0x5A
            data = bytes(flipped)
        else:
            data = bytes(self.rng.randrange(32, 127) for _ in range(self.rng.randint(50, 500)))
        with open(path, "ab") as f:
            f.write(data)
        self.log({"path": path, "end": os.path.getsize(path), "t": time.time(), "n": None, "session_id": None,
                  "fault": fault, "damaged": len(data)})

    def _rewrite(self, path: str, fault: str) -> None:
        if fault == "delete":
            os.remove(path)
            self.boundaries.pop(path, None)
        elif fault == "replace":
            data = Path(path).read_bytes()
            tmp = path + ".tmp"
            Path(tmp).write_bytes(data)
            os.replace(tmp, path)
        else:
            ends = [e for e in self.boundaries.get(path, []) if e < os.path.getsize(path)]
            keep = ends[len(ends) // 2] if ends else 0
            with open(path, "r+b") as f:
                f.truncate(keep)
            self.boundaries[path] = [e for e in ends if e <= keep]
        self.log({"path": path, "end": os.path.getsize(path) if os.path.exists(path) else None, "t": time.time(),
                  "n": None, "session_id": None, "fault": fault})


def simulate(root: str, options: SimulateOptions | None = None, log: Callable[[dict], None] | None = None,
             stop: Callable[[], bool] | None = None) -> int:
    """Run the simulator; returns the number of entries appended."""
    return Simulator(root, options or SimulateOptions(), log, stop).run()
