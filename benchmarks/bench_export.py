"""Export throughput and memory against the decode floor, measured in one run.

    python benchmarks/bench_export.py [--entries-per-hour 100] [--repeat 5] [--data DIR]
                                      [--generator project|shared] [--workers N] [--no-check]

1. Generates (once, cached under --data) a full-size archive day: 24 hours x 100 entries, and a
   6-hour day of the same size per hour. ``--generator project`` (default) uses the project's own
   generator (~270 MB of JSON a day); ``shared`` uses ../shared/tools/make_archive.py, whose
   entries are cloned from real ones (~220 MB a day).
2. Decode floor: isal gunzip + orjson.loads of every line, in a child process: the cheapest way
   to merely read the input.
3. Export: export_day of the full day to a temporary folder, in a child process, with the
   default worker processes (``--workers`` overrides), and again with every hour built in that
   one process (workers=0) for comparison.
   Floor and export runs are interleaved (noise hits all alike); medians are quoted.
4. Memory of an export = the peak RSS of its own process plus the peak RSS of each worker process
   (a sum of peaks: an upper bound, since the peaks need not coincide and shared library pages
   count once per process). The peak of the summed PSS of the process tree, sampled every 10 ms,
   is printed beside it. Both for a 24-hour and a 6-hour day.

Targets (issue #2): export <= 3x the floor, peak memory <= 600 MB, 24h/6h peak memory <= 1.25.
Exit 1 if a target is missed (unless --no-check).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

FULL_DAY = date(2026, 1, 15)
SIX_HOUR_DAY = date(2026, 1, 16)


def child_floor(archive: str, day: str) -> dict:
    import time

    import orjson
    from isal import igzip

    started = time.perf_counter()
    entries = json_bytes = 0
    for path in sorted(Path(archive, day.replace("-", "")).glob("*.jsonl.gz")):
        text = igzip.decompress(path.read_bytes())
        json_bytes += len(text)
        for line in text.split(b"\n"):
            if line.strip():
                orjson.loads(line)
                entries += 1
    return {"seconds": time.perf_counter() - started, "entries": entries, "json_bytes": json_bytes}


def child_export(archive: str, day: str, workers: str) -> dict:
    import resource
    import time

    from instrumetriq_polars import export_day

    out = tempfile.mkdtemp(prefix="bench-out-")
    try:
        started = time.perf_counter()
        result = export_day(day, archive, out, allow_incomplete=True, workers=None if workers == "auto" else int(workers))
        seconds = time.perf_counter() - started
        own_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
        return {"seconds": seconds, "rows": result.manifest.row_count, "parquet_bytes": result.manifest.parquet_size_bytes,
                "workers": result.workers, "own_peak_rss_mb": own_peak_mb,
                "worker_peak_rss_mb": [peak / 2**20 for peak in result.worker_peak_rss]}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def run_child(kind: str, archive: Path, day: date, workers: str = "auto") -> dict:
    """Run one measurement in a fresh interpreter; add its memory figures (MB)."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", kind, str(archive), day.isoformat(), workers], stdout=subprocess.PIPE)
    sampler = PssSampler(proc.pid)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} child failed with exit code {proc.returncode}")
    result = json.loads(output)
    own = result.get("own_peak_rss_mb", usage.ru_maxrss / 1024)
    result["peak_rss_mb"] = own + sum(result.get("worker_peak_rss_mb", []))
    result["peak_pss_mb"] = sampler.peak_mb
    return result


class PssSampler:
    """Samples the summed PSS (proportional set size: shared pages split between the processes
    that map them) of a process and its descendants every 10 ms, in a thread."""

    def __init__(self, pid: int) -> None:
        import threading

        self.pid, self.peak_mb = pid, 0.0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(0.01):
            total = sum(_pss_kib(pid) for pid in _tree(self.pid))
            self.peak_mb = max(self.peak_mb, total / 1024)


def _tree(root: int) -> list[int]:
    pids, queue = [], [root]
    while queue:
        pid = queue.pop()
        pids.append(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:  # the process ended
            continue
        for task in tasks:
            try:
                queue.extend(int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split())
            except OSError:  # the thread ended
                continue
    return pids


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


SHARED_GENERATOR = Path(__file__).resolve().parents[2] / "shared" / "tools" / "make_archive.py"


def ensure_data(data: Path, entries_per_hour: int, generator: str) -> Path:
    from instrumetriq_polars.synthetic import write_archive_day

    archive = data / f"archive-{generator}-{entries_per_hour}"
    marker = archive / ".complete"
    if not marker.exists():
        print(f"generating benchmark archive under {archive} (once) ...", file=sys.stderr)
        shutil.rmtree(archive, ignore_errors=True)
        if generator == "shared":
            for day, hours in ((FULL_DAY, "0-23"), (SIX_HOUR_DAY, "0-5")):
                subprocess.run([sys.executable, str(SHARED_GENERATOR), str(archive), "--date", day.isoformat(),
                                "--hours", hours, "--entries-per-hour", str(entries_per_hour)], check=True)
        else:
            write_archive_day(archive, FULL_DAY, entries_per_hour=entries_per_hour, seed=1)
            write_archive_day(archive, SIX_HOUR_DAY, entries_per_hour=entries_per_hour, hours=range(6), seed=2)
        marker.write_text("ok")
    return archive


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries-per-hour", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "instrumetriq-bench")
    parser.add_argument("--generator", choices=("project", "shared"), default="project")
    parser.add_argument("--workers", default="auto", help="worker processes of the export (default: the exporter's own choice)")
    parser.add_argument("--no-check", action="store_true", help="report only; exit 0 even if a target is missed")
    parser.add_argument("--child", nargs=4, metavar=("KIND", "ARCHIVE", "DAY", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, archive, day, workers = args.child
        print(json.dumps(child_floor(archive, day) if kind == "floor" else child_export(archive, day, workers)))
        return 0

    archive = ensure_data(args.data, args.entries_per_hour, args.generator)
    floors, exports, six_hours, in_process = [], [], [], []
    for i in range(args.repeat):
        floors.append(run_child("floor", archive, FULL_DAY))
        exports.append(run_child("export", archive, FULL_DAY, args.workers))
        six_hours.append(run_child("export", archive, SIX_HOUR_DAY, args.workers))
        in_process.append(run_child("export", archive, FULL_DAY, "0"))
        print(f"run {i + 1}/{args.repeat}: floor {floors[-1]['seconds']:.2f} s, export {exports[-1]['seconds']:.2f} s "
              f"({exports[-1]['peak_rss_mb']:.0f} MB), 6h export {six_hours[-1]['peak_rss_mb']:.0f} MB, "
              f"in one process {in_process[-1]['seconds']:.2f} s ({in_process[-1]['peak_rss_mb']:.0f} MB)", file=sys.stderr)

    def median(runs, key):
        return statistics.median(r[key] for r in runs)

    floor_s, export_s, one_s = median(floors, "seconds"), median(exports, "seconds"), median(in_process, "seconds")
    rss_24, rss_6 = median(exports, "peak_rss_mb"), median(six_hours, "peak_rss_mb")
    entries, json_mb = floors[0]["entries"], floors[0]["json_bytes"] / 1e6
    ratio, rss_ratio = export_s / floor_s, rss_24 / rss_6
    workers = exports[0]["workers"]
    targets = [
        ("export / decode floor", ratio, 3.0, f"{ratio:.2f}x"),
        ("export peak memory (MB)", rss_24, 600.0, f"{rss_24:.0f} MB"),
        ("24h / 6h peak memory", rss_ratio, 1.25, f"{rss_ratio:.2f}"),
    ]

    def memory(runs) -> str:
        own = median(runs, "own_peak_rss_mb")
        worker_peaks = sorted(p for r in runs for p in r["worker_peak_rss_mb"])
        workers_part = f" + {runs[0]['workers']} worker(s) ~{statistics.median(worker_peaks):.0f} MB each" if worker_peaks else ""
        return (f"{median(runs, 'peak_rss_mb'):.0f} MB (peak RSS: export process {own:.0f} MB{workers_part}); "
                f"sampled peak PSS of all {median(runs, 'peak_pss_mb'):.0f} MB")

    print(f"input: {entries} entries, {json_mb:.0f} MB of JSON; medians of {args.repeat} interleaved runs")
    print(f"decode floor (isal gunzip + orjson.loads): {floor_s:.2f} s")
    print(f"export (flat layout, zstd, {workers} worker process(es)): {export_s:.2f} s  = {entries / export_s:.0f} entries/s, {json_mb / export_s:.0f} MB/s of JSON")
    print(f"export with every hour built in one process (workers=0): {one_s:.2f} s = {one_s / floor_s:.2f}x the floor, {memory(in_process)}")
    print(f"parquet size: {exports[0]['parquet_bytes'] / 1e6:.1f} MB; floor child peak RSS {median(floors, 'peak_rss_mb'):.0f} MB")
    print(f"peak memory: 24-hour day {memory(exports)}")
    print(f"peak memory: 6-hour day {memory(six_hours)}")
    missed = 0
    for name, value, limit, shown in targets:
        ok = value <= limit
        missed += not ok
        print(f"{'PASS' if ok else 'MISS'}  {name}: {shown} (target <= {limit:g})")
    return 1 if missed and not args.no_check else 0


if __name__ == "__main__":
    raise SystemExit(main())
