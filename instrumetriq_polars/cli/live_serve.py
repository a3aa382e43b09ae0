"""``live serve`` and ``live rules check|backtest``: the live feed's server and its alert rules
(``instrumetriq_polars.live.server`` / ``live.backtest``). Registered in ``cli/live.py``'s
``SUBCOMMANDS``; the same conventions (one ``error:`` line, exit 1; usage errors exit 2).
"""

from __future__ import annotations

import argparse
import os
import sys

import orjson

from ..log import Log
from .common import UsageError, _location
from .live import _archive, common_options

DEFAULT_PORT = 8765


def add_serve(sub) -> None:
    p = sub.add_parser("serve", help="the follower and an HTTP server: SSE stream, snapshot, replay, alerts, metrics, the live page",
                       description="Run the follower and serve the feed over HTTP (needs the [live] extra: "
                                   "pip install 'instrumetriq_polars[live]'). The live page is at /. Stops on SIGINT/SIGTERM.")
    common_options(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes it)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--rules", metavar="R.toml", help="alert rules to evaluate (see docs/live_server.md)")
    p.add_argument("--token-file", metavar="FILE", help="require this bearer token (Authorization header or ?token=) on /v1 and /metrics")
    p.add_argument("--cors-origin", metavar="ORIGIN", help="allow this origin to call the API from a browser")
    p.add_argument("--ring-size", type=int, default=10_000, metavar="N", help="recent entries kept in memory (default 10000)")
    p.add_argument("--queue-size", type=int, default=1_000, metavar="N",
                   help="events a slow client may have waiting before it is told where to resume and disconnected (default 1000)")
    p.add_argument("--stale-after", type=float, default=25 * 60, metavar="S", help="/v1/health is 503 after this long without an entry (default 1500)")
    p.add_argument("--heartbeat", type=float, default=15.0, metavar="S", help="seconds between stream heartbeats (default 15)")
    p.add_argument("--start", choices=("beginning", "now"), default="beginning",
                   help="a new state folder starts at the archive's beginning (default) or now")
    p.add_argument("--mode", choices=("auto", "inotify", "poll"), default="auto", help="change detection (default: inotify on Linux)")
    p.add_argument("--poll-interval", type=float, default=0.25, metavar="S", help="seconds between polls in poll mode (default 0.25)")
    p.add_argument("--publish-r2", nargs="?", const="r2", metavar="URL",
                   help="after each burst write tier1/live/latest.json and tier1/live/YYYY-MM-DD/HH.jsonl under URL "
                        "(default: the configured R2 bucket)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from ..live.server import ServeOptions, serve
    except ImportError as exc:
        raise UsageError(f"live serve needs the [live] extra ({exc.name} is not installed): "
                         "pip install 'instrumetriq_polars[live]'") from None
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port takes 0-65535, not {args.port}")
    if args.ring_size < 1 or args.queue_size < 1 or args.heartbeat <= 0 or args.poll_interval <= 0:
        raise UsageError("--ring-size and --queue-size must be at least 1, --heartbeat and --poll-interval above 0")
    publish = args.publish_r2
    if publish == "r2":
        from .. import storage
        publish = f"s3://{storage.load_settings().bucket}"
    options = ServeOptions(archive=_archive(args), state_dir=args.state_dir, host=args.host, port=args.port, rules=args.rules,
                           ring_size=args.ring_size, queue_size=args.queue_size, heartbeat_s=args.heartbeat,
                           stale_s=args.stale_after, token_file=args.token_file, cors_origin=args.cors_origin,
                           fresh_start=args.start, mode=args.mode, poll_interval=args.poll_interval, publish_r2=publish)
    log = Log()
    serve(options, ready=lambda url: log.info(f"serving the live feed at {url}/ (state {args.state_dir}, archive {options.archive})"))
    return 0


def add_rules(sub) -> None:
    p = sub.add_parser("rules", help="check alert rules on sample entries, or backtest them on published Tier 3 days",
                       description="Alert rules (TOML): 'check' loads them and dry-runs them on entries; 'backtest' evaluates "
                                   "them on the published Tier 3 days of a range, as the live server would have.")
    group = p.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    check = group.add_parser("check", help="load the rules and dry-run them on entries (the real sample, or --entries)",
                             description="Load the rules (a bad rule is one error line naming it) and evaluate them on archive "
                                         "entries; prints one JSON line per notification on stdout, a summary on stderr.")
    check.add_argument("rules", metavar="R.toml")
    check.add_argument("--entries", metavar="FILE", help="archive entries to run them on (.jsonl or .jsonl.gz); default: "
                                                          "../shared/fixtures/archive_sample_2026-01-01.jsonl.gz if present, else synthetic ones")
    check.set_defaults(func=cmd_rules_check)
    back = group.add_parser("backtest", help="evaluate the rules on published Tier 3 days (through scan)",
                            description="Evaluate the rules on the published Tier 3 days of a range, read through scan, with the "
                                        "live server's engine: the same entries give the live run's notifications (JSON lines).")
    back.add_argument("rules", metavar="R.toml")
    back.add_argument("--from-date", required=True, metavar="YYYY-MM-DD", help="first day to backtest")
    back.add_argument("--to-date", metavar="YYYY-MM-DD", help="last day (inclusive; default: --from-date)")
    back.add_argument("--dataset", type=_location, default=None, metavar="ROOT",
                      help="the Tier 3 dataset root (default: output/tier3_daily; s3://... for R2)")
    back.set_defaults(func=cmd_rules_backtest)
    for command in (check, back):
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def tempfile_dir() -> str:
    import tempfile
    return tempfile.gettempdir()


def _print(alerts: list[dict]) -> None:
    out = sys.stdout.buffer
    out.writelines(orjson.dumps(a) + b"\n" for a in alerts)
    out.flush()


def _tally(alerts: list[dict]) -> str:
    firing = sum(a["status"] == "firing" for a in alerts)
    return f"{len(alerts)} notifications ({firing} firing, {len(alerts) - firing} resolved)"


def cmd_rules_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..live.backtest import check, load

    entries = args.entries
    if entries is None:
        sample = Path("../shared/fixtures/archive_sample_2026-01-01.jsonl.gz")
        entries = str(sample) if sample.exists() else None
    if entries is None:
        import gzip
        import json
        import random
        import tempfile
        from datetime import datetime, timedelta, timezone

        from ..synthetic import make_entry

        ruleset = load(args.rules)  # the rules first: their error is the one to see
        rng, start = random.Random(7), datetime(2026, 1, 1, tzinfo=timezone.utc)
        with tempfile.NamedTemporaryFile(suffix=".jsonl.gz", delete=False) as f:
            with gzip.open(f, "wt") as z:
                for i in range(144):
                    z.write(json.dumps(make_entry(rng, start + timedelta(minutes=10 * (i // 4)))) + "\n")
        entries = f.name
        Log().info(f"no --entries and no ../shared sample: dry run on 144 synthetic entries ({len(ruleset.rules)} rules)")
    try:
        ruleset, count, alerts = check(args.rules, entries)
    finally:
        if args.entries is None and entries.endswith(".jsonl.gz") and entries.startswith(tempfile_dir()):
            os.remove(entries)
    Log().info(f"{args.rules}: {len(ruleset.rules)} rules OK ({', '.join(r.name for r in ruleset.rules) or 'none'}); "
               f"dry run on {count} entries of {entries}: {_tally(alerts)}")
    _print(alerts)
    return 0


def cmd_rules_backtest(args: argparse.Namespace) -> int:
    from ..tiers import DEFAULT_OUT_DIR
    from ..live.backtest import backtest

    root = args.dataset or DEFAULT_OUT_DIR
    ruleset, count, alerts = backtest(args.rules, root, args.from_date, args.to_date or args.from_date)
    Log().info(f"{args.rules}: {len(ruleset.rules)} rules on {count} entries of {root} "
               f"{args.from_date}..{args.to_date or args.from_date}: {_tally(alerts)}")
    _print(alerts)
    return 0
