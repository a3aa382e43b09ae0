"""Fuzzed hour files: byte-level mutations of small real-shaped lines, before and after gzip
(tests/test_fuzz.py runs them through the export; tests/test_columnar.py through both lanes).
``make_case`` returns one hour file and what was done to it."""

from __future__ import annotations

import gzip
import os
import random
import re

#: The seed of the fuzz runs (``FUZZ_SEED=<n>`` picks another).
SEED = int(os.environ.get("FUZZ_SEED", "20261127"))
BOM = "\ufeff".encode()

# Bytes and tokens a damaged or unusual archive line can hold.
BYTES = [b"\n", b"\r", b"\r\n", b"\t", b" ", b"\x00", b"\x0b", b"\x0c", b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":",
         b"\xff", b"\xc3", b"\xe2\x82", b"\xef\xbb\xbf", b"\xed\xa0\x80"]
TOKENS = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-0", b"123456789012345678901234567890", b"null",
          b"true", b"{}", b"[]", b'""', b'"\\ud800"', b'"\\udcff\\u0000"', b'"\\ud83d\\ude00"', b"\\u0000"]
#: Exact halfway points between two doubles written out with more than 768 significant digits, which
#: orjson misrounds (issue 21): json.loads, and so the export, reads 1.0 and 0.5 for the first two.
TIES = [b"1.00000000000000011102230246251565404236316680908203125" + b"0" * 715,
        b"0.500000000000000055511151231257827021181583404541015625" + b"0" * 720,
        b"12345.6780000000007930793799459934234619140625" + b"0" * 760]
KEYED = [b'"k\\ud800":1,', b'"extra":{"a":[1,{"b":null}]},', b'"x\\nnew":NaN,', b'"n":18446744073709551616,',
         b'"s":"\\udfff",']



# -- mutations: each takes (rng, data, corpus) and returns (new data, what it did) ------------------

def _pos(rng: random.Random, data: bytes) -> int:
    return rng.randrange(len(data) + 1)


def flip(rng, data, _):
    if not data:
        return data, "flip (empty)"
    at = rng.randrange(len(data))
    mask = 1 << rng.randrange(8) if rng.random() < 0.7 else rng.randrange(1, 256)
    return data[:at] + bytes([data[at] ^ mask]) + data[at + 1:], f"flip byte {at} ^ {mask:#04x}"


def insert(rng, data, _):
    at = _pos(rng, data)
    piece = rng.choice(BYTES) if rng.random() < 0.6 else bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    return data[:at] + piece + data[at:], f"insert {piece!r} at {at}"


def delete(rng, data, _):
    at = _pos(rng, data)
    size = rng.choice((1, 1, 2, 3, 8, 64))
    return data[:at] + data[at + size:], f"delete {size} bytes at {at}"


def cut(rng, data, _):
    at = _pos(rng, data)
    return data[:at], f"cut at {at} of {len(data)}"


def splice(rng, data, lines):
    other = rng.choice(lines)
    start = rng.randrange(len(other))
    piece = other[start:start + rng.randint(1, 200)]
    at = _pos(rng, data)
    return data[:at] + piece + data[at:], f"splice {len(piece)} bytes of another line at {at}"


def token(rng, data, _):
    at = _pos(rng, data)
    piece = rng.choice(TOKENS)
    return data[:at] + piece + data[at:], f"token {piece!r} at {at}"


def _after_brace(rng, data) -> int | None:
    braces = [i + 1 for i, byte in enumerate(data) if byte == 0x7B]  # after a "{"
    return rng.choice(braces) if braces else None


def keyed(rng, data, _):
    """A key/value pair after a random ``{``: valid JSON stays valid, with new content."""
    at = _after_brace(rng, data)
    if at is None:
        return data, "keyed (no object)"
    piece = rng.choice(KEYED)
    return data[:at] + piece + data[at:], f"pair {piece!r} at {at}"


def deepen(rng, data, _):
    """A field nested around orjson's limit (1024 levels), after a random ``{``."""
    at = _after_brace(rng, data)
    if at is None:
        return data, "deepen (no object)"
    depth = rng.choice((rng.randint(960, 1030), rng.randint(1, 1200)))
    value = b"[" * depth + b"]" * depth if rng.random() < 0.5 else b'{"a":' * depth + b"0" + b"}" * depth
    return data[:at] + b'"deep":' + value + b"," + data[at:], f"deep field of {depth} levels at {at}"


def rename(rng, data, _):
    """A byte inserted at the end of a key: the key becomes unknown, the field it was goes missing."""
    ends = [i for i in range(len(data) - 1) if data[i:i + 2] == b'":']
    if not ends:
        return data, "rename (no key)"
    at = rng.choice(ends)
    return data[:at] + b"_" + data[at:], f"rename the key ending at {at}"


def shuffle_lines(rng, data, lines):
    parts = data.split(b"\n")
    what = rng.choice(("swap", "duplicate", "drop", "blank", "join", "cross"))
    i, j = rng.randrange(len(parts)), rng.randrange(len(parts))
    if what == "swap":
        parts[i], parts[j] = parts[j], parts[i]
    elif what == "duplicate":
        parts.insert(j, parts[i])
    elif what == "drop":
        del parts[i]
    elif what == "blank":
        parts.insert(i, rng.choice((b"", b"   ", b"\r", b"\x0c", b"\x0b", b" \x0c\t", b"\r\x0b")))
    elif what == "join" and i + 1 < len(parts):
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    elif what == "cross":  # the start of one line with the end of another (a torn write)
        other = rng.choice(lines)
        parts[i] = parts[i][: rng.randrange(len(parts[i]) + 1)] + other[rng.randrange(len(other) + 1):]
    return b"\n".join(parts), f"lines: {what} {i} {j}"


def tie(rng, data, _):
    """A number of the text replaced by a long exact tie (one orjson misrounds)."""
    numbers = [m.span() for m in re.finditer(rb"(?<=[:\[, ])-?[0-9][0-9.eE+-]*(?=[,}\]])", data)]
    if not numbers:
        return data, "tie (no number)"
    start, end = rng.choice(numbers)
    piece = rng.choice(TIES)
    return data[:start] + piece + data[end:], f"tie of {len(piece)} digits at {start}"


TEXT_MUTATIONS = [flip, insert, delete, cut, splice, token, token, keyed, keyed, deepen, rename, shuffle_lines, shuffle_lines,
                  tie]
GZIP_MUTATIONS = [flip, flip, insert, delete, cut]


def compress(rng: random.Random, text: bytes) -> tuple[bytes, str]:
    level = rng.choice((1, 6, 9))
    if rng.random() < 0.2 and len(text) > 1:  # several members, the boundary anywhere (a writer that appends)
        at = rng.randrange(1, len(text))
        return gzip.compress(text[:at], level, mtime=0) + gzip.compress(text[at:], level, mtime=0), f"2 members split at {at}"
    return gzip.compress(text, level, mtime=0), f"level {level}"


def make_case(rng: random.Random, lines: list[bytes]) -> tuple[bytes, list[str]]:
    """One hour file and the list of what was done to it (at least one mutation)."""
    text = b"\n".join(rng.choice(lines) for _ in range(rng.randint(1, 4))) + b"\n"
    log: list[str] = []
    text_rounds = rng.choice((0, 1, 1, 1, 2, 2, 3, 3, 4, 5))
    gzip_rounds = rng.choice((0, 0, 0, 0, 0, 1, 2)) if text_rounds else rng.choice((1, 1, 2))
    for _ in range(text_rounds):
        text, what = rng.choice(TEXT_MUTATIONS)(rng, text, lines)
        log.append(what)
    blob, how = compress(rng, text)
    log.append(f"gzip {how}")
    for _ in range(gzip_rounds):
        if rng.random() < 0.15:
            extra = rng.choice((b"junk\n", b"\x00" * 8, gzip.compress(rng.choice(lines) + b"\n", mtime=0)))
            blob, what = blob + extra, f"append {len(extra)} bytes"
        else:
            blob, what = rng.choice(GZIP_MUTATIONS)(rng, blob, lines)
        log.append(f"gz {what}")
    return blob, log
