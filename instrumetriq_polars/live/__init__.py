"""Tier 1, the live feed: the archive followed as it is written, as a durable, gap-free sequence.

Public API (stable; docs/live.md is the manual):

- ``follow(archive=None, state_dir="output/tier1_state", *, start="checkpoint", fields="tier1",
  symbols=None, consumer="default", follow=True, options=None, stop=None) -> Iterator[Batch]``:
  runs the follower (one per state folder) and yields batches of entries and system events;
- ``read(state_dir, after=0, follow=False, *, fields="tier1", symbols=None, archive=None)
  -> Iterator[Batch]``: the journal from another process, without running a follower;
- ``status(state_dir, archive=None) -> dict``: offsets, bytes behind, ages, damaged spans;
- ``compact(state_dir, keep_days) -> dict`` / ``oldest_seq(state_dir)``: a bounded journal;
- ``Batch`` (``.entries``, ``.events``, ``.first_seq``, ``.last_seq``, ``.ack()``, ``.to_polars()``),
  ``Entry`` (``seq``, ``position``, ``late``, ``row``), ``Event``, ``Position``, ``FollowOptions``;
- ``TIER1_FIELDS`` / ``TIER1_SCHEMA``: the ``tier1`` projection; ``DEFAULT_STATE_DIR``.

The follower's parts: ``journal`` (durable state), ``follower`` (one pass over the archive),
``files`` (archive access), ``inotify`` (wake-ups), ``rows`` (the Tier 2/3 reader), ``tier1``
(the projection), ``status``, ``simulate`` (a collector for tests and demos).
"""

from .api import BATCH_SIZE, DEFAULT_STATE_DIR, Batch, Entry, Event, Position, follow, read, to_polars
from .client import subscribe  # the live server's client (part 2): standard library HTTP only
from .compact import compact, oldest_seq
from .follower import FollowOptions
from .status import status
from .tier1 import TIER1_FIELDS, TIER1_SCHEMA

__all__ = ["BATCH_SIZE", "DEFAULT_STATE_DIR", "Batch", "Entry", "Event", "FollowOptions", "Position", "TIER1_FIELDS",
           "TIER1_SCHEMA", "follow", "read", "status", "subscribe", "to_polars"]
