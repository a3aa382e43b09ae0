"""The live follower (instrumetriq_polars.live): members to a durable sequence, damage, hours, rewrites."""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timezone

import pytest

from instrumetriq_polars import live
from instrumetriq_polars.errors import LiveError
from instrumetriq_polars.live.follower import Follower, FollowOptions
from instrumetriq_polars.live.journal import read_records, record_line

from .support.appends import NAME, append, entry_line, member

HOUR_END = datetime(2026, 1, 1, 6, tzinfo=timezone.utc).timestamp()


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def follower(root, state, clock=None, **kw) -> Follower:
    opts = FollowOptions(clock=clock or Clock(HOUR_END - 1800), **kw)
    os.makedirs(root, exist_ok=True)
    return Follower(str(root), str(state), opts)


def drain(f: Follower) -> tuple[list[dict], list[dict]]:
    entries, events = [], []
    for d in f.poll():
        (entries if d.seq is not None else events).append(d.record)
    return entries, events


def _cuts(data: bytes, bounds: set[int], every: bool) -> list[int]:
    if every:
        return list(range(len(data) + 1))
    near = {b + d for b in bounds for d in range(-10, 21)}  # headers, trailers, the boundaries themselves
    return sorted({c for c in near | set(range(0, len(data) + 1, 61)) if 0 <= c <= len(data)})


@pytest.mark.parametrize("every", [pytest.param(True, marks=pytest.mark.slow), False], ids=["every-offset", "near-boundaries"])
def test_three_members_cut_at_every_offset_then_completed(tmp_path, every):
    lines = [entry_line(i) for i in range(3)]
    data = b"".join(member(line) for line in lines)
    bounds = {0}
    for line in lines:
        bounds.add(max(bounds) + len(member(line)))
    for cut in _cuts(data, bounds, every):
        root, state = tmp_path / f"a{cut}", tmp_path / f"s{cut}"
        append(root, NAME, data[:cut])
        f = follower(root, state)
        first, ev1 = drain(f)
        assert f.files[NAME].offset in bounds, cut
        append(root, NAME, data[cut:])
        second, ev2 = drain(f)
        f.close()
        got = first + second
        assert [r["seq"] for r in got] == [1, 2, 3], cut
        assert [r["row"]["mid"] for r in got] == [100.0, 101.0, 102.0], cut
        assert all(r["start"] in bounds and r["end"] in bounds for r in got), cut
        assert not [e for e in ev1 + ev2 if e["type"] == "damaged_span"], cut


def test_three_write_pattern_polled_between_writes(tmp_path):
    f = follower(tmp_path / "a", tmp_path / "s")
    delivered = []
    for i in range(3):
        whole = member(entry_line(i))
        for part in (whole[:19], whole[19:-8], whole[-8:]):
            append(tmp_path / "a", NAME, part)
            entries, events = drain(f)
            delivered += entries
            assert not [e for e in events if e["type"] == "damaged_span"]
        assert [r["seq"] for r in delivered] == list(range(1, i + 2))
    f.close()


def _damage(kind: str) -> bytes:
    whole = member(entry_line(99, pad=3000))
    return {"header only": whole[:19], "cut body": whole[:19 + (len(whole) - 27) // 2], "missing trailer": whole[:-8],
            "flipped byte": whole[:len(whole) // 2] + bytes([whole[len(whole) // 2] ^ 0x40]) + whole[len(whole) // 2 + 1:],
            "flipped crc": whole[:-6] + bytes([whole[-6] ^ 1]) + whole[-5:],
            "junk": bytes(range(32, 127)) * 5}[kind]


@pytest.mark.parametrize("kind", ["header only", "cut body", "missing trailer", "flipped byte", "flipped crc", "junk"])
def test_damage_then_valid_members(tmp_path, kind):
    root = tmp_path / "a"
    head = member(entry_line(0))
    bad = _damage(kind)
    append(root, NAME, head + bad)
    f = follower(root, tmp_path / "s")
    entries, events = drain(f)
    assert [r["seq"] for r in entries] == [1]
    for i in range(1, 6):  # the collector comes back: each member in its three writes, polled between
        whole = member(entry_line(i))
        for part in (whole[:19], whole[19:-8], whole[-8:]):
            append(root, NAME, part)
            more, ev = drain(f)
            entries += more
            events += ev
    f.close()
    assert [r["row"]["mid"] for r in entries] == [100.0 + i for i in range(6)]
    spans = [(e["start"], e["end"]) for e in events if e["type"] == "damaged_span"]
    assert spans == [(len(head), len(head) + len(bad))]


def test_lifecycle_close_then_late_append_after_next_hour(tmp_path):
    root, clock = tmp_path / "a", Clock(HOUR_END - 600)
    append(root, NAME, member(entry_line(0)), mtime=HOUR_END - 700)
    f = follower(root, tmp_path / "s", clock, linger=120, quiet=60)
    entries, events = drain(f)
    assert f.files[NAME].state == "open" and len(entries) == 1
    clock.now = HOUR_END + 30
    append(root, "20260101/06.jsonl.gz", member(entry_line(1)), mtime=HOUR_END + 5)
    append(root, NAME, member(entry_line(2)), mtime=HOUR_END + 20)  # still lingering: not late
    entries, events = drain(f)
    assert [(r["f"], r["late"]) for r in entries] == [(NAME, False), ("20260101/06.jsonl.gz", False)]
    assert f.files[NAME].state == "lingering" and not events
    clock.now = HOUR_END + 200
    _, events = drain(f)
    closed = [e for e in events if e["type"] == "hour_closed"]
    assert len(closed) == 1 and closed[0]["f"] == NAME and closed[0]["entries"] == 2
    assert closed[0]["last_append_after_end_s"] == pytest.approx(20, abs=0.01)
    assert closed[0]["bytes"] == os.path.getsize(root / NAME)
    append(root, NAME, member(entry_line(3)), mtime=HOUR_END + 300)  # after the close: late
    clock.now = HOUR_END + 310
    entries, events = drain(f)
    assert [(r["row"]["mid"], r["late"]) for r in entries] == [(103.0, True)]
    assert not [e for e in events if e["type"] == "hour_closed"]  # closed once
    f.close()
    f = follower(root, tmp_path / "s", clock)  # the close survives a restart
    assert f.files[NAME].state == "closed"
    f.close()


def test_day_rollover_finds_the_new_day_folder(tmp_path):
    root = tmp_path / "a"
    append(root, "20260101/23.jsonl.gz", member(entry_line(0)))
    f = follower(root, tmp_path / "s")
    assert len(drain(f)[0]) == 1
    append(root, "20260102/00.jsonl.gz", member(entry_line(1)))
    entries, _ = drain(f)
    assert [(r["f"], r["seq"]) for r in entries] == [("20260102/00.jsonl.gz", 2)]
    f.close()


@pytest.mark.parametrize("kind", ["replace", "truncate", "delete"])
def test_rewritten_truncated_deleted_file(tmp_path, kind):
    root = tmp_path / "a"
    lines = [entry_line(i) for i in range(4)]
    members = [member(line) for line in lines]
    append(root, NAME, b"".join(members))
    f = follower(root, tmp_path / "s")
    assert len(drain(f)[0]) == 4
    path = root / NAME
    if kind == "replace":  # same bytes and one new entry, written to a new file renamed over it
        tmp = root / "tmp"
        tmp.write_bytes(b"".join(members) + member(entry_line(4)))
        os.replace(tmp, path)
    elif kind == "truncate":
        with open(path, "r+b") as fh:
            fh.truncate(len(members[0]) + len(members[1]))
        append(root, NAME, member(entry_line(4)))
    else:
        path.unlink()
    entries, events = drain(f)
    types = [e["type"] for e in events]
    if kind == "delete":
        assert types == ["file_removed"] and not entries
        append(root, NAME, member(entry_line(4)) + members[0])  # a new file: entry 4 is new, entry 0 was delivered
        entries, events = drain(f)
    else:
        assert types[0] == "file_rewritten" and events[0]["reason"] == ("replaced" if kind == "replace" else "truncated")
    assert [r["row"]["mid"] for r in entries] == [104.0]
    assert [r["seq"] for r in entries] == [5]
    f.close()


def test_one_follower_per_state_folder_and_torn_journal_tail(tmp_path):
    root, state = tmp_path / "a", tmp_path / "s"
    append(root, NAME, b"".join(member(entry_line(i)) for i in range(3)))
    f = follower(root, state)
    drain(f)
    with pytest.raises(LiveError, match="another follower"):
        follower(root, state)
    f.close()
    journal = state / "journal.log"
    data = journal.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    journal.write_bytes(data[:last + 30])  # the last record torn mid-write
    (state / "checkpoint.json").write_bytes(b"{not json")  # and a corrupt checkpoint
    f = follower(root, state)
    assert f.last_seq == 2  # the torn record (seq 3) is dropped...
    entries, _ = drain(f)
    assert [r["seq"] for r in entries] == [3]  # ...and its entry gets seq 3 again: no gap, no duplicate
    assert [r["row"]["mid"] for r in entries] == [102.0]
    f.close()
    assert journal.read_bytes().endswith(b"\n")


def test_damaged_journal_record_before_others_is_an_error(tmp_path):
    root, state = tmp_path / "a", tmp_path / "s"
    append(root, NAME, b"".join(member(entry_line(i)) for i in range(3)))
    f = follower(root, state)
    drain(f)
    f.close()
    journal = state / "journal.log"
    lines = journal.read_bytes().split(b"\n")
    lines[1] = lines[1][:20] + b"X" + lines[1][21:]
    journal.write_bytes(b"\n".join(lines))
    with pytest.raises(LiveError, match="damaged"):
        follower(root, state)


def _feed_in_thread(root, count: int, delay: float):
    def run():
        for i in range(count):
            time.sleep(delay)
            whole = member(entry_line(i))
            for part in (whole[:19], whole[19:-8], whole[-8:]):
                append(root, NAME, part)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("mode", ["inotify", "poll"])
def test_follow_modes_deliver_appends(tmp_path, mode):
    root = tmp_path / "a"
    (root / "20260101").mkdir(parents=True)
    stop = threading.Event()
    thread = _feed_in_thread(root, 5, 0.1)
    got = []
    options = FollowOptions(mode=mode, poll_interval=0.05, safety=30.0 if mode == "inotify" else 2.0)
    started = time.monotonic()
    for batch in live.follow(str(root), str(tmp_path / "s"), start="beginning", options=options, stop=stop):
        got += [e.seq for e in batch.entries]
        if len(got) >= 5:
            break
        assert time.monotonic() - started < 20
    thread.join()
    assert got == [1, 2, 3, 4, 5]


def test_cursors_at_least_once_and_read_from_another_reader(tmp_path):
    root, state = tmp_path / "a", tmp_path / "s"
    append(root, NAME, b"".join(member(entry_line(i)) for i in range(5)))
    feed = live.follow(str(root), str(state), follow=False, consumer="dash")
    batch = next(feed)
    batch = batch if batch.entries else next(feed)
    assert [e.seq for e in batch.entries] == [1, 2, 3, 4, 5]
    feed.close()  # not acknowledged: delivered again
    again = [e.seq for b in live.follow(str(root), str(state), follow=False, consumer="dash") for e in b.entries]
    assert again == [1, 2, 3, 4, 5]
    for b in live.follow(str(root), str(state), follow=False, consumer="dash"):
        b.ack()
    append(root, NAME, member(entry_line(5)))
    after_ack = [e.seq for b in live.follow(str(root), str(state), follow=False, consumer="dash") for e in b.entries]
    assert after_ack == [6]
    other = [e.seq for b in live.follow(str(root), str(state), follow=False, consumer="other") for e in b.entries]
    assert other == [1, 2, 3, 4, 5, 6]  # per consumer
    read = [(e.seq, e.row["mid"]) for b in live.read(str(state), after=3) for e in b.entries]
    assert read == [(4, 103.0), (5, 104.0), (6, 105.0)]
    only = [e.seq for b in live.follow(str(root), str(state), start=2, follow=False, symbols={"ETHUSDT"}) for e in b.entries]
    assert only == []
    full = [e.row for b in live.read(str(state), after=5, fields="full") for e in b.entries]
    assert full == [entry_line(5)]


def test_an_s3_archive_is_polled_with_ranged_reads(s3, tmp_path):
    from .support.s3 import BUCKET

    key = f"{BUCKET}/archive/{NAME}"
    members = [member(entry_line(i)) for i in range(4)]
    s3.pipe(key, members[0] + members[1][:30])  # the second member cut (being written)
    f = Follower(f"s3://{BUCKET}/archive", str(tmp_path / "s"), FollowOptions(clock=Clock(HOUR_END - 1800)))
    entries, _ = drain(f)
    assert [r["seq"] for r in entries] == [1]
    s3.pipe(key, b"".join(members))  # an object store rewrites the object as it grows
    reads, cat_file = [], f.archive.fs.cat_file
    f.archive.fs.cat_file = lambda path, start=None, end=None, **kw: reads.append((start, end)) or cat_file(path, start=start, end=end, **kw)
    entries, events = drain(f)
    f.close()
    assert [(r["seq"], r["row"]["mid"]) for r in entries] == [(2, 101.0), (3, 102.0), (4, 103.0)]
    assert not events
    # one ranged read, after the bytes already held (the cut member's first 30), not the whole object
    assert reads == [(len(members[0]) + 30, sum(map(len, members)))]


def test_damage_at_the_end_of_a_quiet_file_is_reported_when_it_closes(tmp_path):
    root, clock = tmp_path / "a", Clock(HOUR_END - 600)
    good = member(entry_line(0))
    cut = member(entry_line(1))[:-8]  # the collector died before the trailer and never came back
    append(root, NAME, good + cut, mtime=HOUR_END - 590)
    f = follower(root, tmp_path / "s", clock, linger=60, quiet=30, stall=100)
    entries, events = drain(f)
    assert len(entries) == 1 and not events  # the cut member may still complete
    clock.now = HOUR_END + 100  # past the linger, but not the stall: still waiting
    assert drain(f) == ([], [])
    clock.now = HOUR_END + 200
    _, events = drain(f)
    assert [(e["type"], e.get("start"), e.get("end")) for e in events] == [
        ("damaged_span", len(good), len(good) + len(cut)), ("hour_closed", None, None)]
    assert events[1]["damaged_bytes"] == len(cut) and events[1]["bytes"] == len(good) + len(cut)
    f.close()


def test_start_now_and_start_hour_on_a_new_state_folder(tmp_path):
    root = tmp_path / "a"
    append(root, "20260101/04.jsonl.gz", member(entry_line(0)))
    append(root, NAME, member(entry_line(1)))
    now = [e.row["mid"] for b in live.follow(str(root), str(tmp_path / "s1"), start="now", follow=False) for e in b.entries]
    assert now == []
    append(root, NAME, member(entry_line(2)))
    after = [(e.seq, e.row["mid"]) for b in live.follow(str(root), str(tmp_path / "s1"), follow=False) for e in b.entries]
    assert after == [(1, 102.0)]  # the sequence began at "now": what existed was journaled as skipped
    hour = [(e.seq, e.row["mid"]) for b in live.follow(str(root), str(tmp_path / "s2"), start="2026-01-01T05", follow=False)
            for e in b.entries]
    assert hour == [(1, 101.0), (2, 102.0)]
    with pytest.raises(LiveError, match="start must be"):
        next(live.follow(str(root), str(tmp_path / "s3"), start="yesterday"))
    assert not (tmp_path / "s3").exists()  # refused before the state folder was touched
    with pytest.raises(LiveError, match="invalid start hour"):
        next(live.follow(str(root), str(tmp_path / "s4"), start="2026-13-01T05"))


def test_a_new_state_folder_on_an_empty_archive_reads_the_first_day_folder_that_comes(tmp_path):
    root = tmp_path / "a"
    root.mkdir()
    f = follower(root, tmp_path / "s")  # no day folder yet (and the clock says another day)
    assert drain(f) == ([], [])
    append(root, "20200101/00.jsonl.gz", member(entry_line(0)))
    entries, _ = drain(f)
    f.close()
    assert [(r["seq"], r["f"]) for r in entries] == [(1, "20200101/00.jsonl.gz")]


def test_day_folders_made_while_the_follower_was_down_are_read(tmp_path):
    root = tmp_path / "a"
    append(root, "20260101/05.jsonl.gz", member(entry_line(0)))
    f = follower(root, tmp_path / "s")
    assert len(drain(f)[0]) == 1
    f.close()
    for i, day in enumerate(["20260102", "20260103", "20260104", "20260105"], 1):  # while it was down
        append(root, f"{day}/00.jsonl.gz", member(entry_line(i)))
    f = follower(root, tmp_path / "s")
    entries, _ = drain(f)
    f.close()
    assert [r["f"][:8] for r in entries] == ["20260102", "20260103", "20260104", "20260105"]


def test_read_follow_tails_the_journal_of_a_running_follower(tmp_path):
    root, state = tmp_path / "a", tmp_path / "s"
    (root / "20260101").mkdir(parents=True)
    stop = threading.Event()
    options = FollowOptions(mode="poll", poll_interval=0.05)

    def run_follower():
        for _ in live.follow(str(root), str(state), start="beginning", options=options, stop=stop, consumer=None):
            pass

    follower_thread = threading.Thread(target=run_follower, daemon=True)
    follower_thread.start()
    feeder = _feed_in_thread(root, 4, 0.1)
    while not (state / "journal.log").exists():
        time.sleep(0.05)
    got = []
    for batch in live.read(str(state), after=0, follow=True, poll_interval=0.05, stop=lambda: len(got) >= 4):
        got += [(e.seq, e.row["mid"]) for e in batch.entries]
    stop.set()
    feeder.join()
    follower_thread.join(timeout=10)
    assert got == [(1, 100.0), (2, 101.0), (3, 102.0), (4, 103.0)]


def test_journal_torn_at_every_byte_of_its_last_record_recovers_the_same_mapping(tmp_path):
    root = tmp_path / "a"
    append(root, NAME, b"".join(member(entry_line(i)) for i in range(3)))
    f = follower(root, tmp_path / "ref")
    reference = [(r["seq"], r["sid"], r["start"]) for r in drain(f)[0]]
    f.close()
    data = (tmp_path / "ref" / "journal.log").read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    for cut in range(last, len(data), 97):
        state = tmp_path / f"s{cut}"
        state.mkdir()
        (state / "journal.log").write_bytes(data[:cut])  # killed while the last record was written
        f = follower(root, state)
        again = [(r["seq"], r["sid"], r["start"]) for r in drain(f)[0]]
        f.close()
        records = [r for _, r in read_records(str(state))]
        assert [(r["seq"], r["sid"], r["start"]) for r in records if r.get("k") == "e"] == reference, cut
        assert again == reference[-1:], cut  # only the torn entry is read (and numbered) again


def test_a_cursor_beyond_the_journal_is_an_error_not_silence(tmp_path):
    root, state = tmp_path / "a", tmp_path / "s"
    append(root, NAME, b"".join(member(entry_line(i)) for i in range(2)))
    for b in live.follow(str(root), str(state), follow=False, consumer="dash"):
        b.ack()
    (state / "journal.log").unlink()  # a journal lost under the consumers' cursors
    with pytest.raises(LiveError, match="beyond the journal"):
        next(live.follow(str(root), str(state), follow=False, consumer="dash"))
    assert [e.seq for b in live.follow(str(root), str(state), follow=False, consumer="new") for e in b.entries] == [1, 2]


def test_compact_drops_old_records_and_keeps_the_sequence(tmp_path):
    root, state = tmp_path / "a", tmp_path / "s"
    append(root, NAME, b"".join(member(entry_line(i)) for i in range(3)))
    for b in live.follow(str(root), str(state), follow=False, consumer="old"):
        b.ack()  # consumer "old" at seq 3
    append(root, "20260101/06.jsonl.gz", member(entry_line(3)))
    assert [e.seq for b in live.follow(str(root), str(state), follow=False, consumer=None) for e in b.entries][-1] == 4
    journal = [r for _, r in read_records(str(state))]
    for r in journal:  # the entries of hour 05 were journaled ten days before the rest
        r["t"] = r["t"] - (10 * 86400 if r.get("f") == NAME or r.get("type") == "origin" else 0)
    (state / "journal.log").write_bytes(b"".join(record_line(r) for r in journal))
    result = live.compact(str(state), keep_days=5)
    assert result["dropped"] == 3 and live.oldest_seq(str(state)) == 4
    assert [e.seq for b in live.read(str(state)) for e in b.entries] == [4]
    append(root, NAME, member(entry_line(4)))  # the follower goes on where it was: no re-read, no reused seq
    got = [(e.seq, e.row["mid"]) for b in live.follow(str(root), str(state), follow=False, consumer="old") for e in b.entries]
    assert got == [(4, 103.0), (5, 104.0)]  # "old" acknowledged seq 3: it resumes at the oldest kept
    with pytest.raises(LiveError, match="no longer kept"):
        next(live.follow(str(root), str(state), follow=False, consumer="old", start=2))
    with pytest.raises(LiveError, match="no longer kept"):
        next(live.read(str(state), after=1))
