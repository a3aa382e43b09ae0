"""Stopping a run at a safe point when it is asked to (SIGINT from Ctrl-C, SIGTERM from a cron
timeout or systemd).

Raising where the signal lands is not safe here: the main thread is usually inside Polars' sink,
and an exception raised there (Python's own KeyboardInterrupt does this) returns from the sink
while Polars' threads are still writing (a run then failed with ``write to closed file``, or left
its temporary data file behind; benchmarks/RESULTS.md has the counts). So a signal
only records the request, and the run checks for it (``check``) where stopping is safe: after each
hour is built, at each write of the data stream, before deciding to publish, between days and
before an upload. The export then discards what it did not publish, releases its lock and leaves
through the CLI's one ``interrupted`` line (exit 128 + the signal: 130, 143).

Python runs a signal handler only in the main thread, between bytecodes; inside the sink it runs
when the sink returns, which for a day is after all 24 hours. The hours are built, and the data
written, in Polars' threads, so ``check``
also reads the signal numbers that CPython's C-level handler writes, as soon as the signal
arrives, to the wakeup file descriptor (``signal.set_wakeup_fd``), from whichever thread it runs in.

A second signal while the run is stopping ends the process at once, as the signal would without
this module (a kill: the crash guarantees hold, leftovers are removed by the next run).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_requested: int | None = None  # the first signal received while stop_on_signals is in effect
_handled = 0  # signals the Python-level handler has seen
_wakeup: int | None = None  # the read end of the wakeup pipe, while stop_on_signals is in effect


def check() -> None:
    """Raise ``Interrupted`` if the run was asked to stop (from any thread)."""
    global _requested
    if _requested is None and _wakeup is not None:
        try:
            arrived = os.read(_wakeup, 64)
        except OSError:  # BlockingIOError: nothing arrived; or the pipe is already closed
            arrived = b""
        first = next((signum for signum in arrived if signum in SIGNALS), None)
        if first is not None and _requested is None:  # another thread may have read one first
            _requested = first
    if _requested is not None:
        raise Interrupted(_requested)


def checked(callback: Callable | None) -> Callable:
    """``callback`` (may be None) preceded by ``check()``: a safe point wherever it is called."""

    def call(*args, **kwargs):
        check()
        if callback is not None:
            return callback(*args, **kwargs)
        return None

    return call


def _on_signal(signum: int, frame) -> None:
    global _requested, _handled
    _handled += 1
    if _handled == 1:
        _requested = _requested or signum  # ``check`` may have read it from the pipe already
        return
    signal.signal(signum, signal.SIG_DFL)  # the second one: what the signal does without us
    os.kill(os.getpid(), signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block SIGINT and SIGTERM request a stop at the next safe point instead of acting
    where they land. Outside the main thread (where Python cannot handle signals) it does nothing."""
    global _requested, _handled, _wakeup
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    _requested, _handled, _wakeup = None, 0, read_end
    previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    previous = {signum: signal.signal(signum, _on_signal) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(previous_fd)
        _requested, _handled, _wakeup = None, 0, None
        os.close(read_end)
        os.close(write_end)
