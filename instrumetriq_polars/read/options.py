"""How the reading stage reads: one frozen options object, passed in (never module globals)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReadOptions:
    """The reading stage's tunables; the defaults are the measured ones.

    - ``lane``: read ``spot_prices`` with the native lane when it is installed (otherwise, and
      with False, the object lane: orjson and ``frames.ListColumn``). Either gives the same bytes.
    - ``whole_hour_bytes``: an hour file with at most this much text is read whole, as one chunk;
      a larger one in line-aligned chunks of at most ``chunk_bytes`` (a longer line is a chunk of
      its own), so that memory does not grow with the hour. Measured (README "Memory"): usual
      hours (~9.4 MB of text) in 4 MiB chunks cost the real-shaped day 0.6-1.9 s more CPU for no
      lower peak; the 20x hour in 16 MiB chunks peaked 60-90 MB above 4 MiB chunks.
    - ``read_ahead``: chunks read (fetched, gunzipped, cut into lines) ahead of the one being built, in a
      reader thread (0: none, all in the caller's thread).
    - ``parse_ahead``: the reader thread also reads each chunk's lists with the lane (the native
      parser runs without the GIL, beside the build of the chunk before).
    """

    lane: bool = True
    whole_hour_bytes: int = 16 << 20
    chunk_bytes: int = 4 << 20
    read_ahead: int = 1
    parse_ahead: bool = True

    def __post_init__(self) -> None:
        for name in ("whole_hour_bytes", "chunk_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"ReadOptions.{name} must be at least 1, not {getattr(self, name)}")
        if self.read_ahead < 0:
            raise ValueError(f"ReadOptions.read_ahead must be 0 or more, not {self.read_ahead}")


DEFAULT_OPTIONS = ReadOptions()
