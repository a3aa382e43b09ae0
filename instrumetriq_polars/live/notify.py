"""Delivering alert notifications: at least once, each carrying its dedupe key, kept on disk
until delivered.

``Outbox.put`` appends each (notification, target) to ``pending.jsonl`` in the outbox folder
and fsyncs it *before* the caller saves the rule engine's state: a crash in between re-creates
the same notifications with the same keys on restart, and ``put`` drops keys it already holds,
so nothing is sent twice by the outbox and nothing is lost. ``deliver`` sends what is due; a
failed send is retried with back-off (1 s, doubling, at most ``MAX_BACKOFF_S``); a delivered one
is recorded in ``sent.jsonl``. ``compact`` rewrites ``pending.jsonl`` without the delivered ones
(temp file, fsync, rename).

Targets (``rules.Notifier``): ``jsonl`` appends one JSON line per notification to a file;
``webhook`` POSTs ``{"version": 1, "key": ..., "alert": {...}}`` with the header
``Idempotency-Key``; ``alertmanager`` POSTs Alertmanager's v2 ``/api/v2/alerts`` body (a list of
``{labels, annotations, startsAt, endsAt}``), and firing alerts are re-sent every
``resend_s`` (``resend``), as Alertmanager expects of a client. ``sse`` is the server's own
alerts stream, not an outbox target.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from .rules import Notifier

MAX_BACKOFF_S = 300.0
HTTP_TIMEOUT_S = 5.0


class Outbox:
    """The notifications not yet delivered, on disk in ``folder``."""

    def __init__(self, folder: str | Path, notifiers: dict[str, Notifier], *, clock=time.time):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.notifiers = notifiers
        self.clock = clock
        self.lock = threading.Lock()
        self.items: dict[str, dict] = {}   # "key|target" -> {"alert", "target", "attempts", "due", "error"}
        self.sent: set[str] = set()
        self.delivered = 0
        self.failures = 0
        self._load()

    # -- disk ------------------------------------------------------------------------------------
    @property
    def pending_path(self) -> Path:
        return self.folder / "pending.jsonl"

    @property
    def sent_path(self) -> Path:
        return self.folder / "sent.jsonl"

    def _load(self) -> None:
        self.sent = {line["id"] for line in _read_lines(self.sent_path)}
        for line in _read_lines(self.pending_path):
            if line["id"] not in self.sent and line["target"] in self.notifiers:
                self.items[line["id"]] = {"alert": line["alert"], "target": line["target"], "attempts": 0,
                                          "due": 0.0, "error": None}

    def put(self, alerts: list[dict]) -> int:
        """Keep each alert for each of its outbox targets (fsynced); the number added."""
        lines, added = [], 0
        with self.lock:
            for alert in alerts:
                for target in alert.get("notify", []):
                    notifier = self.notifiers.get(target)
                    if notifier is None or notifier.type == "sse":
                        continue
                    ident = f"{alert['key']}|{target}"
                    if ident in self.items or ident in self.sent:
                        continue
                    self.items[ident] = {"alert": alert, "target": target, "attempts": 0, "due": 0.0, "error": None}
                    lines.append(orjson.dumps({"id": ident, "target": target, "alert": alert}) + b"\n")
                    added += 1
            if lines:
                _append(self.pending_path, b"".join(lines))
        return added

    def compact(self) -> None:
        """Rewrite pending.jsonl with what is still to deliver (atomic); sent.jsonl keeps every
        delivered id (~40 bytes each), so a notification re-created after a crash is not sent again."""
        with self.lock:
            pending = b"".join(orjson.dumps({"id": i, "target": item["target"], "alert": item["alert"]}) + b"\n"
                               for i, item in self.items.items())
            _replace(self.pending_path, pending)

    # -- sending ---------------------------------------------------------------------------------
    def due(self) -> list[str]:
        now = self.clock()
        with self.lock:
            return [i for i, item in self.items.items() if item["due"] <= now]

    def deliver(self) -> int:
        """Try every due notification once; the number delivered."""
        done = 0
        for ident in self.due():
            item = self.items.get(ident)
            if item is None:
                continue
            notifier = self.notifiers[item["target"]]
            try:
                send(notifier, [item["alert"]], clock=self.clock)
            except DeliveryError as exc:
                with self.lock:
                    item["attempts"] += 1
                    item["error"] = str(exc)
                    item["due"] = self.clock() + min(MAX_BACKOFF_S, 2.0 ** (item["attempts"] - 1))
                    self.failures += 1
                continue
            with self.lock:
                self.items.pop(ident, None)
                self.sent.add(ident)
                _append(self.sent_path, orjson.dumps({"id": ident}) + b"\n")
                self.delivered += 1
            done += 1
        if not self.items and self.pending_path.exists() and self.pending_path.stat().st_size > 1 << 20:
            self.compact()
        return done

    def resend(self, firing: list[dict]) -> None:
        """Re-send the firing alerts to every Alertmanager target (not kept: the next re-send is
        the retry)."""
        for notifier in self.notifiers.values():
            if notifier.type != "alertmanager":
                continue
            mine = [a for a in firing if notifier.name in a.get("notify", [])]
            if mine:
                try:
                    send(notifier, mine, clock=self.clock)
                except DeliveryError:
                    self.failures += 1

    def backlog(self) -> int:
        return len(self.items)


class DeliveryError(Exception):
    """One send failed (connection, timeout, HTTP status >= 300); retried later."""


def send(notifier: Notifier, alerts: list[dict], *, clock=time.time) -> None:
    """Deliver ``alerts`` to ``notifier`` once; ``DeliveryError`` when it fails."""
    if notifier.type == "jsonl":
        try:
            _append(Path(notifier.path), b"".join(orjson.dumps(a) + b"\n" for a in alerts))
        except OSError as exc:
            raise DeliveryError(f"{notifier.path}: {exc.strerror or exc}") from None
        return
    if notifier.type == "webhook":
        for alert in alerts:
            body = orjson.dumps({"version": 1, "key": alert["key"], "alert": alert})
            _post(notifier, notifier.url, body, {"Idempotency-Key": alert["key"]})
        return
    if notifier.type == "alertmanager":
        url = notifier.url.rstrip("/") + "/api/v2/alerts"
        _post(notifier, url, orjson.dumps([alertmanager_alert(a, clock()) for a in alerts]), {})
        return
    raise DeliveryError(f"notifier {notifier.name!r} of type {notifier.type!r} has no sender")


def alertmanager_alert(alert: dict, now: float, resend_s: float = 60.0) -> dict:
    """One alert as Alertmanager's v2 API takes it. A firing alert ends 4 re-send intervals from
    now unless re-sent (Alertmanager resolves it by itself if this process stops)."""
    if alert["status"] == "resolved":
        ends = alert["resolved_at"]
    else:
        ends = datetime.fromtimestamp(now, timezone.utc) + timedelta(seconds=4 * resend_s)
        ends = ends.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    annotations = {"summary": alert["summary"], "dedupe_key": alert["key"]}
    return {"labels": alert["labels"], "annotations": annotations,
            "startsAt": alert["fired_at"] or alert["active_at"], "endsAt": ends}


def _post(notifier: Notifier, url: str, body: bytes, extra: dict) -> None:
    headers = {"Content-Type": "application/json", **notifier.headers, **extra}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DeliveryError(f"{url}: {getattr(exc, 'reason', exc)}") from None


def _read_lines(path: Path) -> list[dict]:
    """The JSON lines of ``path``; a torn last line (a crash mid-append) is dropped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    out = []
    for line in data.split(b"\n"):
        if line.strip():
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
    return out


def _append(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(path: Path, data: bytes) -> None:
    temp = path.with_name(path.name + ".tmp")
    with open(temp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)


class Deliverer(threading.Thread):
    """A daemon thread that delivers the outbox every ``interval_s`` and re-sends firing alerts
    to Alertmanager every ``resend_s``; ``firing`` returns the firing alerts."""

    def __init__(self, outbox: Outbox, firing, *, interval_s: float = 0.5, resend_s: float = 60.0):
        super().__init__(name="alert-delivery", daemon=True)
        self.outbox, self.firing = outbox, firing
        self.interval_s, self.resend_s = interval_s, resend_s
        self.stopping = threading.Event()
        self.wake = threading.Event()

    def run(self) -> None:
        last_resend = time.monotonic()
        while not self.stopping.is_set():
            self.outbox.deliver()
            if time.monotonic() - last_resend >= self.resend_s:
                last_resend = time.monotonic()
                self.outbox.resend(self.firing())
            self.wake.wait(self.interval_s)
            self.wake.clear()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        self.join(timeout=HTTP_TIMEOUT_S + 1)
