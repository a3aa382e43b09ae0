"""Tier 1 live feed benchmark: append -> yield latency, catch-up drain rate, peak RSS, idle CPU.

    .venv/bin/python benchmarks/bench_live.py [--entries 120] [--drain 1200] [--idle 60] [--append-results]

- **Latency** (inotify and poll 250 ms, at 1x and 100x): the simulator (``live simulate``, its own
  process) appends real-fixture entries with ``gzip.open(path, "ab")`` and logs the wall time
  each append completed; a follower process (``live.follow``, tier1 rows) prints the wall time
  each entry is yielded; pairs by ``session_id``. 1x: the collector's in-burst pace (~10
  entries/s) with bursts 10 s apart (``--speed 60``), so the follower idles between them; 100x:
  as fast as the simulator writes (~100x the day's average rate and more), bursts 0.1 s apart.
- **Catch-up drain**: an archive of ``--drain`` entries written while no follower ran; a fresh
  follower drains it (``follow=False``) with fields "tier1", and with fields "full" plus
  ``Batch.to_polars()`` (the Tier 2/3 rows); entries/s, and the peak RSS of that process
  (through ``benchkit.run_process``). Beside it, the same hour files through ``export_hour``
  (the export's own rate on this machine, interleaved in the same run).
- **Idle CPU**: a follower (inotify, then poll 250 ms) on a quiet archive; its CPU time over
  ``--idle`` seconds from ``/proc/PID/stat``.

The machine is shared (2 cores, other agents): the figures are noisy, the ratios steadier.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchkit import ROOT, run_process  # noqa: E402

CLI = [sys.executable, "-m", "instrumetriq_polars", "live"]

FOLLOWER = r"""
import json, sys, time
from instrumetriq_polars.live import follow, FollowOptions
archive, state, mode, fields, polars = sys.argv[1:6]
opts = FollowOptions(mode=mode, poll_interval=0.25)
out = sys.stdout
started, n = time.perf_counter(), 0
for batch in follow(archive, state, start="beginning", fields=fields, consumer=None,
                    follow=sys.argv[6] == "follow", options=opts):
    now = time.time()
    if polars == "1" and batch.entries:
        batch.to_polars()
    for e in batch.entries:
        n += 1
        if sys.argv[6] == "follow":
            out.write(json.dumps({"sid": e.session_id, "t": now}) + "\n")
            out.flush()
if sys.argv[6] != "follow":
    print(json.dumps({"entries": n, "seconds": time.perf_counter() - started}))
"""

EXPORT = r"""
import json, sys, time
from datetime import datetime, timezone
from instrumetriq_polars import export_hour
archive, out = sys.argv[1:3]
hours = sys.argv[3:]
started, rows = time.perf_counter(), 0
for hour in hours:
    r = export_hour(hour, archive, out, force=True, allow_incomplete=True, now=datetime(2100, 1, 1, tzinfo=timezone.utc))
    rows += r.manifest.row_count
print(json.dumps({"entries": rows, "seconds": time.perf_counter() - started}))
"""


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def latency(work: Path, mode: str, pace: str, entries: int) -> dict:
    archive, state = work / f"lat_{mode}_{pace}", work / f"state_{mode}_{pace}"
    archive.mkdir()
    log = work / f"sim_{mode}_{pace}.log"
    follower = subprocess.Popen([sys.executable, "-c", FOLLOWER, str(archive), str(state), mode, "tier1", "0", "follow"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(3.0)  # imports done, first poll made
    rate, speed = ("10", "60") if pace == "1x" else ("0", "6000")
    subprocess.run([*CLI, "simulate", "--archive-path", str(archive), "--count", str(entries), "--rate", rate,
                    "--speed", speed, "--start", "2026-01-01T10:00", "--log", str(log)], check=True, stderr=subprocess.DEVNULL)
    appended = {r["session_id"]: r["t"] for r in map(json.loads, log.read_text().splitlines())}
    seen: dict[str, float] = {}
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in follower.stdout], daemon=True).start()
    deadline = time.time() + 60
    while len(seen) < len(appended) and time.time() < deadline:
        try:
            record = json.loads(lines.get(timeout=max(0.01, deadline - time.time())))
        except queue.Empty:
            break
        seen[record["sid"]] = record["t"]
    follower.kill()
    follower.wait()
    lags = [(seen[s] - t) * 1000 for s, t in appended.items() if s in seen]
    times = sorted(appended.values())
    return {"mode": mode, "pace": pace, "entries": len(appended), "delivered": len(lags),
            "append_rate": round((len(times) - 1) / max(times[-1] - times[0], 1e-9), 1),
            "p50_ms": round(_percentile(lags, 0.5), 1), "p99_ms": round(_percentile(lags, 0.99), 1),
            "max_ms": round(max(lags), 1)}


def drain(work: Path, count: int) -> list[dict]:
    archive = work / "drain_archive"
    archive.mkdir()
    subprocess.run([*CLI, "simulate", "--archive-path", str(archive), "--count", str(count), "--rate", "0",
                    "--speed", "3600", "--start", "2026-01-01T00:00", "--log", str(work / "drain.log")],
                   check=True, stderr=subprocess.DEVNULL)
    hours = sorted(f"{p.parent.name[:4]}-{p.parent.name[4:6]}-{p.parent.name[6:]}T{p.name[:2]}"
                   for p in archive.glob("*/*.jsonl.gz"))
    results = []
    for attempt in range(2):  # interleaved: follower tier1, follower full + to_polars, export_hour
        for kind, fields, polars in (("tier1", "tier1", "0"), ("full+to_polars", "full", "1")):
            state = work / f"drain_state_{kind}_{attempt}"
            done = run_process([sys.executable, "-c", FOLLOWER, str(archive), str(state), "poll", fields, polars, "drain"], kind)
            figures = json.loads(done.stdout)
            results.append({"what": f"live drain ({kind})", "entries": figures["entries"],
                            "entries_per_s": round(figures["entries"] / figures["seconds"], 1),
                            "peak_rss_mb": round(done.peak_rss_mb, 1)})
        done = run_process([sys.executable, "-c", EXPORT, str(archive), str(work / f"tier2_{attempt}"), *hours], "export_hour")
        figures = json.loads(done.stdout)
        results.append({"what": "export_hour (same hours)", "entries": figures["entries"],
                        "entries_per_s": round(figures["entries"] / figures["seconds"], 1),
                        "peak_rss_mb": round(done.peak_rss_mb, 1)})
    return results


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(work: Path, mode: str, seconds: float) -> dict:
    archive = work / f"idle_{mode}"
    (archive / "20260101").mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", FOLLOWER, str(archive), str(work / f"idle_state_{mode}"), mode, "tier1", "0",
                             "follow"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(5.0)
    before, started = _cpu_seconds(proc.pid), time.monotonic()
    time.sleep(seconds)
    used, elapsed = _cpu_seconds(proc.pid) - before, time.monotonic() - started
    rss = next(int(line.split()[1]) / 1024 for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
               if line.startswith("VmHWM:"))
    proc.kill()
    proc.wait()
    return {"mode": mode, "seconds": round(elapsed, 1), "cpu_pct": round(100 * used / elapsed, 3), "peak_rss_mb": round(rss, 1)}


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(lat: list[dict], drains: list[dict], idle: list[dict]) -> str:
    rows = ["| measure | result | target | verdict |", "|---|---|---|---|"]
    for r in lat:
        if r["mode"] == "inotify":
            rows.append(f"| append -> yield, inotify, {r['pace']} ({r['append_rate']}/s, {r['delivered']}/{r['entries']}) | "
                        f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms | p50 <= 50, p99 <= 250 | "
                        f"{_verdict(r['p50_ms'] <= 50 and r['p99_ms'] <= 250 and r['delivered'] == r['entries'])} |")
        else:
            rows.append(f"| append -> yield, poll 250 ms, {r['pace']} ({r['append_rate']}/s, {r['delivered']}/{r['entries']}) | "
                        f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms | p99 <= 600 | "
                        f"{_verdict(r['p99_ms'] <= 600 and r['delivered'] == r['entries'])} |")
    for r in drains:
        target = ">= 800/s" if r["what"].startswith("live drain (full") else "(reference)" if r["what"].startswith("export") else "-"
        verdict = _verdict(r["entries_per_s"] >= 800) if target == ">= 800/s" else ""
        rows.append(f"| catch-up: {r['what']}, {r['entries']} entries | {r['entries_per_s']} entries/s, peak RSS {r['peak_rss_mb']} MB "
                    f"| {target}; RSS <= 150 MB | {verdict}{'' if r['what'].startswith('export') else ' / RSS ' + _verdict(r['peak_rss_mb'] <= 150)} |")
    for r in idle:
        rows.append(f"| idle CPU, {r['mode']}, {r['seconds']} s | {r['cpu_pct']}% of a core, peak RSS {r['peak_rss_mb']} MB | "
                    f"<= 0.5% | {_verdict(r['cpu_pct'] <= 0.5)} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=120, help="entries per latency run")
    parser.add_argument("--drain", type=int, default=1200, help="entries in the catch-up archive")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle CPU measurement")
    parser.add_argument("--parts", default="latency,drain,idle", help="which measures to run (comma-separated)")
    parser.add_argument("--append-results", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory(prefix="bench_live_") as tmp:
        work = Path(tmp)
        lat = [latency(work, mode, pace, args.entries) for pace in ("1x", "100x") for mode in ("inotify", "poll")] if "latency" in parts else []
        drains = drain(work, args.drain) if "drain" in parts else []
        idle = [idle_cpu(work, mode, args.idle) for mode in ("inotify", "poll")] if "idle" in parts else []
    text = table(lat, drains, idle)
    print(text)
    print(json.dumps({"latency": lat, "drain": drains, "idle": idle}, indent=1), file=sys.stderr)
    if args.append_results:
        header = (f"\n## {date.today()}: Tier 1 live feed (benchmarks/bench_live.py)\n\n"
                  f"Shared machine (2 cores, other agents running; load average {os.getloadavg()[0]:.1f} at the end). "
                  f"Latency: simulator and follower in separate processes, paired by session_id; 1x = in-burst pace "
                  f"10 entries/s with bursts 10 s apart, 100x = the simulator's top speed. Drain: {args.drain} real-fixture "
                  f"entries, two interleaved rounds, fresh processes.\n\n")
        with open(ROOT / "benchmarks" / "RESULTS.md", "a") as f:
            f.write(header + text + "\n")


if __name__ == "__main__":
    main()
