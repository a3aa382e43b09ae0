"""Helpers for the live server's tests: a collector that appends gzip members as the real one does,
and a `live serve` running in a thread on 127.0.0.1 that a test can stop and start again."""

from __future__ import annotations

import gzip
import json
import random
import socket
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import httpx

from instrumetriq_polars.live.server import ServeOptions, bind, build_app, stopping_server_class
from instrumetriq_polars.synthetic import make_entry


class Collector:
    """Appends entries to ``archive/YYYYMMDD/HH.jsonl.gz`` with ``gzip.open(path, "ab")``, one
    member per entry, a burst sharing one ``meta.expired_ts`` (now, unless given)."""

    def __init__(self, archive: Path, seed: int = 1):
        self.archive = Path(archive)
        self.rng = random.Random(seed)
        self.count = 0

    def burst(self, n: int, when: datetime | None = None, symbols=None, **spot) -> list[dict]:
        when = when or datetime.now(timezone.utc)
        folder = self.archive / when.strftime("%Y%m%d")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{when.hour:02d}.jsonl.gz"
        entries = []
        for i in range(n):
            entry = make_entry(self.rng, when)
            entry["spot_prices"] = entry["spot_prices"][:20]
            entry["spot_raw"]["ticker24_chg"] = round(self.rng.uniform(-9, 9), 2)   # plausible, for the page
            stats = (entry.get("twitter_sentiment_windows") or {}).get("last_cycle", {}).get("hybrid_decision_stats")
            if isinstance(stats, dict):
                stats["mean_score"] = round(self.rng.uniform(-0.6, 0.6), 3)
            if symbols:
                entry["symbol"] = symbols[i % len(symbols)]
            entry["spot_raw"].update(spot)
            with gzip.open(path, "ab") as f:
                f.write(json.dumps(entry, separators=(",", ":")).encode() + b"\n")
            entries.append(entry)
            self.count += 1
        return entries


class Running:
    """A `live serve` app under uvicorn in a thread."""

    def __init__(self, options: ServeOptions, sndbuf: int | None = None):
        import uvicorn

        self.options = options
        self.app = build_app(options)
        self.sock = bind(options.host, options.port)
        if sndbuf:  # accepted sockets inherit it: a slow reader blocks the server after a few KB
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=1)
        self.server = stopping_server_class()(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)

    @property
    def hub(self):
        return self.app.state.hub

    def stop(self) -> None:
        if not self.thread.is_alive():
            return
        self.server.handle_exit(None, None)   # as SIGTERM does: streams end, then the server
        self.thread.join(timeout=20)
        self.sock.close()

    def restart(self, **changes) -> "Running":
        self.stop()
        return Running(replace(self.options, port=self.port, **changes))

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **kwargs)

    def wait_seq(self, seq: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.hub.last_seq < seq:
            if time.monotonic() > deadline:
                raise AssertionError(f"the server reached seq {self.hub.last_seq}, not {seq}")
            time.sleep(0.02)


def options(tmp_path: Path, **changes) -> ServeOptions:
    return ServeOptions(archive=str(tmp_path / "archive"), state_dir=str(tmp_path / "state"), port=0,
                        heartbeat_s=1.0, **changes)


def sse_events(lines) -> list[tuple[str, str | None, str]]:
    """(event, id, data) of the SSE text lines given (httpx's iter_lines)."""
    out, name, ident, data = [], "message", None, []
    for line in lines:
        if line == "":
            if data:
                out.append((name, ident, "\n".join(data)))
            name, ident, data = "message", None, []
        elif line.startswith(":"):
            continue
        else:
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "event":
                name = value
            elif key == "id":
                ident = value
            elif key == "data":
                data.append(value)
    return out
