"""Export throughput and memory against the decode floor, measured in one run.

    python benchmarks/bench_export.py [--entries-per-hour 100] [--repeat 5] [--data DIR]
                                      [--generator project|shared] [--shared DIR] [--no-check]

1. Generates (once, cached under --data) a full-size archive day: 24 hours x 100 entries, and a
   6-hour day of the same size per hour. ``--generator project`` (default) uses the project's own
   generator (~270 MB of JSON a day); ``shared`` uses ../shared/tools/make_archive.py (or
   ``--shared DIR``), whose entries are cloned from real ones (~220 MB a day).
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
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from benchkit import DEFAULT_SHARED, FULL_DAY, SIX_HOUR_DAY, decode_floor, ensure_data, run_child


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries-per-hour", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "instrumetriq-bench")
    parser.add_argument("--generator", choices=("project", "shared"), default="project")
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="folder holding tools/make_archive.py (default: ../shared)")
    parser.add_argument("--no-check", action="store_true", help="report only; exit 0 even if a target is missed")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "ARCHIVE", "DAY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, archive, day = args.child
        print(json.dumps((decode_floor if kind == "floor" else child_export)(archive, day)))
        return 0

    archive = ensure_data(args.data, args.entries_per_hour, args.generator, args.shared)
    floors, exports, six_hours = [], [], []
    for i in range(args.repeat):
        floors.append(run_child(__file__, "floor", str(archive), FULL_DAY.isoformat()))
        exports.append(run_child(__file__, "export", str(archive), FULL_DAY.isoformat()))
        six_hours.append(run_child(__file__, "export", str(archive), SIX_HOUR_DAY.isoformat()))
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
