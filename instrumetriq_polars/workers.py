"""Hours built in worker processes too, so decoding uses every core while the sink writes.

Decoding, normalising and building an hour is Python work, bound to one core by the GIL; the
Parquet sink runs in Polars' own threads. With ``workers=0`` every hour is built in this process
(the next one read and gunzipped in a thread meanwhile). With ``workers=N``, N child processes
(running ``serve``) build hours as well, one at a time: the compressed hour file goes in on the
child's stdin, the pickled ``BuiltHour`` comes back on its stdout. Hours are yielded in hour order
whoever built them, so the day is byte-identical to one built in process. A child whose parent
dies sees its stdin close and exits; it ignores Ctrl-C, which the parent handles by stopping it.

Memory: each child holds one hour; this process the hour it builds, a few built hours waiting
(``BUILT_AHEAD``) and the sink's row groups. Bounded by hours, not a day.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import traceback
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from .archive import ArchiveDay, HourFile
from .decode import gunzip
from .errors import WorkerError
from .hours import BuiltHour, build_hour, fetch_hour, hour_label

#: Below this many compressed bytes in a day (~3 hours of a real day), starting a process (~0.3 s,
#: mostly importing Polars and pyarrow) costs more than it saves: hours are built in process.
AUTO_MIN_DAY_BYTES = 2_000_000
#: Each child holds an hour (~100 MB of Python objects) besides its own ~100 MB of libraries.
AUTO_MAX_WORKERS = 1


def auto_workers(day: ArchiveDay) -> int:
    """Worker processes for ``day`` when the caller does not say: none for small days (tests,
    partial days) or on one core; else one per core beyond this process's, at most
    ``AUTO_MAX_WORKERS`` (measured on 2 cores, see benchmarks/)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cores < 2 or sum(h.size for h in day.hour_files) < AUTO_MIN_DAY_BYTES:
        return 0
    return min(cores - 1, AUTO_MAX_WORKERS)


class HourBuilders:
    """Builds the hours of one day: in this process, helped by ``workers`` child processes.

    Use as a context manager: the children start on entry (so they import while the export
    prepares) and are stopped on exit, killed if the export failed while they were working."""

    def __init__(self, workers: int) -> None:
        if workers < 0:
            raise ValueError(f"workers must be 0 or more, not {workers}")
        self.workers = workers
        self._children: list[_Child] = []
        #: Peak RSS of each child in bytes, as it reported when stopped cleanly.
        self.child_peak_rss: list[int] = []

    def __enter__(self) -> HourBuilders:
        try:
            for _ in range(self.workers):
                self._children.append(_Child())
        except BaseException:
            self._stop(clean=False)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop(clean=exc_type is None)

    def built_hours(self, day: ArchiveDay) -> Iterator[BuiltHour]:
        """The day's hours, built, in hour order.

        Each idle child is given the next hour; this process builds the next hour itself while
        the hour due next is still with a child (keeping at most ``BUILT_AHEAD`` hours built
        early), so the work spreads over the processes without a fixed share."""
        files, children = day.hour_files, self._children
        labels = [hour_label(day, h) for h in files]
        # Read ahead in a thread. With no children the thread also gunzips (isal releases the
        # GIL: measured ~5% off the export); children gunzip what they are sent.
        gunzip_there = not children
        done: dict[int, BuiltHour] = {}
        reading: dict[int, Future] = {}
        next_hour = 0  # the first hour not yet given out

        def read(index: int):
            data = fetch_hour(day, files[index])
            return gunzip(data, labels[index]) if gunzip_there else data

        def read_ahead() -> None:
            for index in range(next_hour, min(next_hour + len(children) + 2, len(files))):
                if index not in reading:
                    reading[index] = reader.submit(read, index)

        def take_next() -> tuple[int, object]:
            nonlocal next_hour
            index, next_hour = next_hour, next_hour + 1
            data = reading.pop(index).result()
            read_ahead()
            return index, data

        def give_out(child: _Child) -> None:
            if next_hour < len(files):
                index, data = take_next()
                child.start(index, files[index], labels[index], data)

        def build_here() -> None:
            index, data = take_next()
            gunzipped = data if gunzip_there else gunzip(data, labels[index])
            done[index] = build_hour(files[index], labels[index], gunzipped)

        def collect(child: _Child) -> None:
            index = child.hour_index
            done[index] = child.result()
            give_out(child)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read") as reader:
            read_ahead()
            for child in children:
                give_out(child)
            for due in range(len(files)):
                while due not in done:
                    for child in children:
                        if child.finished():
                            collect(child)
                    if due in done:
                        break
                    holder = next((c for c in children if c.hour_index == due), None)
                    if holder is None or (next_hour < len(files) and len(done) < BUILT_AHEAD):
                        build_here()
                    else:
                        collect(holder)  # waits for it
                yield done.pop(due)

    def _stop(self, clean: bool) -> None:
        for child in self._children:
            peak = child.stop(clean)
            if peak is not None:
                self.child_peak_rss.append(peak)
        self._children.clear()


#: Hours this process may build ahead of the one due next (each waits as a frame, ~6 MB).
BUILT_AHEAD = 2


class _Child:
    """One worker process, the hour it is building, and a thread receiving its result (so the
    child can finish sending while this process builds an hour itself)."""

    def __init__(self) -> None:
        package_parent = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (package_parent, os.environ.get("PYTHONPATH")))))
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from instrumetriq_polars.workers import serve; raise SystemExit(serve())"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        )
        self._receiver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="worker-results")
        self._result: Future | None = None
        self.hour_index: int | None = None
        self.label: str | None = None

    def start(self, index: int, hour_file: HourFile, label: str, compressed: bytes) -> None:
        self.hour_index, self.label = index, label
        try:
            _send(self.process.stdin, (hour_file, label, compressed))
        except OSError:
            raise self._died() from None
        self._result = self._receiver.submit(_receive_bytes, self.process.stdout)

    def finished(self) -> bool:
        return self._result is not None and self._result.done()

    def result(self) -> BuiltHour:
        try:
            outcome, value = pickle.loads(self._result.result())  # here: objects made in a thread stay in its arena
        except (EOFError, OSError):
            raise self._died() from None
        self._result, self.hour_index, self.label = None, None, None
        if outcome == "failed":
            raise RuntimeError(f"building an hour in a worker process failed; its traceback:\n{value}")
        return value

    def _died(self) -> WorkerError:
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None and code < 0:
            how = f"killed by signal {-code}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
        else:
            how = f"exit code {code}" if code is not None else "it stopped answering"
        return WorkerError(f"the worker process building {self.label or 'an hour'} stopped ({how}); nothing published; run the export again")

    def stop(self, clean: bool) -> int | None:
        """Stop the process; returns its peak RSS in bytes when it stopped cleanly."""
        peak = None
        if clean and self._result is None and self.process.poll() is None:
            try:
                _send(self.process.stdin, None)
                peak = _receive(self.process.stdout)
            except (EOFError, OSError):
                peak = None
        if peak is None and self.process.poll() is None:
            self.process.kill()  # it only computes: nothing of it needs a graceful end
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.process.wait()
        self._receiver.shutdown(wait=True)
        return peak


def _send(stream, value) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(8, "little"))
    stream.write(data)
    stream.flush()


def _receive(stream):
    return pickle.loads(_receive_bytes(stream))


def _receive_bytes(stream) -> bytes:
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError
    size = int.from_bytes(header, "little")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return data


def serve() -> int:
    """The worker process: build hours from stdin until it closes or says stop."""
    import resource

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    jobs = sys.stdin.buffer
    results = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print must not corrupt the results
    while True:
        try:
            job = _receive(jobs)
        except EOFError:
            return 0
        if job is None:
            _send(results, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # Linux: KiB
            return 0
        hour_file, label, compressed = job
        del job
        try:
            outcome = ("built", build_hour(hour_file, label, gunzip(compressed, label)))
        except Exception:  # noqa: BLE001 - a bug: the parent raises it with this traceback
            outcome = ("failed", traceback.format_exc())
        del compressed
        try:
            _send(results, outcome)
        except OSError:  # the parent is gone
            return 0
        del outcome

