"""`live serve` over HTTP on 127.0.0.1: the stream's ids and resume (also after a restart with the
ring emptied: served from the journal), 410 for a cursor older than the journal, the snapshot,
replay in three formats, health and metrics, the bearer token, a port in use, and the Python
client across a restart."""

from __future__ import annotations

import io
import itertools
import socket
import threading
import time

import httpx
import orjson
import polars as pl
import pyarrow.parquet as pq
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from instrumetriq_polars.errors import LiveError  # noqa: E402
from instrumetriq_polars.live import subscribe  # noqa: E402
from instrumetriq_polars.live.server import bind  # noqa: E402

from .support.live_server import Collector, Running, options, sse_events  # noqa: E402


def read_stream(server: Running, count: int, headers=None, params=None, timeout=20.0):
    """The first ``count`` entry events of /v1/stream (and every event read on the way)."""
    events = []
    with httpx.stream("GET", server.url + "/v1/stream", headers=headers or {}, params=params or {}, timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = []
        for line in response.iter_lines():
            lines.append(line)
            if line == "":
                events = sse_events(lines)
                if sum(e[0] == "entry" for e in events) >= count:
                    break
    return events


@pytest.fixture
def served(tmp_path):
    started = []

    def start(**changes):
        (tmp_path / "archive").mkdir(exist_ok=True)
        started.append(Running(options(tmp_path, **changes)))
        return started[-1]
    yield start
    for server in started:
        server.stop()


def test_stream_ids_resume_and_a_restart_served_from_the_journal(tmp_path, served):
    collector = Collector(tmp_path / "archive")
    collector.burst(6)
    server = served(ring_size=3)
    server.wait_seq(6)
    events = read_stream(server, 6, params={"after": 0})
    entries = [e for e in events if e[0] == "entry"]
    assert [int(e[1]) for e in entries] == [1, 2, 3, 4, 5, 6]
    assert all(orjson.loads(e[2])["seq"] == int(e[1]) for e in entries)
    assert [e[1] for e in events if e[0] != "entry"] == [None] * (len(events) - 6)  # system events: no id
    # disconnect after 4, resume with Last-Event-ID: exactly the rest, including what came since
    collector.burst(4)
    server.wait_seq(10)
    rest = [int(e[1]) for e in read_stream(server, 6, headers={"Last-Event-ID": "4"}) if e[0] == "entry"]
    assert rest == [5, 6, 7, 8, 9, 10]
    # a restart: a new process's memory (ring of 3); entries 3..10 come from the journal
    server = server.restart()
    assert server.hub.last_seq == 10 and len(server.hub.ring) == 3
    collector.burst(2)
    server.wait_seq(12)
    again = [int(e[1]) for e in read_stream(server, 10, headers={"Last-Event-ID": "2"}) if e[0] == "entry"]
    assert again == list(range(3, 13))
    one = server.get("/v1/entries/4").json()
    assert one["seq"] == 4 and one["symbol"]
    assert server.get("/v1/entries/99").status_code == 404


def test_a_cursor_older_than_the_journal_gets_410(tmp_path, served):
    from instrumetriq_polars.live.compact import compact

    collector = Collector(tmp_path / "archive")
    collector.burst(3)
    server = served()
    server.wait_seq(3)
    server.stop()
    compact(str(tmp_path / "state"), keep_days=0, now=time.time() + 60)   # the journal drops seq 1..3
    collector.burst(2)
    server = served()
    server.wait_seq(5)
    assert server.hub.oldest_seq == 4
    response = server.get("/v1/stream", params={"after": 1})
    assert response.status_code == 410 and response.json()["oldest_seq"] == 4
    assert server.get("/v1/entries", params={"after": 0}).status_code == 410
    assert [int(e[1]) for e in read_stream(server, 2, params={"after": 3}) if e[0] == "entry"] == [4, 5]
    assert server.get("/v1/stream", params={"after": "x"}).status_code == 400


def test_latest_snapshot_replay_formats_health_and_metrics(tmp_path, served):
    collector = Collector(tmp_path / "archive")
    collector.burst(5, symbols=["AAA", "BBB"])
    server = served()
    server.wait_seq(5)
    latest = server.get("/v1/latest", params={"fields": "mid,spread_bps"}).json()
    assert latest["seq"] == 5
    assert [(e["seq"], sorted(e)) for e in latest["entries"]] == [(5, ["mid", "seq", "spread_bps"]), (4, ["mid", "seq", "spread_bps"])]
    only = server.get("/v1/latest", params={"symbols": "BBB"}).json()["entries"]
    assert [e["symbol"] for e in only] == ["BBB"]
    lines = server.get("/v1/entries", params={"after": 1, "limit": 3}).text.splitlines()
    assert [orjson.loads(line)["seq"] for line in lines] == [2, 3, 4]
    arrow = pl.read_ipc_stream(io.BytesIO(server.get("/v1/entries", params={"format": "arrow"}).content))
    assert arrow["seq"].to_list() == [1, 2, 3, 4, 5] and arrow.schema["expired_ts"] == pl.Datetime("us", "UTC")
    parquet = pq.read_table(io.BytesIO(server.get("/v1/entries", params={"format": "parquet", "fields": "symbol"}).content))
    assert parquet.column_names == ["seq", "symbol"] and parquet.num_rows == 5
    assert server.get("/v1/entries", params={"fields": "nosuch"}).status_code == 400
    health = server.get("/v1/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    metrics = server.get("/metrics").text
    for name in ("instrumetriq_live_entries_delivered_total", "instrumetriq_live_last_entry_age_seconds",
                 "instrumetriq_live_bytes_behind", "instrumetriq_live_damaged_bytes_total", "instrumetriq_live_clients",
                 "instrumetriq_live_alerts_firing", 'instrumetriq_live_delivery_latency_seconds_bucket{le="+Inf"}'):
        assert f"\n{name} " in "\n" + metrics, name
    stale = server.restart(stale_s=0.0)
    time.sleep(0.05)
    response = stale.get("/v1/health")
    assert response.status_code == 503 and response.json()["problems"][0].startswith("stale")


def test_bearer_token_cors_and_a_port_in_use(tmp_path, served):
    (tmp_path / "token").write_text("s3cret\n")
    server = served(token_file=str(tmp_path / "token"), cors_origin="https://dash.example")
    assert server.get("/v1/latest").status_code == 401
    assert server.get("/v1/latest", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert server.get("/v1/latest", params={"token": "s3cret"}).status_code == 200   # EventSource has no headers
    assert server.get("/").status_code == 200   # the page holds no data
    cors = server.get("/v1/health", params={"token": "s3cret"}, headers={"Origin": "https://dash.example"})
    assert cors.headers["access-control-allow-origin"] == "https://dash.example"
    with pytest.raises(LiveError) as info:
        bind("127.0.0.1", server.port)
    assert str(info.value) == f"127.0.0.1:{server.port} is already in use (another live serve?); stop it or pick another port"


@pytest.mark.slow
def test_the_python_client_sees_no_gap_and_no_duplicate_across_a_restart(tmp_path, served):
    collector = Collector(tmp_path / "archive")
    collector.burst(4)
    server = served(ring_size=2)
    server.wait_seq(4)
    got = []
    stream = subscribe(server.url, after=0, fields=["symbol", "mid"], retry_s=0.2, timeout=5)
    got += [row["seq"] for row in itertools.islice(stream, 4)]
    holder = {}

    def restart():
        holder["server"] = server.restart()
        collector.burst(3)
    thread = threading.Thread(target=restart)
    thread.start()
    got += [row["seq"] for row in itertools.islice(stream, 3)]
    thread.join()
    restarted = holder["server"]
    try:
        assert got == [1, 2, 3, 4, 5, 6, 7]
        frames = list(itertools.islice(subscribe(restarted.url, after=5, as_polars=True), 2))
        assert [f["seq"].item() for f in frames] == [6, 7] and frames[0].schema["mid"] == pl.Float64
        with pytest.raises(LiveError, match="HTTP 401|HTTP 410|HTTP 400"):
            next(subscribe(restarted.url, after=-1))
    finally:
        restarted.stop()


@pytest.mark.slow
def test_the_serve_command_says_a_port_in_use_in_one_line(tmp_path):
    import subprocess
    import sys

    (tmp_path / "archive").mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "instrumetriq_polars", "live", "serve", "--archive-path", str(tmp_path / "archive"),
                               "--state-dir", str(tmp_path / "state"), "--port", str(port)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [f"error: 127.0.0.1:{port} is already in use (another live serve?); stop it or pick another port"]


def test_the_client_with_symbols_fills_the_gaps_between_them(tmp_path, served):
    collector = Collector(tmp_path / "archive")
    collector.burst(6, symbols=["AAA", "BBB", "CCC"])
    server = served()
    server.wait_seq(6)
    rows = list(itertools.islice(subscribe(server.url, after=0, symbols=["BBB"], fields=["symbol"]), 2))
    assert [(r["seq"], r["symbol"]) for r in rows] == [(2, "BBB"), (5, "BBB")]


def test_a_cursor_beyond_the_last_seq_is_409_not_a_silent_skip(tmp_path, served):
    Collector(tmp_path / "archive").burst(2)
    server = served()
    server.wait_seq(2)
    response = server.get("/v1/stream", headers={"Last-Event-ID": "40"})
    assert response.status_code == 409 and response.json()["last_seq"] == 2
    with pytest.raises(LiveError, match="HTTP 409"):
        next(subscribe(server.url, after=40))
