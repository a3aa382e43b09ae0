"""Export throughput and memory against the decode floor, measured in one run.

    python benchmarks/bench_export.py [--entries-per-hour 100] [--repeat 5] [--data DIR]
                                      [--generator project|shared] [--no-check]

1. Generates (once, cached under --data) a full-size archive day: 24 hours x 100 entries, and a
   6-hour day of the same size per hour. ``--generator project`` (default) uses the project's own
   generator (~270 MB of JSON a day); ``shared`` uses ../shared/tools/make_archive.py, whose
   entries are cloned from real ones (~220 MB a day).
2. Decode floor: isal gunzip + orjson.loads of every line, in a child process: the cheapest way
   to merely read the input.
3. Export: export_day of the full day to a temporary folder, in a child process.
   Floor and export runs are interleaved (noise hits both alike); medians are quoted.
4. Peak RSS of each child (os.wait4), and of a 6-hour vs a 24-hour export.

Targets (issue #2): export <= 3x the floor, peak RSS <= 600 MB, 24h/6h peak-RSS ratio <= 1.25.
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


def child_export(archive: str, day: str) -> dict:
    import time

    from instrumetriq_polars import export_day

    out = tempfile.mkdtemp(prefix="bench-out-")
    try:
        started = time.perf_counter()
        result = export_day(day, archive, out, allow_incomplete=True)
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "rows": result.manifest.row_count, "parquet_bytes": result.manifest.parquet_size_bytes}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def run_child(kind: str, archive: Path, day: date) -> dict:
    """Run one measurement in a fresh interpreter; add its peak RSS (MB) from wait4."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", kind, str(archive), day.isoformat()], stdout=subprocess.PIPE)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} child failed with exit code {proc.returncode}")
    result = json.loads(output)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


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
    parser.add_argument("--no-check", action="store_true", help="report only; exit 0 even if a target is missed")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "ARCHIVE", "DAY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, archive, day = args.child
        print(json.dumps((child_floor if kind == "floor" else child_export)(archive, day)))
        return 0

    archive = ensure_data(args.data, args.entries_per_hour, args.generator)
    floors, exports, six_hours = [], [], []
    for i in range(args.repeat):
        floors.append(run_child("floor", archive, FULL_DAY))
        exports.append(run_child("export", archive, FULL_DAY))
        six_hours.append(run_child("export", archive, SIX_HOUR_DAY))
        print(f"run {i + 1}/{args.repeat}: floor {floors[-1]['seconds']:.2f} s, export {exports[-1]['seconds']:.2f} s "
              f"({exports[-1]['peak_rss_mb']:.0f} MB), 6h export {six_hours[-1]['peak_rss_mb']:.0f} MB", file=sys.stderr)

    floor_s = statistics.median(r["seconds"] for r in floors)
    export_s = statistics.median(r["seconds"] for r in exports)
    rss_24 = statistics.median(r["peak_rss_mb"] for r in exports)
    rss_6 = statistics.median(r["peak_rss_mb"] for r in six_hours)
    entries, json_mb = floors[0]["entries"], floors[0]["json_bytes"] / 1e6
    ratio, rss_ratio = export_s / floor_s, rss_24 / rss_6
    targets = [
        ("export / decode floor", ratio, 3.0, f"{ratio:.2f}x"),
        ("export peak RSS (MB)", rss_24, 600.0, f"{rss_24:.0f} MB"),
        ("24h / 6h peak RSS", rss_ratio, 1.25, f"{rss_ratio:.2f}"),
    ]
    print(f"input: {entries} entries, {json_mb:.0f} MB of JSON; medians of {args.repeat} interleaved runs")
    print(f"decode floor (isal gunzip + orjson.loads): {floor_s:.2f} s")
    print(f"export (flat layout, zstd):                {export_s:.2f} s  = {entries / export_s:.0f} entries/s, {json_mb / export_s:.0f} MB/s of JSON")
    print(f"parquet size: {exports[0]['parquet_bytes'] / 1e6:.1f} MB; floor child peak RSS {statistics.median(r['peak_rss_mb'] for r in floors):.0f} MB")
    print(f"peak RSS: 24-hour day {rss_24:.0f} MB, 6-hour day {rss_6:.0f} MB")
    missed = 0
    for name, value, limit, shown in targets:
        ok = value <= limit
        missed += not ok
        print(f"{'PASS' if ok else 'MISS'}  {name}: {shown} (target <= {limit:g})")
    return 1 if missed and not args.no_check else 0


if __name__ == "__main__":
    raise SystemExit(main())
