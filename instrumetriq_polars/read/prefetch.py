"""Run an iterator ahead of its consumer in a thread, a bounded number of items ahead.

``prefetch(items, ahead)`` yields what ``items`` yields, in order, while a thread computes the
next ``ahead`` items (items for which ``weighs(item)`` is False are light, such as markers, and do
not count: the thread goes on past them). An exception raised by ``items`` is raised by
``prefetch`` where its item would have come, after every item before it. When the consumer stops
early (``close()``, garbage collection, an exception in its loop), the thread is told to stop,
the items it holds are let go, and it is joined before ``close()`` returns; ``items`` is closed in
the thread that ran it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()


def prefetch(items: Iterable[T], ahead: int = 1, *, weighs: Callable[[T], bool] | None = None,
             name: str = "prefetch") -> Iterator[T]:
    """``items``, computed up to ``ahead`` items ahead in a thread (``ahead`` 0: in this thread)."""
    if ahead < 0:
        raise ValueError(f"ahead must be 0 or more, not {ahead}")
    if ahead == 0:
        yield from items
        return
    ready: deque = deque()  # (item, None) | (_END, None) | (_END, exception)
    cond = threading.Condition()
    state = {"room": ahead, "stop": False}

    def produce() -> None:
        iterator = iter(items)
        item = entry = None
        try:
            while True:
                with cond:
                    while state["room"] <= 0 and not state["stop"]:
                        cond.wait()
                    if state["stop"]:
                        return
                try:
                    item = next(iterator)
                except StopIteration:
                    entry = (_END, None)
                except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
                    entry = (_END, exc)
                else:
                    entry = (item, None)
                with cond:
                    if state["stop"]:
                        return
                    if entry[0] is not _END and (weighs is None or weighs(entry[0])):
                        state["room"] -= 1
                    ready.append(entry)
                    cond.notify_all()
                    if entry[0] is _END:
                        return
                del item, entry
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            with cond:
                while not ready:
                    cond.wait()
                item, error = ready.popleft()
                if item is not _END and (weighs is None or weighs(item)):
                    state["room"] += 1
                    cond.notify_all()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
            del item
    finally:
        with cond:
            state["stop"] = True
            ready.clear()
            cond.notify_all()
        thread.join()
