"""The server's feed thread: runs the follower (``api.follow``, consumer ``serve``), hands each
batch to the hub in the event loop, evaluates the alert rules on it, queues notifications, and
publishes to R2 when asked; a second thread shows the rules the wall clock (``TICK_S``).

Alert state: ``STATE/alerts/engine.json`` (the engine's instances, windows and the last ``seq`` it
evaluated), written atomically after the outbox has the notifications (``notify.Outbox``), so a
restart neither repeats nor loses a notification. On start the engine first catches up from the
journal with the entries after its ``seq`` (rules without a saved state start at the journal's end).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time

import orjson

from ..errors import LiveError
from . import journal as jn
from .alerts import AlertEngine
from .backtest import load as load_rules
from .api import follow
from .status import status as live_status
from .follower import FollowOptions
from .notify import Deliverer, Outbox
from .tier1 import tier1_frame

STALL_S = 120.0  # bytes left unread this long after a file stopped growing: stalled on damage
STATUS_S = 10.0  # how old the state folder's status (bytes behind, damage) may be when shown
ACK_S = 1.0     # the consumer cursor's write interval (a restart re-reads at most this much journal)
TICK_S = 0.5    # how often the rules see the wall clock (a burst settles, absent rules)
CONSUMER = "serve"  # the follower's consumer name: the journal cursor of what the server handled


class Feed:
    """See the module docstring. ``prepare`` (blocking: rules, journal, engine catch-up), ``start``
    (the thread), ``stop``."""

    def __init__(self, options, hub):
        self.options = options
        self.hub = hub
        self.ruleset = None
        self.engine: AlertEngine | None = None
        self.outbox: Outbox | None = None
        self.deliverer: Deliverer | None = None
        self.publisher = None
        self.r2_queue: queue.Queue = queue.Queue()
        self.r2_thread: threading.Thread | None = None
        self._saved = 0.0
        self._status: dict | None = None
        self._status_at = 0.0
        self._behind_since: dict[tuple, float] = {}
        self.ticker: threading.Thread | None = None
        self.lock = threading.Lock()
        self.error: str | None = None
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.loop = None
        self.folder = os.path.join(options.state_dir, "alerts")

    # -- life ----------------------------------------------------------------------------------------
    def prepare(self) -> None:
        options = self.options
        if "://" not in options.archive and not os.path.isdir(options.archive):
            raise LiveError(f"the archive root {options.archive} does not exist; check the archive path (or start the collector first)")
        os.makedirs(options.state_dir, exist_ok=True)
        self.hub.load_journal()
        if options.rules:
            self.ruleset = load_rules(options.rules)
            os.makedirs(self.folder, exist_ok=True)
            state = _read_json(os.path.join(self.folder, "engine.json"))
            self.engine = AlertEngine(self.ruleset, settle_s=options.settle_s, state=state.get("engine") if state else None)
            if state is None:  # new rules over an old journal: from now on, not the journal's history
                self.engine.last_seq = self.hub.last_seq
            self.hub.alert_seq = state.get("alert_seq", 0) if state else 0
            self.outbox = Outbox(os.path.join(self.folder, "outbox"), self.ruleset.notifiers)
            self._catch_up()
        if options.publish_r2:
            from .r2 import Publisher
            self.publisher = Publisher(options.publish_r2, options.r2_options)

    def start(self, loop) -> None:
        self.loop = loop
        if self.outbox is not None:
            self.deliverer = Deliverer(self.outbox, self._firing)
            self.deliverer.start()
            self.ticker = threading.Thread(target=self._tick, name="live-rules", daemon=True)
            self.ticker.start()
        if self.publisher is not None:
            self.r2_thread = threading.Thread(target=self._publish, name="live-r2", daemon=True)
            self.r2_thread.start()
        self.thread = threading.Thread(target=self._run, name="live-feed", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in (self.thread, self.ticker, self.r2_thread):
            if thread is not None:
                thread.join(timeout=10)
        if self.engine is not None:
            with self.lock:
                self._save()
        if self.deliverer is not None:
            self.deliverer.stop()

    # -- the threads ---------------------------------------------------------------------------------
    def _run(self) -> None:
        options = self.options
        follow_options = FollowOptions(mode=options.mode, poll_interval=options.poll_interval, **options.follow)
        unacked, acked = None, 0.0   # the cursor is written at most every ACK_S (an fsynced file: ~15 ms here)
        fresh = not os.path.exists(os.path.join(options.state_dir, jn.JOURNAL))
        start = options.fresh_start if fresh and options.fresh_start == "now" else "checkpoint"
        try:
            batches = follow(options.archive, options.state_dir, start=start, consumer=CONSUMER,
                             options=follow_options, stop=self.stopping)
            for batch in batches:
                records = [{"k": "e", "seq": e.seq, "row": e.tier1} for e in batch.entries]
                records += [{"k": "v", "type": ev.type, "after_seq": ev.after_seq, **ev.data} for ev in batch.events]
                records.sort(key=lambda r: (r.get("seq") or r.get("after_seq") or 0, r["k"] == "v"))
                if records:
                    self.loop.call_soon_threadsafe(self.hub.publish, records, time.time())
                    self._evaluate(records)
                    if self.publisher is not None:
                        self.r2_queue.put(records)   # its own thread: a slow R2 never holds the feed
                if batch.last_seq is not None:
                    unacked = batch
                if unacked is not None and time.monotonic() - acked >= ACK_S:
                    unacked.ack()
                    unacked, acked = None, time.monotonic()
        except Exception as exc:  # the follower stopped: /v1/health says so, and stderr once
            self.error = f"{type(exc).__name__}: {exc}"
            print(f"error: live serve: the follower stopped: {exc}", file=sys.stderr, flush=True)
        finally:
            if unacked is not None:
                unacked.ack()

    def _publish(self) -> None:
        """Upload to R2 what the feed queued, all that waits at once (a failed upload is retried
        with the next burst: ``r2.Publisher``)."""
        while not self.stopping.is_set():
            try:
                records = self.r2_queue.get(timeout=TICK_S)
            except queue.Empty:
                continue
            while not self.r2_queue.empty():
                records = records + self.r2_queue.get_nowait()
            self.publisher.publish(records)

    def _tick(self) -> None:
        while not self.stopping.wait(TICK_S):
            with self.lock:
                alerts = self.engine.tick(time.time())
                self._alerts(alerts)

    def _firing(self) -> list[dict]:
        with self.lock:
            return self.engine.alerts(("firing",))

    def _evaluate(self, records: list[dict]) -> None:
        if self.engine is None:
            return
        with self.lock:
            rows = [r["row"] for r in records if r.get("k") == "e" and r["seq"] > self.engine.last_seq]
            if rows:
                out = self.engine.push(tier1_frame(rows), now=time.time())
                self.engine.last_seq = rows[-1]["seq"]
                self._alerts(out, force=True)

    def _alerts(self, alerts: list[dict], force: bool = False) -> None:
        if alerts:
            self.outbox.put(alerts)       # on disk first ...
        if alerts or (force and time.monotonic() - self._saved >= ACK_S):
            self._save()                  # ... then the state that made them (else at most every ACK_S:
                                          # evaluation is deterministic, re-made notifications keep their keys)
        streamed = [a for a in alerts if "sse" in a["notify"]]   # the alerts stream is the "sse" notifier
        if streamed:
            self.loop.call_soon_threadsafe(self.hub.publish_alerts, streamed)
        if alerts and self.deliverer is not None:
            self.deliverer.wake.set()

    def _save(self) -> None:
        state = {"engine": self.engine.state(), "alert_seq": self.hub.alert_seq}
        jn.atomic_write(os.path.join(self.folder, "engine.json"), orjson.dumps(state))
        self._saved = time.monotonic()

    def _catch_up(self) -> None:
        """Evaluate the journal's entries after the engine's last seq (a restart)."""
        batch = []
        for record in self.hub.read_journal(self.engine.last_seq):
            batch.append(record["row"])
            if len(batch) >= 1000:
                self._push_rows(batch)
                batch = []
        if batch:
            self._push_rows(batch)

    def _push_rows(self, rows: list[dict]) -> None:
        out = self.engine.push(tier1_frame(rows), now=time.time())
        self.engine.last_seq = rows[-1]["seq"]
        if out:
            self.outbox.put(out)
        self._save()

    # -- figures -------------------------------------------------------------------------------------
    def status(self) -> dict:
        """``live.status`` of the state folder, at most ``STATUS_S`` old (it replays the journal's
        book: blocking, run it in a thread), with the files stalled on undecided bytes."""
        now = time.time()
        if self._status is None or now - self._status_at > STATUS_S:
            try:
                fresh = live_status(self.options.state_dir, self.options.archive)
            except Exception as exc:  # a state folder being written: keep the last one
                fresh = dict(self._status or {}, error=f"{type(exc).__name__}: {exc}")
            for item in fresh.get("files", []):
                key = (item["file"], item.get("size"), item.get("offset"))
                if item.get("behind"):
                    self._behind_since.setdefault(key, now)
            current = {(i["file"], i.get("size"), i.get("offset")) for i in fresh.get("files", []) if i.get("behind")}
            self._behind_since = {k: v for k, v in self._behind_since.items() if k in current}
            fresh["stalled"] = sorted({k[0] for k, since in self._behind_since.items() if now - since > STALL_S})
            self._status, self._status_at = fresh, now
        return self._status

    def problems(self, stale_s: float) -> list[str]:
        out = []
        age = self.hub.last_entry_age()
        if age is not None and age > stale_s:
            out.append(f"stale: no entry for {age:.0f} s (limit {stale_s:.0f} s)")
        if self.error:
            out.append(f"the follower stopped: {self.error}")
        elif self.thread is not None and not self.thread.is_alive() and not self.stopping.is_set():
            out.append("the follower stopped")
        journal = os.path.join(self.options.state_dir, jn.JOURNAL)
        if not os.access(journal if os.path.exists(journal) else self.options.state_dir, os.W_OK):
            out.append(f"the journal cannot be written ({journal})")
        stalled = (self._status or {}).get("stalled")
        if stalled:
            out.append(f"stalled on damage: {', '.join(stalled)}")
        return out

    def bytes_behind(self) -> int:
        return int((self._status or {}).get("bytes_behind") or 0)

    def damaged_bytes(self) -> int:
        spans = (self._status or {}).get("damaged_spans") or []
        return sum(max(0, int(d.get("end") or 0) - int(d.get("start") or 0)) for d in spans)


def _read_json(path: str) -> dict | None:
    try:
        with open(path, "rb") as f:
            return orjson.loads(f.read())
    except FileNotFoundError:
        return None
    except orjson.JSONDecodeError:
        return None
