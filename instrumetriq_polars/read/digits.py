"""Which texts orjson may misround: exact ties between two doubles written with more than 768
significant digits (measured: 282 of 618 such ties in 100,000 number texts; nothing else). Python's
``float()`` (and so ``json.loads``) rounds them correctly; a line that may hold one is read again by
``json.loads`` (decode.py). The test is a cheap superset: a run of more than 768 bytes of digits
and points (every such number has one), in C when the native parser is installed."""

from __future__ import annotations

import re

#: orjson keeps this many significant digits of a number; beyond, an exact tie may round wrongly.
ORJSON_DIGITS = 768

try:
    from ._spans import long_number as _long_number
except ImportError:  # the native parser is not installed: the same test by a regular expression
    _RUN = re.compile(rb"[0-9.]{%d}" % (ORJSON_DIGITS + 1))

    def long_number(text: bytes) -> bool:
        """Whether ``text`` may hold a number of more than ``ORJSON_DIGITS`` significant digits."""
        return _RUN.search(text) is not None
else:
    def long_number(text: bytes) -> bool:
        """Whether ``text`` may hold a number of more than ``ORJSON_DIGITS`` significant digits."""
        return _long_number(text, ORJSON_DIGITS + 1)
