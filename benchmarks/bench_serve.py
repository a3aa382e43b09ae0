"""``live serve`` under load: the collector simulator appends, a ``live serve`` process follows and
serves, 10 SSE clients read. Measures, per run: append complete -> event received (p50, p99, over
every client and entry, paired by ``meta.session_id``), sustained entries/s end to end (all 10
clients have the last entry), peak RSS of the server process, and its CPU at idle with the 10
clients connected.

    python benchmarks/bench_serve.py [--runs 1x,100x,max] [--clients 10] [--idle 30] [--out JSON]

Runs: ``1x`` (one real-time burst: the simulator's default rate of 20 entries/s within a burst),
``100x`` (the fake clock 100x: bursts ~6 s apart), ``max`` (members written beforehand by the
simulator, then appended with no pause: the sustained rate), ``soak`` (100x for ~10 minutes). The machine is shared: CPU figures are the steadier ones.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from instrumetriq_polars.live.simulate import SimulateOptions, simulate  # noqa: E402

#: 1x: the collector's pace within a burst (20 entries/s), bursts 10 s apart instead of 600 s (to
#: fit a run; the latency is per append); 100x: the fake clock 100x (bursts 6 s apart); max: no
#: pause at all (the sustained rate); soak: 100x for ~10 minutes (RSS sampled every 5 s).
RUNS = {"1x": dict(count=60, rate=20.0, speed=1.0, burst_gap=10.0), "100x": dict(count=400, rate=20.0, speed=100.0),
        "max": dict(count=1500, rate=0.0, speed=100.0, burst_gap=0.0), "soak": dict(count=2000, rate=20.0, speed=100.0)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Reader(threading.Thread):
    """One SSE client: the receive time of each entry by session id."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port, self.seen, self.last_seq = port, {}, 0
        self.ready = threading.Event()

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        connection.request("GET", "/v1/stream?fields=session_id")
        response = connection.getresponse()
        self.ready.set()
        data = None
        while True:
            line = response.readline()
            if not line:
                return
            if line.startswith(b"data: ") and b'"session_id"' in line:
                data = line
            elif line == b"\n" and data is not None:
                row = json.loads(data[6:])
                self.seen[row["session_id"]] = time.time()
                self.last_seq = row["seq"]
                data = None


def proc_figures(pid: int) -> tuple[float, int]:
    """(CPU seconds, peak RSS bytes) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/status") as f:
        peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    return cpu, peak


def stage(folder: Path, settings: dict) -> list[dict]:
    """The max run's entries written beforehand by the simulator (its log: path, end, session id),
    so that the timed run appends ready gzip members as fast as the disk takes them: the
    simulator's own JSON and gzip work (~60 entries/s here) is not what is measured."""
    folder.mkdir()
    records: list[dict] = []
    simulate(str(folder), SimulateOptions(seed=11, **settings), lambda r: records.append(dict(r, root=str(folder))))
    return [r for r in records if r.get("session_id")]


def replay(staged: list[dict], archive: Path, log) -> int:
    """Append the staged members to ``archive`` (same file names), one write each, logging each."""
    starts: dict[str, int] = {}
    for record in staged:
        relative = os.path.relpath(record["path"], record["root"])
        with open(record["path"], "rb") as f:
            f.seek(starts.get(relative, 0))
            member = f.read(record["end"] - starts.get(relative, 0))
        starts[relative] = record["end"]
        target = archive / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "ab") as f:
            f.write(member)
        log({"session_id": record["session_id"], "t": time.time()})
    return len(staged)


def current_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def run_one(name: str, clients: int, idle_s: float) -> dict:
    settings = RUNS[name]
    with tempfile.TemporaryDirectory(prefix=f"bench_serve_{name}_") as tmp:
        archive, state = Path(tmp) / "archive", Path(tmp) / "state"
        archive.mkdir()
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "instrumetriq_polars", "live", "serve", "--archive-path", str(archive),
                                   "--state-dir", str(state), "--port", str(port), "--ring-size", "10000"],
                                  cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError(f"live serve did not start: {server.stderr.read().decode()[-500:]}")
                    time.sleep(0.1)
            readers = [Reader(port) for _ in range(clients)]
            for reader in readers:
                reader.start()
                reader.ready.wait(10)
            time.sleep(0.5)
            appended: dict[str, float] = {}

            def log(record: dict) -> None:
                if record.get("session_id"):
                    appended[record["session_id"]] = record["t"]

            staged = stage(Path(tmp) / "staging", settings) if name == "max" else None
            options = SimulateOptions(seed=11, **settings)
            rss: list[tuple[float, int]] = []
            sampling = threading.Event()

            def sample() -> None:
                while not sampling.wait(5.0):
                    rss.append((time.time(), current_rss(server.pid)))
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            started = time.time()
            written = replay(staged, archive, log) if staged else simulate(str(archive), options, log)
            deadline = time.monotonic() + 120
            while any(len(r.seen) < written for r in readers) and time.monotonic() < deadline:
                time.sleep(0.05)
            finished = max(max(r.seen.values(), default=started) for r in readers)
            latencies = [r.seen[s] - t for r in readers for s, t in appended.items() if s in r.seen]
            missing = sum(written - len(r.seen) for r in readers)
            cpu_before, _ = proc_figures(server.pid)
            time.sleep(idle_s)
            cpu_after, peak = proc_figures(server.pid)
            sampling.set()
            first = rss[len(rss) // 10][1] if rss else 0   # after the first tenth: warmed up
            return {"rss_first_mb": round(first / 2**20, 1), "rss_last_mb": round(rss[-1][1] / 2**20, 1) if rss else None,"run": name, "entries": written, "clients": clients, "missing": missing,
                    "p50_ms": round(percentile(latencies, 0.5) * 1000, 1), "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
                    "max_ms": round(max(latencies) * 1000, 1),
                    "entries_per_s": round(written / max(1e-9, finished - started), 1),
                    "peak_rss_mb": round(peak / 2**20, 1),
                    "idle_cpu_pct": round(100 * (cpu_after - cpu_before) / idle_s, 2), "idle_s": idle_s}
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="1x,100x,max", help="comma list of 1x, 100x, max, soak")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle CPU measurement per run")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()
    results = [run_one(name, args.clients, args.idle) for name in args.runs.split(",")]
    print("| run | entries | clients | append->event p50 | p99 | max | entries/s | peak RSS | RSS early -> end | idle CPU | missing |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['run']} | {r['entries']} | {r['clients']} | {r['p50_ms']} ms | {r['p99_ms']} ms | {r['max_ms']} ms | "
              f"{r['entries_per_s']} | {r['peak_rss_mb']} MB | {r['rss_first_mb']} -> {r['rss_last_mb']} MB | "
              f"{r['idle_cpu_pct']} % | {r['missing']} |")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
