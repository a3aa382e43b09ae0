"""Notifications against real HTTP receivers on 127.0.0.1: the webhook and Alertmanager v2 bodies,
a receiver that fails and then recovers (retried with back-off, nothing lost, nothing twice), a
restart with notifications still on disk, and the JSONL file."""

from __future__ import annotations

import orjson
import pytest

from instrumetriq_polars.live.notify import Outbox, alertmanager_alert
from instrumetriq_polars.live.rules import Notifier

from .support.receiver import Receiver


@pytest.fixture
def receivers():
    made = []

    def make(fail=0):
        made.append(Receiver(fail))
        return made[-1]
    yield make
    for receiver in made:
        receiver.close()


def alert(key: str, status: str = "firing", notify=("hook", "am", "file")) -> dict:
    return {"key": key, "rule": "wide_spread", "kind": "entry", "status": status, "severity": "warning",
            "labels": {"alertname": "wide_spread", "severity": "warning", "symbol": "BTC"},
            "values": {"spread_bps": 61.0}, "summary": "BTC spread 61 bps",
            "active_at": "2026-01-15T10:00:00.000000Z", "fired_at": "2026-01-15T10:20:00.000000Z",
            "resolved_at": "2026-01-15T10:40:00.000000Z" if status == "resolved" else None,
            "at": "2026-01-15T10:20:00.000000Z", "notify": list(notify)}


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def test_webhook_and_alertmanager_bodies_and_the_jsonl_file(tmp_path, receivers):
    hook, am = receivers(), receivers()
    notifiers = {"hook": Notifier("hook", "webhook", url=hook.url + "/hook", headers={"X-Team": "ops"}),
                 "am": Notifier("am", "alertmanager", url=am.url),
                 "file": Notifier("file", "jsonl", path=str(tmp_path / "alerts.jsonl"))}
    outbox = Outbox(tmp_path / "outbox", notifiers)
    assert outbox.put([alert("k1"), alert("k2", "resolved")]) == 6
    assert outbox.put([alert("k1")]) == 0  # a repeat of a key already held
    assert outbox.deliver() == 6 and outbox.backlog() == 0
    paths = [p for p, _, _ in hook.bodies]
    assert paths == ["/hook", "/hook"]
    _, headers, body = hook.bodies[0]
    assert headers["Idempotency-Key"] == "k1" and headers["X-Team"] == "ops"
    assert body["version"] == 1 and body["key"] == "k1" and body["alert"]["summary"] == "BTC spread 61 bps"
    path, _, sent = am.bodies[0]
    assert path == "/api/v2/alerts"
    assert sent[0]["labels"] == {"alertname": "wide_spread", "severity": "warning", "symbol": "BTC"}
    assert sent[0]["startsAt"] == "2026-01-15T10:20:00.000000Z" and sent[0]["annotations"]["dedupe_key"] == "k1"
    resolved = am.bodies[1][2][0]
    assert resolved["endsAt"] == "2026-01-15T10:40:00.000000Z"
    lines = [orjson.loads(line) for line in (tmp_path / "alerts.jsonl").read_bytes().splitlines()]
    assert [line["key"] for line in lines] == ["k1", "k2"]


def test_a_failing_receiver_is_retried_with_back_off_until_it_recovers(tmp_path, receivers):
    hook = receivers(fail=3)
    clock = Clock()
    outbox = Outbox(tmp_path / "outbox", {"hook": Notifier("hook", "webhook", url=hook.url)}, clock=clock)
    outbox.put([alert("k1", notify=["hook"]), alert("k2", notify=["hook"])])
    assert outbox.deliver() == 0          # 503, 503: each due again in 1 s
    assert outbox.deliver() == 0          # not due yet: nothing sent
    clock.now += 1
    assert outbox.deliver() == 1          # k1: 503 (third failure, due in 2 s), k2 delivered
    clock.now += 1
    assert outbox.deliver() == 0
    clock.now += 1
    assert outbox.deliver() == 1
    assert [body["key"] for _, _, body in hook.bodies] == ["k2", "k1"]
    assert outbox.failures == 3 and outbox.backlog() == 0


def test_undelivered_notifications_survive_a_restart_and_delivered_ones_are_not_resent(tmp_path, receivers):
    down = Notifier("hook", "webhook", url="http://127.0.0.1:9/closed")  # nothing listens on port 9
    outbox = Outbox(tmp_path / "outbox", {"hook": down})
    outbox.put([alert("k1", notify=["hook"])])
    assert outbox.deliver() == 0 and outbox.backlog() == 1
    hook = receivers()
    up = {"hook": Notifier("hook", "webhook", url=hook.url)}
    restarted = Outbox(tmp_path / "outbox", up)   # a new process: k1 is still to deliver
    assert restarted.backlog() == 1
    assert restarted.deliver() == 1
    again = Outbox(tmp_path / "outbox", up)       # and once more: k1 was delivered
    assert again.backlog() == 0
    assert again.put([alert("k1", notify=["hook"])]) == 0   # re-created after a crash: not re-sent
    again.compact()
    assert Outbox(tmp_path / "outbox", up).backlog() == 0
    assert [body["key"] for _, _, body in hook.bodies] == ["k1"]


def test_alertmanager_resend_keeps_a_firing_alert_alive(tmp_path, receivers):
    am = receivers()
    clock = Clock()
    outbox = Outbox(tmp_path / "outbox", {"am": Notifier("am", "alertmanager", url=am.url)}, clock=clock)
    outbox.resend([alert("k1", notify=["am"])])
    clock.now += 60
    outbox.resend([alert("k1", notify=["am"])])
    ends = [body[0]["endsAt"] for _, _, body in am.bodies]
    assert len(ends) == 2 and ends[0] < ends[1]
    # endsAt is 4 re-send intervals ahead: Alertmanager resolves it if the re-sends stop
    assert alertmanager_alert(alert("k1"), 1_767_225_600.0)["endsAt"] == "2026-01-01T00:04:00.000Z"
