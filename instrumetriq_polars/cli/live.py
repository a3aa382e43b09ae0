"""``live``: the Tier 1 live feed's commands (tail, status, replay, simulate) over ``instrumetriq_polars.live``.

Each subcommand is one ``add_NAME(sub)`` function that adds its parser (with the shared options:
``--archive-path``, ``--state-dir``) and one ``cmd_NAME(args) -> exit code``; ``add_live_parser``
lists them (``SUBCOMMANDS``), so adding a subcommand is a function and a line. Conventions as
for ``export``: one ``error: ...`` line and exit 1 (2 for usage), SIGINT/SIGTERM stop at the next
safe point (between batches) with exit 130/143; stdout carries data only, progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import nullcontext
from datetime import date, datetime

import orjson

from .. import interrupt
from ..errors import Interrupted
from ..tiers import ARCHIVE_ENV, default_archive
from ..log import Log
from .common import UsageError, _location

DEFAULT_STATE = "output/tier1_state"


def common_options(parser: argparse.ArgumentParser) -> None:
    """The options every ``live`` subcommand takes."""
    parser.add_argument("--archive-path", type=_location, metavar="PATH",
                        help=f"archive root, local or fsspec URL (default: ${ARCHIVE_ENV} or the server path)")
    parser.add_argument("--state-dir", default=DEFAULT_STATE, metavar="DIR", help=f"the follower's state folder (default: {DEFAULT_STATE})")


def _archive(args: argparse.Namespace) -> str:
    return args.archive_path or default_archive()


def _stopper():
    """A ``stop`` callable for the live loops: true once SIGINT or SIGTERM arrived (``interrupt``)."""
    state = {"signum": None}

    def stop() -> bool:
        if state["signum"] is None:
            try:
                interrupt.check()
            except Interrupted as exc:
                state["signum"] = exc.signum
        return state["signum"] is not None

    return stop, state


def _fields(text: str):
    if text in ("tier1", "full"):
        return text
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--fields takes tier1, full or a comma-separated list of column names")
    return names


def _symbols(text: str | None):
    return None if not text else {s.strip() for s in text.split(",") if s.strip()}


def _json_default(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError


def entry_line(entry) -> bytes:
    """One ``live tail`` line: ``seq``, ``position``, ``late``, and the row (``row``), or with
    ``fields full`` the original line unchanged (``entry``)."""
    head = {"seq": entry.seq, "position": entry.position._asdict(), "late": entry.late}
    if isinstance(entry.row, bytes):
        return orjson.dumps(head)[:-1] + b',"entry":' + entry.row.rstrip(b"\n") + b"}\n"
    head["row"] = entry.row
    return orjson.dumps(head, default=_json_default, option=orjson.OPT_NON_STR_KEYS) + b"\n"


def _start(args: argparse.Namespace):
    if args.from_seq is not None and args.start is not None:
        raise UsageError("--from-seq and --start go apart: give one")
    if args.from_seq is not None:
        if args.from_seq < 1:
            raise UsageError(f"--from-seq takes a seq of at least 1, not {args.from_seq}")
        return args.from_seq
    return args.start or "checkpoint"


# -- tail ------------------------------------------------------------------------------------------
def add_tail(sub) -> None:
    p = sub.add_parser("tail", help="follow the archive: one JSON object per entry on stdout",
                       description="Run the follower and print each entry as one JSON line (seq, position, late, row). "
                                   "Without --start or --from-seq it resumes after the consumer's last acknowledged entry.")
    common_options(p)
    p.add_argument("--from-seq", type=int, metavar="SEQ", help="start at this seq")
    p.add_argument("--start", metavar="WHERE", help="checkpoint (default), now, beginning, or an hour YYYY-MM-DDTHH")
    p.add_argument("--fields", default="tier1", metavar="F", help="tier1 (default), full (the original line as 'entry'), or col1,col2,...")
    p.add_argument("--symbols", metavar="S1,S2", help="only these symbols")
    p.add_argument("--consumer", default="default", metavar="NAME", help="the cursor to resume from and acknowledge (default: default)")
    p.add_argument("--no-follow", action="store_true", help="stop at the end of what the archive holds")
    p.add_argument("--mode", choices=("auto", "inotify", "poll"), default="auto", help="change detection (default: inotify on Linux)")
    p.add_argument("--poll-interval", type=float, default=0.25, metavar="S", help="seconds between polls in poll mode (default 0.25)")
    p.add_argument("--events", action="store_true", help="also print system events on stdout (as {\"event\": ...})")
    p.set_defaults(func=cmd_tail)


def cmd_tail(args: argparse.Namespace) -> int:
    from ..live import FollowOptions, follow

    start = _start(args)
    if args.poll_interval <= 0:
        raise UsageError(f"--poll-interval takes a positive number of seconds, not {args.poll_interval}")
    options = FollowOptions(mode=args.mode, poll_interval=args.poll_interval)
    log, out = Log(), sys.stdout.buffer
    stop, stopped = _stopper()
    with interrupt.stop_on_signals():
        feed = follow(_archive(args), args.state_dir, start=start, fields=_fields(args.fields), symbols=_symbols(args.symbols),
                      consumer=args.consumer, follow=not args.no_follow, options=options, stop=stop)
        try:
            for batch in feed:
                for event in batch.events:
                    line = orjson.dumps({"event": event.type, **event.data}, default=_json_default)
                    if args.events:
                        out.write(line + b"\n")
                    else:
                        log.info(f"event {line.decode()}")
                out.writelines(entry_line(e) for e in batch.entries)
                out.flush()
                batch.ack()
                if stop():
                    break
        finally:
            feed.close()
    if stopped["signum"] is not None:
        log.error("interrupted; the cursor is at the last entry printed")
        return 128 + stopped["signum"]
    return 0


# -- status ----------------------------------------------------------------------------------------
def add_status(sub) -> None:
    p = sub.add_parser("status", help="offsets, bytes behind, age of the last entry, damaged spans (exit 1 when stale, lagging or damaged)",
                       description="The live feed's state from its state folder. Exit 0 when healthy, 1 when stale (no entry for "
                                   "25 minutes), lagging or damaged, 2 for usage errors.")
    common_options(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--stale-after", type=float, default=25 * 60, metavar="S", help="seconds without an entry that count as stale (default 1500)")
    p.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    from ..live import status

    result = status(args.state_dir, args.archive_path, stale_after=args.stale_after)
    if args.json:
        print(json.dumps(result, indent=2))
        return 1 if result["problems"] else 0
    age = result["last_entry_age_s"]
    print(f"state {result['state_dir']} (archive {result['archive']}); follower {'running' if result['follower_running'] else 'not running'}")
    print(f"last seq {result['last_seq']}, last entry {'-' if age is None else f'{age:.0f} s ago'} "
          f"(expired_ts {result['last_entry_expired_ts'] or '-'}), {result['bytes_behind']} bytes behind")
    for f in result["files"][-6:]:
        print(f"  {f['file']}: {f['state']}, offset {f['offset']} of {f['size']}, {f['entries']} entries"
              + (f", {f['damaged_bytes']} damaged bytes" if f["damaged_bytes"] else ""))
    for span in result["damaged_spans"][-5:]:
        print(f"  damaged {span['f']} bytes {span['start']}-{span['end']}: {span['reason']}")
    for name, cursor in result["consumers"].items():
        print(f"  consumer {name}: seq {cursor['seq']} ({cursor['behind']} behind)")
    for problem in result["problems"]:
        print(f"PROBLEM: {problem}")
    return 1 if result["problems"] else 0


# -- replay ----------------------------------------------------------------------------------------
def add_replay(sub) -> None:
    p = sub.add_parser("replay", help="write the journal's entries from --from-seq to --to-seq as JSONL or Parquet",
                       description="Read entries from the journal (and the archive, for full rows) without running a follower.")
    common_options(p)
    p.add_argument("--from-seq", type=int, required=True, metavar="A", help="first seq to replay")
    p.add_argument("--to-seq", type=int, metavar="B", help="last seq (inclusive; default: the last one)")
    p.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl", help="output format (default jsonl)")
    p.add_argument("--fields", default="tier1", metavar="F", help="tier1 (default), full, or col1,col2,...")
    p.add_argument("--symbols", metavar="S1,S2", help="only these symbols")
    p.add_argument("--out", required=True, metavar="FILE", help="output file ('-' for stdout, jsonl only)")
    p.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    import polars as pl

    from ..live import read, to_polars

    if args.from_seq < 1 or (args.to_seq is not None and args.to_seq < args.from_seq):
        raise UsageError(f"--from-seq must be at least 1 and --to-seq at least --from-seq (got {args.from_seq}, {args.to_seq})")
    if args.format == "parquet" and args.out == "-":
        raise UsageError("--format parquet needs a file for --out")
    feed = read(args.state_dir, after=args.from_seq - 1, fields=_fields(args.fields), symbols=_symbols(args.symbols),
                archive=args.archive_path)
    stop, stopped = _stopper()
    tmp = None if args.out == "-" else f"{args.out}.tmp.{os.getpid()}"
    frames, count = [], 0
    with interrupt.stop_on_signals():
        try:
            sink = sys.stdout.buffer if tmp is None else open(tmp, "wb")
            with (sink if tmp is not None else nullcontext(sink)) as out:
                for batch in feed:
                    entries = [e for e in batch.entries if args.to_seq is None or e.seq <= args.to_seq]
                    count += len(entries)
                    if args.format == "jsonl":
                        out.writelines(entry_line(e) for e in entries)
                    elif entries:
                        frames.append(batch.to_polars().filter(pl.col("seq") <= (args.to_seq or entries[-1].seq)))
                    if stop() or (args.to_seq is not None and batch.last_seq is not None and batch.last_seq >= args.to_seq):
                        break
                if args.format == "parquet" and not stop():
                    (pl.concat(frames) if frames else to_polars([], _fields(args.fields))).write_parquet(out, compression="zstd")
            if stop():
                raise Interrupted(stopped["signum"])
            if tmp is not None:
                os.replace(tmp, args.out)
        except BaseException:
            if tmp is not None and os.path.exists(tmp):
                os.remove(tmp)
            if stopped["signum"] is not None:
                Log().error("interrupted; nothing was written")
                return 128 + stopped["signum"]
            raise
    Log().info(f"replayed {count} entries to {args.out}")
    return 0


# -- simulate --------------------------------------------------------------------------------------
def add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="a collector simulator: append entries in bursts (tests, benchmarks, demos)",
                       description="Append entries to --archive-path as the collector does (gzip.open(path, 'ab') per entry, in bursts), "
                                   "logging each append as a JSON line (path, end, t) on stderr or to --log.")
    common_options(p)
    p.add_argument("--count", type=int, metavar="N", help="stop after N entries (default: run until interrupted)")
    p.add_argument("--rate", type=float, default=20.0, metavar="R", help="entries a second within a burst (default 20)")
    p.add_argument("--speed", type=float, default=1.0, metavar="X", help="fake clock speed: 100 runs an hour in 36 s (default 1)")
    p.add_argument("--start", metavar="YYYY-MM-DDTHH:MM", help="the fake clock's start (UTC; default now)")
    p.add_argument("--source", choices=("fixture", "synthetic"), default="fixture", help="the real sample's entries (default) or synthetic ones")
    p.add_argument("--faults", default="", metavar="F1,F2", help="crash,cut,corrupt,junk,truncate,replace,delete (each once, spread over the run)")
    p.add_argument("--seed", type=int, default=7, help="seed of the simulator (default 7)")
    p.add_argument("--log", metavar="FILE", help="append the JSONL log of appends there (default: stderr)")
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from datetime import timezone

    from ..live.simulate import FAULTS, SimulateOptions, simulate

    if not args.archive_path:
        raise UsageError("live simulate writes into an archive: give --archive-path (it has no default, to spare the real one)")
    faults = tuple(f for f in args.faults.split(",") if f)
    bad = [f for f in faults if f not in FAULTS]
    if bad:
        raise UsageError(f"unknown fault(s) {', '.join(bad)}: choose from {', '.join(FAULTS)}")
    if args.count is not None and args.count < 1 or args.rate < 0 or args.speed <= 0:
        raise UsageError("--count must be at least 1, --rate at least 0 and --speed above 0")
    start = None
    if args.start:
        try:
            start = datetime.fromisoformat(args.start).replace(tzinfo=timezone.utc)
        except ValueError:
            raise UsageError(f"--start takes YYYY-MM-DDTHH:MM (UTC), not {args.start!r}") from None
    options = SimulateOptions(count=args.count, rate=args.rate, speed=args.speed, start=start, source=args.source,
                              faults=faults, seed=args.seed)
    try:
        if args.log:
            os.makedirs(os.path.dirname(os.path.abspath(args.log)), exist_ok=True)
        sink = open(args.log, "a", buffering=1) if args.log else sys.stderr
    except OSError as exc:
        raise UsageError(f"cannot write the log {args.log}: {exc.strerror or exc}") from None

    def log(record: dict) -> None:
        sink.write(json.dumps(record) + "\n")
        sink.flush()

    stop, stopped = _stopper()
    try:
        with interrupt.stop_on_signals():
            written = simulate(args.archive_path, options, log, stop)
    except FileNotFoundError as exc:
        raise UsageError(f"{exc}") from None
    finally:
        if args.log:
            sink.close()
    Log().info(f"appended {written} entries under {args.archive_path}")
    return 128 + stopped["signum"] if stopped["signum"] is not None else 0


# -- compact ---------------------------------------------------------------------------------------
def add_compact(sub) -> None:
    p = sub.add_parser("compact", help="drop journal records older than --keep-days (the follower must be stopped)",
                       description="Keep the journal bounded: records older than --keep-days are dropped, with what a follower "
                                   "needs to go on where it was. Cursors older than what is kept are refused afterwards.")
    common_options(p)
    p.add_argument("--keep-days", type=float, required=True, metavar="N", help="days of records to keep")
    p.set_defaults(func=cmd_compact)


def cmd_compact(args: argparse.Namespace) -> int:
    from ..live import compact

    if args.keep_days < 0:
        raise UsageError(f"--keep-days takes a number of days of at least 0, not {args.keep_days}")
    result = compact(args.state_dir, args.keep_days)
    print(f"dropped {result['dropped']} records, kept {result['kept']}; the oldest seq kept is {result['oldest_seq']}")
    return 0


#: The ``live`` subcommands, in help order: each adds its parser.
SUBCOMMANDS = [add_tail, add_status, add_replay, add_simulate, add_compact]
from .live_serve import add_rules, add_serve  # noqa: E402 (it uses common_options above)
SUBCOMMANDS += [add_serve, add_rules]


def add_live_parser(sub) -> argparse.ArgumentParser:
    """Add the ``live`` command group to the top-level subparsers ``sub``."""
    live = sub.add_parser("live", help="Tier 1, the live feed: follow the archive as it is written (tail, status, replay, simulate)",
                          description="Tier 1, the live feed: a durable, gap-free sequence of the archive's entries as they are written.")
    group = live.add_subparsers(dest="live_command", metavar="SUBCOMMAND", required=True)
    for add in SUBCOMMANDS:
        add(group)
    for command in group.choices.values():
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return live
