"""``live serve``: the follower and an HTTP server in one process (starlette + uvicorn, the
optional extra ``[live]``).

One thread runs the follower (``feed.py``): each poll's records are journaled by the follower,
handed to the hub (``hub.py``, in the event loop), evaluated by the alert rules and published to
R2 when asked. The HTTP side only reads the hub and the journal. Endpoints (JSON unless said):

- ``/v1/stream?after=&fields=&symbols=``: Server-Sent Events, ``id:`` = ``seq``; resume with
  ``Last-Event-ID`` or ``after``; a cursor older than the journal gets 410 with ``oldest_seq``, one
  beyond the last ``seq`` 409;
  system events carry no ``id``; a comment every ``heartbeat_s`` and a ``heartbeat`` event with
  the last entry's age;
- ``/v1/latest?symbols=&fields=``: the latest entry per symbol and the ``seq`` it is current at;
- ``/v1/entries?after=&limit=&format=jsonl|arrow|parquet`` and ``/v1/entries/{seq}``;
- ``/v1/alerts``, ``/v1/alerts/stream`` (SSE, resumable), ``/v1/rules``;
- ``/v1/health``: 200, or 503 when stale, the journal cannot be written, or the follower stopped;
- ``/metrics``: Prometheus text; ``/``: the live page (``page/``).

The SSE framing is written here (a few lines): sse-starlette did not earn its place (it does not
work behind GZipMiddleware, and the framing is the easy part).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from ..errors import LiveError
from .feed import Feed
from .hub import CLOSING, LATENCY_BUCKETS, OVERFLOW, Client, Hub, entry_frame, event_frame, project
from .tier1 import TIER1_SCHEMA, tier1_frame

PAGE = Path(__file__).with_name("page")
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class ServeOptions:
    """Everything ``live serve`` is told (the CLI fills it from its flags)."""

    archive: str
    state_dir: str
    host: str = "127.0.0.1"
    port: int = 8765
    rules: str | None = None
    ring_size: int = 10_000
    queue_size: int = 1_000
    heartbeat_s: float = 15.0
    stale_s: float = 25 * 60.0
    token_file: str | None = None
    cors_origin: str | None = None
    fresh_start: str = "beginning"
    mode: str = "auto"
    poll_interval: float = 0.25
    settle_s: float = 5.0
    publish_r2: str | None = None      # an s3:// prefix (``tier1/live/`` goes under it)
    r2_options: dict | None = None
    follow: dict = field(default_factory=dict)  # more FollowOptions fields


def _token(options: ServeOptions) -> str | None:
    if not options.token_file:
        return None
    try:
        token = Path(options.token_file).read_text().strip()
    except OSError as exc:
        raise LiveError(f"{options.token_file}: cannot read the token file ({exc.strerror or exc})") from None
    if not token:
        raise LiveError(f"{options.token_file}: the token file is empty; put the bearer token in it")
    return token


def build_app(options: ServeOptions) -> Starlette:
    """The ASGI app; its lifespan starts and stops the feed thread."""
    token = _token(options)
    hub = Hub(options.state_dir, ring_size=options.ring_size, queue_size=options.queue_size)
    feed = Feed(options, hub)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await asyncio.to_thread(feed.prepare)
        feed.start(asyncio.get_running_loop())
        try:
            yield
        finally:
            await asyncio.to_thread(feed.stop)

    def denied(request: Request) -> Response | None:
        if token is None:
            return None
        given = request.headers.get("authorization", "")
        if given == f"Bearer {token}" or request.query_params.get("token") == token:
            return None
        return JSONResponse({"error": "a bearer token is required"}, 401, headers={"WWW-Authenticate": "Bearer"})

    def guarded(handler):
        async def wrapper(request: Request):
            return denied(request) or await handler(request)
        return wrapper

    def fields_of(request: Request) -> list[str] | None:
        text = request.query_params.get("fields")
        if not text or text == "tier1":
            return None
        names = [n for n in text.split(",") if n]
        unknown = [n for n in names if n not in TIER1_SCHEMA]
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(unknown)}")
        return names if "seq" in names else ["seq", *names]

    def symbols_of(request: Request) -> set[str] | None:
        text = request.query_params.get("symbols")
        return {s for s in text.split(",") if s} if text else None

    def cursor_of(request: Request) -> int | None:
        text = request.headers.get("last-event-id") or request.query_params.get("after")
        if text is None or text == "":
            return None
        value = int(text)
        if value < 0:
            raise ValueError("after must be >= 0")
        return value

    def bad(message: str) -> Response:
        return JSONResponse({"error": message}, 400)

    def gone(after: int) -> Response:
        return JSONResponse({"error": f"entries after {after} are no longer kept", "oldest_seq": hub.oldest_seq,
                             "last_seq": hub.last_seq}, 410)

    def ahead(after: int) -> Response:
        """A cursor past the feed's last seq: the state folder is not the one the client read
        (a new one starts at 1 again); skipping to it would lose entries without a word."""
        return JSONResponse({"error": f"cursor {after} is beyond the feed's last seq {hub.last_seq} "
                                      "(a new state folder?); read /v1/latest and resume from its seq",
                             "last_seq": hub.last_seq}, 409)

    async def entries_after(after: int, limit: int) -> list[tuple[int, dict]]:
        rows = hub.from_ring(after, limit)
        if rows is not None:
            return rows
        records = await asyncio.to_thread(lambda: list(hub.read_journal(after, limit)))
        return [(r["seq"], r["row"]) for r in records]

    async def stream(request: Request):
        try:
            after, fields, symbols = cursor_of(request), fields_of(request), symbols_of(request)
        except ValueError as exc:
            return bad(str(exc))
        if after is not None and after + 1 < hub.oldest_seq:
            return gone(after)
        if after is not None and after > hub.last_seq:
            return ahead(after)
        client = Client(fields, symbols, options.queue_size)
        hub.clients.add(client)
        start = hub.last_seq if after is None else after

        async def frames():
            sent = start
            try:
                yield b": connected\n\n" + event_frame("hello", {"last_seq": hub.last_seq, "resume_after": start})
                while sent < hub.last_seq:  # the backlog, from memory or the journal
                    batch = await entries_after(sent, 500)
                    if not batch:
                        break
                    chunk = []
                    for seq, row in batch:
                        if client.wants(row):
                            chunk.append(entry_frame(seq, orjson.dumps(project(row, fields))))
                        sent = seq
                    client.sent_seq = sent
                    yield b"".join(chunk)
                    if client.overflowed:
                        break
                while True:
                    try:
                        item = await asyncio.wait_for(client.queue.get(), options.heartbeat_s)
                    except asyncio.TimeoutError:
                        age = hub.last_entry_age()
                        yield b": keepalive\n\n" + event_frame("heartbeat", {"last_seq": hub.last_seq,
                                                                             "last_entry_age_s": None if age is None else round(age, 3)})
                        continue
                    if item is OVERFLOW:
                        yield event_frame("overflow", {"resume_after": sent, "reason": "the client read too slowly; "
                                                       "reconnect with Last-Event-ID to resume"})
                        return
                    if item is CLOSING:
                        yield event_frame("shutdown", {"resume_after": sent, "reason": "the server is stopping"})
                        return
                    if isinstance(item, bytes):
                        yield item
                        continue
                    seq, row, published = item
                    if seq <= sent:
                        continue
                    sent = client.sent_seq = seq
                    hub.delivered_total += 1
                    hub.observe_latency(time.monotonic() - published)
                    yield entry_frame(seq, orjson.dumps(project(row, fields)))
            finally:
                hub.clients.discard(client)

        return _sse(frames())

    async def latest(request: Request):
        try:
            fields, symbols = fields_of(request), symbols_of(request)
        except ValueError as exc:
            return bad(str(exc))
        rows = [project(row, fields) for symbol, (seq, row) in sorted(hub.latest.items())
                if symbols is None or symbol in symbols]
        return _json({"seq": hub.last_seq, "entries": rows})

    async def entries(request: Request):
        try:
            after = int(request.query_params.get("after", "0"))
            limit = min(int(request.query_params.get("limit", "1000")), MAX_LIMIT)
            fields = fields_of(request)
        except ValueError as exc:
            return bad(str(exc))
        fmt = request.query_params.get("format", "jsonl")
        if fmt not in ("jsonl", "arrow", "parquet"):
            return bad("format must be jsonl, arrow or parquet")
        if after + 1 < hub.oldest_seq:
            return gone(after)
        rows = [project(row, fields) for _, row in await entries_after(after, max(limit, 0))]
        headers = {"X-Last-Seq": str(hub.last_seq)}
        if fmt == "jsonl":
            return Response(b"".join(orjson.dumps(r) + b"\n" for r in rows), media_type="application/x-ndjson", headers=headers)
        frame = tier1_frame(rows, fields)
        buffer = io.BytesIO()
        if fmt == "arrow":
            frame.write_ipc_stream(buffer)
            return Response(buffer.getvalue(), media_type="application/vnd.apache.arrow.stream", headers=headers)
        frame.write_parquet(buffer)
        return Response(buffer.getvalue(), media_type="application/vnd.apache.parquet", headers=headers)

    async def one_entry(request: Request):
        seq = request.path_params["seq"]
        rows = await entries_after(seq - 1, 1)
        if not rows or rows[0][0] != seq:
            return JSONResponse({"error": f"no entry {seq}", "last_seq": hub.last_seq}, 404)
        return _json(rows[0][1])

    async def alerts(request: Request):
        engine = feed.engine
        return _json({"alerts": engine.alerts() if engine else [], "firing": engine.firing_count() if engine else 0})

    async def alerts_stream(request: Request):
        try:
            after = cursor_of(request)
        except ValueError as exc:
            return bad(str(exc))
        client = Client(None, None, options.queue_size)
        hub.alert_clients.add(client)
        backlog = [frame for ident, frame in hub.alert_events if after is not None and ident > after]

        async def frames():
            try:
                yield b": connected\n\n" + b"".join(backlog)
                while True:
                    try:
                        item = await asyncio.wait_for(client.queue.get(), options.heartbeat_s)
                    except asyncio.TimeoutError:
                        yield b": keepalive\n\n"
                        continue
                    if item is OVERFLOW:
                        yield event_frame("overflow", {"reason": "the client read too slowly"})
                        return
                    if item is CLOSING:
                        yield event_frame("shutdown", {"reason": "the server is stopping"})
                        return
                    yield item
            finally:
                hub.alert_clients.discard(client)

        return _sse(frames())

    async def rules(request: Request):
        ruleset = feed.ruleset
        return _json({"path": ruleset.path if ruleset else None,
                      "rules": [r.to_dict() for r in ruleset.rules] if ruleset else []})

    async def health(request: Request):
        await asyncio.to_thread(feed.status)
        problems = feed.problems(options.stale_s)
        body = {"status": "ok" if not problems else "unhealthy", "problems": problems, "last_seq": hub.last_seq,
                "last_entry_age_s": _round(hub.last_entry_age()), "entries_last_hour": hub.entries_last_hour()}
        return _json(body, 503 if problems else 200)

    async def metrics(request: Request):
        await asyncio.to_thread(feed.status)
        return PlainTextResponse(_metrics(hub, feed), media_type="text/plain; version=0.0.4")

    async def page(request: Request):
        return FileResponse(PAGE / "index.html", media_type="text/html")

    async def asset(request: Request):
        name = request.path_params["name"]
        path = PAGE / name
        if "/" in name or name.startswith(".") or not path.is_file():
            return PlainTextResponse("not found", 404)
        return FileResponse(path)

    routes = [
        Route("/", page), Route("/static/{name}", asset),
        Route("/v1/stream", guarded(stream)), Route("/v1/latest", guarded(latest)),
        Route("/v1/entries", guarded(entries)), Route("/v1/entries/{seq:int}", guarded(one_entry)),
        Route("/v1/alerts", guarded(alerts)), Route("/v1/alerts/stream", guarded(alerts_stream)),
        Route("/v1/rules", guarded(rules)), Route("/v1/health", guarded(health)), Route("/metrics", guarded(metrics)),
    ]
    middleware = []
    if options.cors_origin:
        middleware.append(Middleware(CORSMiddleware, allow_origins=[options.cors_origin], allow_methods=["GET"],
                                     allow_headers=["Authorization", "Last-Event-ID"]))
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.hub, app.state.feed = hub, feed
    return app


def _sse(frames) -> StreamingResponse:
    return StreamingResponse(frames, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _json(body, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def _round(value):
    return None if value is None else round(value, 3)


def _metrics(hub: Hub, feed: Feed) -> str:
    lines = []

    def metric(name: str, kind: str, text: str, value) -> None:
        lines.extend([f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {value}"])

    age = hub.last_entry_age()
    metric("instrumetriq_live_entries_total", "counter", "Entries the follower appended since the server started.", hub.entries_total)
    metric("instrumetriq_live_entries_delivered_total", "counter", "Entries sent to stream clients.", hub.delivered_total)
    metric("instrumetriq_live_last_seq", "gauge", "The last seq of the feed.", hub.last_seq)
    metric("instrumetriq_live_last_entry_age_seconds", "gauge", "Seconds since the last entry was appended (NaN: none yet).",
           "NaN" if age is None else round(age, 3))
    metric("instrumetriq_live_bytes_behind", "gauge", "Archive bytes not yet read by the follower.", feed.bytes_behind())
    metric("instrumetriq_live_damaged_bytes_total", "counter", "Archive bytes skipped as damaged spans.", feed.damaged_bytes())
    metric("instrumetriq_live_clients", "gauge", "Connected stream clients (entries and alerts).", len(hub.clients) + len(hub.alert_clients))
    metric("instrumetriq_live_client_overflows_total", "counter", "Clients disconnected because their queue was full.", hub.overflows_total)
    metric("instrumetriq_live_alerts_firing", "gauge", "Alert instances firing.", feed.engine.firing_count() if feed.engine else 0)
    metric("instrumetriq_live_notifications_pending", "gauge", "Notifications not yet delivered (kept on disk).",
           feed.outbox.backlog() if feed.outbox else 0)
    name = "instrumetriq_live_delivery_latency_seconds"
    lines += [f"# HELP {name} From the follower handing an entry over to its event being written to a client.",
              f"# TYPE {name} histogram"]
    total = 0
    for bound, count in zip(LATENCY_BUCKETS, hub.latency_counts):
        total += count
        lines.append(f'{name}_bucket{{le="{bound}"}} {total}')
    total += hub.latency_counts[-1]
    lines += [f'{name}_bucket{{le="+Inf"}} {total}', f"{name}_sum {round(hub.latency_sum, 6)}", f"{name}_count {total}"]
    return "\n".join(lines) + "\n"


def bind(host: str, port: int) -> socket.socket:
    """The listening socket; a port in use is one ``LiveError`` line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise LiveError(f"{host}:{port} is already in use (another live serve?); stop it or pick another port") from None
        raise LiveError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def stopping_server_class():
    """uvicorn's Server that, on SIGINT/SIGTERM, first ends every open stream (each gets a
    ``shutdown`` event), so the graceful shutdown does not wait for them and cancel them."""
    import uvicorn

    class ClosingServer(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            feed = self.config.app.state.feed
            if feed.loop is not None and not feed.loop.is_closed():
                feed.loop.call_soon_threadsafe(self.config.app.state.hub.close_streams)
            super().handle_exit(sig, frame)

    return ClosingServer


def serve(options: ServeOptions, *, ready=None) -> None:
    """Run until SIGINT/SIGTERM. ``ready(url)`` is called once the socket is bound."""
    import uvicorn

    app = build_app(options)
    ClosingServer = stopping_server_class()
    sock = bind(options.host, options.port)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2)
    server = ClosingServer(config)
    if ready is not None:
        ready(f"http://{options.host}:{port}")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
