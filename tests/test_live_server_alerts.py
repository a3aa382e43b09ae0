"""`live serve` with rules, slow clients and R2: an alert fires on the server and reaches the
alerts stream and a webhook once (not again after a restart); a slow client overflows, is told
where to resume, and resumes with no gap while a fast client is unaffected; --publish-r2 writes
tier1/live/latest.json and the hour's JSONL to a moto S3 server on 127.0.0.1."""

from __future__ import annotations

import itertools
import socket
import threading
import time

import httpx
import orjson
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from instrumetriq_polars.live.client import subscribe  # noqa: E402

from .support.live_server import Collector, Running, options, sse_events  # noqa: E402
from .support.receiver import Receiver  # noqa: E402
from .support.s3 import BUCKET  # noqa: E402 - the run's one moto server: conftest's s3 and moto

RULES = """
[notifier.hook]
type = "webhook"
url = "{url}/hook"

[[rule]]
name = "wide_spread"
where = "spread_bps > 50"
group_by = ["symbol"]
summary = "{{symbol}} spread {{spread_bps:.0f}} bps"
notify = ["sse", "hook"]
"""


def wait_for(check, timeout=20.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_an_alert_fires_reaches_the_stream_and_the_webhook_once_and_not_again_after_a_restart(tmp_path):
    receiver = Receiver()
    (tmp_path / "archive").mkdir()
    (tmp_path / "r.toml").write_text(RULES.format(url=receiver.url))
    collector = Collector(tmp_path / "archive")
    server = Running(options(tmp_path, rules=str(tmp_path / "r.toml"), settle_s=0.3))
    try:
        events = []

        def listen():
            with httpx.stream("GET", server.url + "/v1/alerts/stream", timeout=20) as response:
                lines = []
                for line in response.iter_lines():
                    lines.append(line)
                    if line == "" and any(e[0] == "alert" for e in sse_events(lines)):
                        events.extend(sse_events(lines))
                        return
        listener = threading.Thread(target=listen)
        listener.start()
        time.sleep(0.3)
        collector.burst(2, symbols=["AAA", "BBB"], spread_bps=10.0)
        collector.burst(1, symbols=["WIDE"], spread_bps=80.0)
        wait_for(lambda: receiver.bodies, what="the webhook")
        listener.join(timeout=20)
        alerts = server.get("/v1/alerts").json()
        assert alerts["firing"] == 1
        assert [a["labels"]["symbol"] for a in alerts["alerts"]] == ["WIDE"]
        assert alerts["alerts"][0]["summary"] == "WIDE spread 80 bps"
        streamed = [orjson.loads(data) for name, ident, data in events if name == "alert"]
        assert [(a["rule"], a["status"], a["labels"]["symbol"]) for a in streamed] == [("wide_spread", "firing", "WIDE")]
        assert [e[1] for e in events if e[0] == "alert"] == ["1"]
        assert "instrumetriq_live_alerts_firing 1" in server.get("/metrics").text
        assert server.get("/v1/rules").json()["rules"][0]["name"] == "wide_spread"
        server = server.restart()
        collector.burst(1, symbols=["AAA"], spread_bps=10.0)
        server.wait_seq(4)
        time.sleep(1.5)   # the rules settle and the outbox delivers: nothing new to send
        assert server.get("/v1/alerts").json()["firing"] == 1
        assert [body["alert"]["labels"]["symbol"] for _, _, body in receiver.bodies] == ["WIDE"]
    finally:
        server.stop()
        receiver.close()


@pytest.mark.slow
def test_a_slow_client_overflows_and_resumes_with_no_gap_while_a_fast_one_is_unaffected(tmp_path):
    (tmp_path / "archive").mkdir()
    collector = Collector(tmp_path / "archive")
    server = Running(options(tmp_path, queue_size=60), sndbuf=8192)
    try:
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        slow.connect(("127.0.0.1", server.port))
        slow.sendall(b"GET /v1/stream?after=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        fast_seqs = []
        fast = subscribe(server.url, after=0, fields=["symbol"], timeout=30)

        target = {}

        def read_fast():
            for row in fast:
                fast_seqs.append(row["seq"])
                if row["seq"] >= target.get("seq", float("inf")):
                    return
        reader = threading.Thread(target=read_fast, daemon=True)
        reader.start()
        for _ in range(100):   # bursts until the slow client's queue overflows (bounded)
            collector.burst(20)
            time.sleep(0.05)
            if server.hub.overflows_total:
                break
        collector.burst(20)
        total = target["seq"] = collector.count
        server.wait_seq(total)
        assert server.hub.overflows_total == 1
        reader.join(timeout=60)
        assert fast_seqs == list(range(1, total + 1))
        data = b""
        while chunk := slow.recv(65536):
            data += chunk
        slow.close()
        text = data.decode(errors="replace").split("\r\n\r\n", 1)[1]
        events = sse_events(_dechunk(text).split("\n"))
        got = [int(e[1]) for e in events if e[0] == "entry"]
        overflow = [orjson.loads(e[2]) for e in events if e[0] == "overflow"]
        assert len(overflow) == 1 and overflow[0]["resume_after"] == got[-1]
        assert got == list(range(1, got[-1] + 1)) and got[-1] < total
        rest = [row["seq"] for row in itertools.islice(subscribe(server.url, after=got[-1]), total - got[-1])]
        assert got + rest == list(range(1, total + 1))
    finally:
        server.stop()


def _dechunk(text: str) -> str:
    """The body of an HTTP/1.1 chunked response (sizes in hex lines)."""
    out, rest = [], text
    while rest:
        size_line, _, rest = rest.partition("\r\n")
        if not size_line.strip():
            continue
        size = int(size_line.split(";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2:]
    return "".join(out)


def test_publish_r2_writes_latest_and_the_hour(tmp_path, s3):
    (tmp_path / "archive").mkdir()
    collector = Collector(tmp_path / "archive")
    server = Running(options(tmp_path, publish_r2=f"s3://{BUCKET}"))
    try:
        entries = collector.burst(3, symbols=["AAA", "BBB", "AAA"])
        server.wait_seq(3)
        key = f"{BUCKET}/tier1/live/latest.json"
        wait_for(lambda: s3.invalidate_cache() or (s3.exists(key) and orjson.loads(s3.cat(key))["seq"] == 3), what="latest.json")
        latest = orjson.loads(s3.cat(key))
        assert [(e["symbol"], e["seq"]) for e in latest["entries"]] == [("AAA", 3), ("BBB", 2)]
        expired = entries[0]["meta"]["expired_ts"]
        hour_key = f"{BUCKET}/tier1/live/{expired[:10]}/{expired[11:13]}.jsonl"
        rows = [orjson.loads(line) for line in s3.cat(hour_key).splitlines()]
        assert [r["seq"] for r in rows] == [1, 2, 3]
    finally:
        server.stop()


def test_r2_uploads_that_fail_are_kept_and_sent_with_the_next_burst(moto, home):
    from s3fs import S3FileSystem

    from instrumetriq_polars.live.r2 import Publisher

    moto.stop()  # nothing listens at the endpoint yet
    endpoint = moto.endpoint
    storage = {"key": "key", "secret": "secret", "client_kwargs": {"endpoint_url": endpoint},
               "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1}}
    publisher = Publisher(f"s3://{BUCKET}", storage)
    row = {"seq": 1, "symbol": "AAA", "expired_ts": "2026-01-15T10:00:00.000000Z"}
    assert publisher.publish([{"k": "e", "seq": 1, "row": row}]) is False   # nothing listens yet
    assert publisher.errors == 1 and publisher.dirty == {"2026-01-15/10"}
    assert "Connect" in publisher.last_error or "connect" in publisher.last_error, publisher.last_error
    moto.start()
    httpx.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    fs = S3FileSystem(key="key", secret="secret", endpoint_url=endpoint, skip_instance_cache=True)
    fs.mkdir(BUCKET)
    second = dict(row, seq=2, symbol="BBB")
    assert publisher.publish([{"k": "e", "seq": 2, "row": second}]) is True, publisher.last_error
    lines = [orjson.loads(line) for line in fs.cat(f"{BUCKET}/tier1/live/2026-01-15/10.jsonl").splitlines()]
    assert [line["seq"] for line in lines] == [1, 2]   # the failed burst's row too
    assert orjson.loads(fs.cat(f"{BUCKET}/tier1/live/latest.json"))["seq"] == 2


@pytest.mark.slow
def test_an_absent_rule_fires_on_the_wall_clock_and_a_jsonl_notifier_gets_it(tmp_path):
    (tmp_path / "archive").mkdir()
    (tmp_path / "r.toml").write_text(f"""
[notifier.file]
type = "jsonl"
path = "{tmp_path}/alerts.jsonl"

[[rule]]
name = "feed_silent"
kind = "absent"
after = 1.5
summary = "no entry for {{silent_s:.0f}} s"
notify = ["file"]
""")
    collector = Collector(tmp_path / "archive")
    server = Running(options(tmp_path, rules=str(tmp_path / "r.toml"), settle_s=0.2))
    try:
        collector.burst(1)
        server.wait_seq(1)
        notes = tmp_path / "alerts.jsonl"
        wait_for(lambda: notes.exists() and b'"status":"firing"' in notes.read_bytes(), what="the absent rule firing")
        assert server.get("/v1/alerts").json()["firing"] == 1
        collector.burst(1)
        wait_for(lambda: b'"status":"resolved"' in notes.read_bytes(), what="the absent rule resolving")
        lines = [orjson.loads(line) for line in notes.read_bytes().splitlines()]
        assert [(n["rule"], n["status"]) for n in lines] == [("feed_silent", "firing"), ("feed_silent", "resolved")]
    finally:
        server.stop()
