"""read.prefetch: an iterator run ahead in a thread, bounded, in order, with errors forwarded to
where their item would have come, and a clean stop when the consumer stops early."""

from __future__ import annotations

import threading
import time

import pytest

from instrumetriq_polars.read.prefetch import prefetch


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate()}


@pytest.mark.parametrize("ahead", [0, 1, 3])
def test_items_come_in_order(ahead):
    assert list(prefetch(iter(range(50)), ahead)) == list(range(50))
    assert list(prefetch(iter([]), ahead)) == []


def test_it_runs_at_most_ahead_items_ahead_and_light_items_do_not_count():
    made: list[int] = []

    def items():
        for i in range(10):
            made.append(i)
            yield i
            yield None  # a light marker

    stream = prefetch(items(), 2, weighs=lambda item: item is not None, name="test-ahead")
    assert next(stream) == 0
    time.sleep(0.2)  # the thread makes items 1 and 2 (and the markers after them), then waits
    assert made == [0, 1, 2]
    assert [x for x in stream if x is not None] == list(range(1, 10))


def test_work_overlaps_with_the_consumer():
    def slow():
        for i in range(4):
            time.sleep(0.1)
            yield i

    started = time.perf_counter()
    for _ in prefetch(slow(), 1):
        time.sleep(0.1)  # consumer work; the next item is made meanwhile
    assert time.perf_counter() - started < 0.75  # 0.8 s in turn


def test_an_error_is_raised_where_its_item_would_have_come():
    def failing():
        yield 1
        yield 2
        raise OSError("gone")

    got = []
    with pytest.raises(OSError, match="gone"):
        for item in prefetch(failing(), 1):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_stops_and_joins_the_thread_and_closes_the_source():
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    stream = prefetch(endless(), 2, name="test-early-stop")
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()
    assert closed.is_set() and "test-early-stop" not in _threads()


def test_an_error_in_the_consumer_stops_the_thread():
    def items():
        yield from range(100)

    with pytest.raises(ZeroDivisionError):
        for item in prefetch(items(), 1, name="test-consumer-error"):
            if item == 5:
                1 / 0
    assert "test-consumer-error" not in _threads()


def test_stopping_while_the_thread_is_busy_waits_for_it():
    finished = threading.Event()

    def slow():
        yield 0
        time.sleep(0.2)
        finished.set()
        yield 1

    stream = prefetch(slow(), 1, name="test-busy")
    assert next(stream) == 0
    time.sleep(0.05)
    stream.close()  # the thread is inside its sleep: close() joins it
    assert finished.is_set() and "test-busy" not in _threads()
