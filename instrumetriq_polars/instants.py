"""What an instant is: the one rule by which every timestamp of an entry is read.

An instant is text that pyarrow's ISO-8601 cast to ``timestamp[us, UTC]`` accepts, a missing
offset read as UTC, that lands in the years 0001-9999 once in UTC. In words:
``YYYY-MM-DD``, ``T`` or a space, then ``HH``, ``HH:MM``, ``HH:MM:SS`` or ``HH:MM:SS.f`` with 1 to 6
fraction digits, then ``Z``, ``+HH``, ``+HHMM``, ``+HH:MM`` (or ``-``), or nothing. An offset is
converted to UTC; **no offset means UTC** (the archive is written in UTC throughout: every
timestamp of the real archive carries ``Z`` or ``+00:00``). Refused: a date alone, 7 or more
fraction digits (they would be cut), impossible dates and times (``02-30``, ``24:00``, a leap
second ``:60``), lowercase ``t``/``z``, spaces around the text, and any value that is not text.

One implementation serves the export (a whole column at once: ``to_instants``), the verifier and
the manifest (``parse_instant``, one value); the two agree value by value, since a value's result
does not depend on the others of its column. The column cast is the fast path (one call for an
hour's timestamps); values are parsed one by one only where a column failed (``normalize``'s
per-value check). Timings: benchmarks/RESULTS.md.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc

#: The Arrow type of every instant column (Polars: ``Datetime("us", "UTC")``).
INSTANT_TYPE = pa.timestamp("us", tz="UTC")
#: Text that ends in an offset; anything else gets ``Z`` appended (no offset: UTC). A date alone
#: ends in ``-DD``, read as an offset, and is refused by the cast, as it should be.
_ZONE = r"(Z|[+-][0-9][0-9](:?[0-9][0-9])?)$"
#: The instants Python's datetime (and so every reader's row API) can hold: years 0001-9999, as
#: microseconds since 1970 (plain integers: a tz-aware ``pa.scalar`` at import made pyarrow import
#: pandas when it is installed, ~0.2 s and ~30 MB for every command; tests/test_instants.py checks them).
_FIRST_US = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
_LAST_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z


class NotInstants(ValueError):
    """A column of texts holds a value that is not an instant."""


def to_instants(texts: pa.Array) -> pa.Array:
    """A string array as ``timestamp[us, UTC]`` (NULL stays NULL); ``NotInstants`` when any value
    is not an instant (the caller then finds which, with ``parse_instant``)."""
    try:
        try:
            typed = pc.cast(texts, INSTANT_TYPE)
        except pa.ArrowInvalid:  # an offset missing (UTC), or a value that is not an instant
            zoned = pc.fill_null(pc.match_substring_regex(texts, _ZONE), True)
            utc, none = pa.scalar("Z", texts.type), pa.scalar("", texts.type)
            typed = pc.cast(pc.if_else(zoned, texts, pc.binary_join_element_wise(texts, utc, none)), INSTANT_TYPE)
    except pa.ArrowInvalid as exc:
        raise NotInstants(str(exc).splitlines()[0]) from None
    if len(typed) and typed.null_count < len(typed):
        bounds = pc.min_max(typed)
        if bounds["min"].value < _FIRST_US or bounds["max"].value > _LAST_US:
            raise NotInstants("an instant outside the years 0001-9999")
    return typed


def are_instants(texts: list[str]) -> bool:
    """Whether every text of ``texts`` is an instant (one vectorised test)."""
    try:
        to_instants(pa.array(texts, pa.string()))
    except (NotInstants, UnicodeEncodeError):  # a lone surrogate cannot even be Arrow text
        return False
    return True


def parse_instant(value) -> datetime | None:
    """The instant ``value`` is as text (an aware datetime in UTC), or None when it is not one
    (not text, or text the rule refuses)."""
    if type(value) is not str:
        return None
    try:
        return to_instants(pa.array([value], pa.string()))[0].as_py()
    except (NotInstants, UnicodeEncodeError, pa.ArrowException):
        return None


def as_instant(value) -> datetime | None:
    """A value read from a day's file as an instant: a typed timestamp (export version 2) as it
    is, in UTC; text (version 1 wrote the archive's strings) by ``parse_instant``."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return parse_instant(value)


def parse_instants(values: list) -> list[datetime | None]:
    """``parse_instant`` of each of ``values``, in one vectorised call when every text among them
    is an instant (one call instead of one per value), else value by value."""
    texts = [value if type(value) is str else None for value in values]
    try:
        return to_instants(pa.array(texts, pa.string())).to_pylist()
    except (NotInstants, UnicodeEncodeError, pa.ArrowException):
        return [parse_instant(value) for value in values]
