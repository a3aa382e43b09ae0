"""The native parser (read/_spans.c) against the readers it stands in for, value by value: every
number it takes is bit for bit ``float()`` of its text (correct rounding, ties to even) and orjson's
reading where orjson rounds correctly; every instant it takes is ``instants.to_instants``' value;
everything else it hands back. The fast suite runs some 35,000 texts (30,000 of them 16-20 digit
numbers for the long double path, many next to halfway points); the slow one many more."""

from __future__ import annotations

import gc
import math
import os
import random
import re
import struct
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction

import orjson
import pyarrow as pa
import pytest

from instrumetriq_polars.instants import INSTANT_TYPE, NotInstants, to_instants
from instrumetriq_polars.read._spans import Values, parse

KEYS = [b"ts", b"mid", b"bid", b"ask", b"spread_bps"]
TS = '"2026-01-15T00:00:01Z"'
LIMIT = 2.0**53
#: The forms the parser takes (every other one goes to the object lane).
CANONICAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|\+00:00)")


def _one(ts: str, mid: str) -> tuple[bool, int | None, float | None]:
    span = f'[{{"ts":{ts},"mid":{mid},"bid":1,"ask":2,"spread_bps":3}}]'.encode()
    line = b'{"spot_prices":' + span + b"}"
    taken, _, columns = parse([line], [15], [15 + len(span)], KEYS, b"tffff")
    if not taken[0]:
        return False, None, None
    return True, struct.unpack("q", columns[0])[0], struct.unpack("d", columns[1])[0]


def _bits(x: float) -> bytes:
    return struct.pack("d", x)


def _tie(rng: random.Random) -> str:
    """An exact halfway point between two neighbouring doubles, written out in full (often more
    than 768 significant digits), maybe with trailing zeros: the texts orjson misrounds."""
    x = rng.choice([1.0, 3.0, 0.1, 1e-300, 1e300, 12345.678, 2.0**-1022, 5e-324]) * rng.uniform(1, 2)
    up = math.nextafter(x, math.inf)
    half = (Fraction(x) + Fraction(up)) / 2
    digits, exponent = _exact_decimal(half)
    return digits + "0" * rng.choice([0, 0, 5, 800]) + f"e{exponent}" if exponent else digits


def _exact_decimal(value) -> tuple[str, int]:
    """``value`` (a Fraction with a power-of-two denominator) as exact digits and a power of ten."""
    numerator, denominator = value.numerator, value.denominator
    scale = 0
    while denominator != 1:
        numerator *= 10
        scale -= 1
        if numerator % denominator == 0:
            numerator //= denominator
            denominator = 1
    return str(numerator), scale


def number_texts(rng: random.Random, count: int) -> list[str]:
    texts = ["0", "-0", "-0.0", "0.0", "-0e5", "1", "-1", str(2**53), str(2**53 - 1), str(-(2**53) + 1), str(-(2**53)),
             str(2**53 + 1), "9007199254740991.5", "9007199254740992.0", "9007199254740991.9999999999",
             "5e-324", "-5e-324", "2.4703282292062328e-324", "2.4703282292062327e-324", "1e-400", "-1e-400",
             "2.2250738585072011e-308", "2.2250738585072014e-308", "1.7976931348623157e308", "1e308", "1e309",
             "0." + "0" * 400 + "1", "1" + "0" * 30, "123456789012345678901234567890e-20", "1E+2", "1e-2", "1E22",
             "1e23", "9007199254740993e-10", "0.1000000000000000055511151231257827021181583404541015625",
             "1.00000000000000011102230246251565404236316680908203125" + "0" * 715]
    for _ in range(count):
        kind = rng.randrange(9)
        if kind == 0:
            text = repr(rng.uniform(-1e6, 1e6))
        elif kind == 1:
            text = repr(rng.random() * 10 ** rng.randint(-330, 300))
        elif kind == 2:
            text = f"{rng.randint(0, 9)}.{rng.randint(0, 10**rng.randint(1, 40))}e{rng.randint(-340, 320)}"
        elif kind == 3:
            text = str(rng.randint(-(2**54), 2**54))
        elif kind == 4:
            text = _tie(rng)
        elif kind == 5:
            text = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 60)))
            text = text.lstrip("0") or "0"
            text = text[:rng.randint(1, len(text))] + "." + text if rng.random() < 0.7 and text != "0" else text
        elif kind == 6:
            text = f"{rng.choice(['', '-'])}{rng.randint(1, 9)}.{'0' * rng.randint(0, 30)}{rng.randint(0, 99)}E{rng.choice(['', '+', '-'])}{rng.randint(0, 30)}"
        elif kind == 7:
            text = repr(struct.unpack("d", rng.getrandbits(64).to_bytes(8, "little"))[0])
        else:
            text = rng.choice(["01", "1.", ".5", "+1", "1e", "--1", "0x10", "NaN", "-Infinity", "1.5.2", "1e+", "- 1",
                               "1_000", "１", "1e5.5", "0.e1", "-", "true"])
        if rng.random() < 0.1 and not text.startswith("-"):
            text = "-" + text
        texts.append(text)
    return texts


def _valid_json_number(text: str) -> bool:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return type(value) in (int, float) and text.strip() == text


def check_numbers(texts: list[str]) -> int:
    taken_count = 0
    for text in texts:
        taken, _, value = _one(TS, text)
        if not _valid_json_number(text):
            assert not taken, text
            continue
        exact = float(text) if "e" in text.lower() or "." in text else float(int(text))
        refuse = math.isinf(exact) or abs(exact) >= LIMIT or (exact == 0 and text.startswith("-"))
        assert taken == (not refuse), text
        if taken:
            taken_count += 1
            assert _bits(value) == _bits(exact), text  # correct rounding, as float()
            read = orjson.loads(text)
            significant = len(text.split("e")[0].split("E")[0].replace("-", "").replace(".", "").lstrip("0"))
            if significant <= 768:  # orjson rounds these correctly (it misrounds longer exact ties)
                assert _bits(float(read)) == _bits(value), text
    return taken_count


def _written(digits: int, exponent: int, rng: random.Random) -> str:
    """The number ``digits`` * 10**``exponent`` in one of JSON's forms."""
    text = str(digits)
    form = rng.randrange(3)
    if form == 0:
        return f"{text}e{exponent}"
    if form == 1 or not -30 < exponent + len(text) < 30:
        return f"{text[0]}.{text[1:] or '0'}E{exponent + len(text) - 1:+d}"
    point = len(text) + exponent  # positional: the digits before the point
    if point <= 0:
        return "0." + "0" * -point + text
    if exponent >= 0:
        return text + "0" * exponent
    return f"{text[:point]}.{text[point:]}"


def _rounded(value: Decimal, significant: int, shift: int) -> tuple[int, int]:
    """``value`` to ``significant`` digits (half to even), moved ``shift`` units in the last one."""
    exponent = value.adjusted() - significant + 1
    with localcontext() as context:
        context.prec = 1200
        digits = int(value.scaleb(-exponent).to_integral_value(ROUND_HALF_EVEN))
    return digits + shift, exponent


def _halfway(low: float) -> Fraction | None:
    up = math.nextafter(low, math.inf)
    return None if math.isinf(up) else (Fraction(low) + Fraction(up)) / 2


def _lands_on(text: str, halfway: Fraction) -> bool:
    """Whether the 64-bit-significand rounding of ``text``'s value is ``halfway`` (a double halfway
    point, so an even long double), with ``text`` not that point itself: the case the extended path
    of _spans.c must hand to strtod."""
    exact = abs(Fraction(text))
    if exact == halfway:
        return False
    binade = halfway.numerator.bit_length() - halfway.denominator.bit_length()
    binade -= Fraction(2) ** binade > halfway  # 2**binade <= halfway < 2**(binade + 1)
    ulp = Fraction(2) ** (binade - 63)
    return abs(exact - halfway) <= ulp / 2


def long_mantissa_texts(rng: random.Random, count: int) -> tuple[list[str], int]:
    """Texts of 16-20 significant digits for the long double path (and its edges): the decimals
    nearest to double halfway points (17-20 digits) and one unit either side, exact halfway points of
    up to 20 digits (ties to even), random 16-19 digit mantissas times 10**-30..10**30, and the same
    next to 2**53, the smallest normal and subnormal doubles and the largest double. Also returns how
    many of them round (as long doubles) onto a halfway point they are not."""
    texts, landing = [], 0
    for _ in range(count):
        kind = rng.randrange(8)
        if kind <= 2:  # a double's halfway point, to 17-20 digits, +-1 unit
            significant = rng.randint(17, 20)
            if kind == 0:  # often at the ends of the fast path's powers of ten (10**+-27)
                power = rng.choice([rng.randint(-30, 30), rng.choice([-28, -27, 27, 28]) + significant - 1])
                low = rng.uniform(1, 10) * 10.0**power
            elif kind == 1:
                low = rng.uniform(2.0**48, 2.0**53)
            else:
                low = rng.choice([2.0**53 - rng.randint(1, 64), 2.0**-1022 * rng.uniform(1, 1.001),
                                  5e-324 * rng.randint(1, 2**20), 1.7976931348623157e308 / rng.uniform(1, 1.001),
                                  2.0 ** rng.randint(-100, 100)])
            halfway = _halfway(low)
            if halfway is None:
                continue
            exact = Decimal("{}E{}".format(*_exact_decimal(halfway)))
            digits, exponent = _rounded(exact, significant, rng.choice([-1, 0, 0, 1]))
            text = _written(digits, exponent, rng)
            landing += _lands_on(text, halfway)
        elif kind == 3:  # an exact halfway point of at most 20 digits: [2**48, 2**53), a tie to even
            halfway = _halfway(rng.uniform(2.0**48, 2.0**53))
            digits, exponent = _exact_decimal(halfway)
            text = _written(int(digits), exponent, rng)
            assert Fraction(text) == halfway
        elif kind == 4:  # a random 16-19 digit mantissa, times 10**-30..10**30
            text = _written(rng.randrange(10**15, 10**19), rng.randint(-30, 30), rng)
        elif kind == 5:  # next to 2**53 (refused from there on)
            text = _written(rng.randrange(9007199254740980 * 10**3, 9007199254741000 * 10**3), -3, rng)
        elif kind == 6:  # the largest mantissas, the edges of the exponent range
            digits = rng.choice([10**19 - 1, 10**19, 2**64 - 1, 2**63, 2**63 - 1, 2**53 + 1, rng.randrange(10**18, 10**19)])
            text = _written(digits, rng.choice([-27, -28, 27, 28, -22, -23, 22, 23]), rng)
        else:  # next to the limits, 16-19 digits
            digits = rng.randrange(10**15, 10**19)
            text = _written(digits, rng.choice([-308, -324, -340, 290, 300]) - len(str(digits)) + 1 + rng.randint(-2, 2), rng)
        texts.append("-" + text if rng.random() < 0.2 else text)
    return texts, landing


def check_batch(texts: list[str]) -> int:
    """Every text, as one span each, in one parse call: each is taken unless refused, and each
    value taken is float()'s (and orjson's) bit for bit. Returns how many were taken."""
    spans = [f'[{{"ts":{TS},"mid":{text},"bid":1,"ask":2,"spread_bps":3}}]'.encode() for text in texts]
    taken, _, columns = parse(spans, [0] * len(spans), [len(span) for span in spans], KEYS, b"tffff")
    values = iter(struct.unpack(f"{len(columns[1]) // 8}d", columns[1]))
    for text, took in zip(texts, taken):
        exact = float(text)
        refuse = math.isinf(exact) or abs(exact) >= LIMIT or (exact == 0 and text.startswith("-"))
        assert bool(took) == (not refuse), text
        if took:
            value = next(values)
            assert _bits(value) == _bits(exact), text
            assert _bits(float(orjson.loads(text))) == _bits(exact), text
    return sum(taken)


def ts_texts(rng: random.Random, count: int) -> list[str]:
    texts = ['"2026-01-15T00:00:01Z"', '"2026-01-15T00:00:01+00:00"', '"2026-01-15T00:00:01.123456Z"', '"0001-01-01T00:00:00Z"',
             '"9999-12-31T23:59:59.999999Z"', '"0000-01-01T00:00:00Z"', '"2024-02-29T00:00:00Z"', '"2023-02-29T00:00:00Z"',
             '"2026-01-15T24:00:00Z"', '"2026-01-15T00:00:60Z"', '"2026-01-15T00:00:01.1234567Z"', '"2026-01-15T00:00:01.Z"',
             '"2026-01-15t00:00:01Z"', '"2026-01-15T00:00:01z"', '"2026-01-15 00:00:01Z"', '"2026-01-15T00:00:01"',
             '"2026-01-15T00:00:01-00:00"', '"2026-01-15T00:00:01+01:00"', '"2026-01-15T00:00Z"', '"2026-01-15"',
             '"2026-13-01T00:00:00Z"', '"2026-00-01T00:00:00Z"', '"2026-01-00T00:00:00Z"', '"2100-02-29T00:00:00Z"',
             '"2000-02-29T00:00:00Z"', '"2026-01-15T00:00:01+0000"', '"2026-01-15T00:00:01+00"', '" 2026-01-15T00:00:01Z"']
    for _ in range(count):
        y, mo, d = rng.randint(0, 9999), rng.randint(0, 13), rng.randint(0, 32)
        h, mi, s = rng.randint(0, 24), rng.randint(0, 60), rng.randint(0, 60)
        fraction = rng.choice(["", "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 8)))])
        zone = rng.choice(["Z", "+00:00", "Z", "+00:00", "", "+01:00", "-00:00", "z"])
        texts.append(f'"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{fraction}{zone}"')
    return texts


def check_instants(texts: list[str]) -> int:
    taken_count = 0
    for text in texts:
        taken, micros, _ = _one(text, "1")
        value = orjson.loads(text)
        try:
            expected = to_instants(pa.array([value], pa.string())).cast(pa.int64())[0].as_py()
        except (NotInstants, pa.ArrowInvalid):
            expected = None
        canonical = CANONICAL.fullmatch(value) is not None
        if taken:
            taken_count += 1
            assert micros == expected, text
        else:
            assert expected is None or not canonical, text
    return taken_count


def test_numbers_are_read_as_float_reads_them():
    rng = random.Random(20261207)
    assert check_numbers(number_texts(rng, 3000)) > 1500


def test_instants_are_read_as_the_one_rule_reads_them():
    rng = random.Random(20261208)
    assert check_instants(ts_texts(rng, 2000)) > 300


@pytest.mark.slow
def test_numbers_and_instants_many_more():
    rng = random.Random(7)
    assert check_numbers(number_texts(rng, 60_000)) > 30_000
    assert check_instants(ts_texts(rng, 40_000)) > 5_000


def test_long_mantissas_are_read_as_float_reads_them():
    """16-19 digit mantissas (the long double path and its hand-backs to strtod): next to halfway
    points, ties, 2**53 and the limits; some texts must round onto a halfway point as long doubles."""
    rng = random.Random(20261209)
    texts, landing = long_mantissa_texts(rng, 30_000)
    assert landing > 1000
    assert check_batch(texts) > 20_000


@pytest.mark.slow
def test_long_mantissas_many_more():
    rng = random.Random(25)
    for _ in range(20):
        texts, landing = long_mantissa_texts(rng, 50_000)
        assert landing > 1500
        assert check_batch(texts) > 33_000


def test_spans_in_place_counts_and_forms():
    """Several spans, in place in their lines, compact and spaced; a refused span's values are not
    among the columns; the arguments are checked."""
    good = b'[{"ts":"2026-01-15T00:00:01Z","mid":1,"bid":2,"ask":3,"spread_bps":4},{"ts":"2026-01-15T00:00:02Z","mid":5,"bid":6,"ask":7,"spread_bps":8}]'
    spaced = b'[{"ts": "2026-01-15T00:00:03Z", "mid": 9, "bid": 10, "ask": 11, "spread_bps": 12}]'
    bad = b'[{"ts":"2026-01-15T00:00:01Z","mid":1,"bid":2,"ask":3,"spread_bps":4},{"ts":"x","mid":5,"bid":6,"ask":7,"spread_bps":8}]'
    lines = [b"ab" + good + b"cd", bad, b"x" + spaced]
    taken, counts, columns = parse(lines, [2, 0, 1], [2 + len(good), len(bad), 1 + len(spaced)], KEYS, b"tffff")
    assert taken == b"\x01\x00\x01" and struct.unpack("3q", counts) == (2, 0, 1)
    assert struct.unpack("3d", columns[1]) == (1.0, 5.0, 9.0)
    with pytest.raises(ValueError):
        parse([b"x"], [0], [2], KEYS, b"tffff")
    with pytest.raises(TypeError):
        parse(["x"], [0], [1], KEYS, b"tffff")


ITEM_TYPES = [INSTANT_TYPE, pa.float64(), pa.float64(), pa.float64(), pa.float64()]


def _day_like(spans: int, items: int, seed: int) -> tuple[list[bytes], list[float]]:
    """``spans`` lines of ``items`` items each (every seventh span refused: its last ts is not an
    instant), and the ``mid`` values of the taken ones, in order."""
    rng = random.Random(seed)
    lines, mids = [], []
    for i in range(spans):
        values = [round(rng.uniform(1, 1e5), rng.randint(0, 8)) for _ in range(items)]
        refused = i % 7 == 3
        body = ",".join(f'{{"ts":"2026-01-15T00:{j % 60:02d}:01Z","mid":{v!r},"bid":{v - 1!r},"ask":{v + 1!r},"spread_bps":{j}}}'
                        for j, v in enumerate(values))
        lines.append(("[" + body + (',{"ts":"x","mid":1,"bid":1,"ask":1,"spread_bps":1}' if refused else "") + "]").encode())
        if not refused:
            mids.extend(values)
    return lines, mids


def _parse_all(lines: list[bytes]):
    return parse(lines, [0] * len(lines), [len(line) for line in lines], KEYS, b"tffff")


def _arrays(columns) -> list[pa.Array]:
    """As the native lane builds them (read/native.py)."""
    total = len(columns[0]) // 8
    return [pa.Array.from_buffers(t, total, [None, pa.py_buffer(c)]) for t, c in zip(ITEM_TYPES, columns)]


def test_columns_are_read_only_buffers_handed_over_in_place():
    """The columns are the parser's own blocks: len() in bytes, read-only, wrapped by pyarrow in
    place (the same address each time), empty when nothing is taken; no Values from Python."""
    lines, mids = _day_like(40, 20, 1)
    taken, counts, columns = _parse_all(lines)
    assert all(type(c) is Values for c in columns) and len(columns[1]) == 8 * len(mids)
    view = memoryview(columns[1])
    assert view.readonly and view.nbytes == len(columns[1]) and list(view.cast("d")) == mids
    with pytest.raises(TypeError):
        view[0] = 0
    view.release()
    assert pa.py_buffer(columns[1]).address == pa.py_buffer(columns[1]).address
    assert bytes(columns[2]) == struct.pack(f"{len(mids)}d", *(m - 1 for m in mids))
    _, _, empty = parse([b"[]"], [0], [2], KEYS, b"tffff")
    assert [len(c) for c in empty] == [0] * 5 and bytes(empty[0]) == b"" and pa.py_buffer(empty[0]).size == 0
    with pytest.raises(TypeError):
        Values()


def test_columns_serve_pyarrow_after_the_rest_of_the_result_is_gone():
    """The columns alone (the lines, taken and counts dropped, other parses run since) still read
    right through pyarrow."""
    lines, mids = _day_like(60, 30, 2)
    _, _, columns = _parse_all(lines)
    del lines
    gc.collect()
    for seed in range(20):  # other parses reuse the freed memory
        _parse_all(_day_like(60, 30, 100 + seed)[0])
    arrays = _arrays(columns)
    assert arrays[1].to_pylist() == mids and arrays[3].to_pylist() == [m + 1 for m in mids]


def test_a_column_kept_by_an_arrow_array_outlives_its_python_objects():
    """An array built on a column keeps its block alive: with the parse result, the wrapping
    py_buffer and the lines all deleted, and other parses run since, its values are unchanged."""
    lines, mids = _day_like(60, 30, 3)
    taken, counts, columns = _parse_all(lines)
    struct_array = pa.StructArray.from_arrays(_arrays(columns), names=[k.decode() for k in KEYS])
    expected_ts = struct_array.field(0).cast(pa.int64()).to_pylist()
    del taken, counts, columns, lines
    gc.collect()
    for seed in range(20):
        arrays = _arrays(_parse_all(_day_like(60, 30, 200 + seed)[0])[2])
        del arrays
    assert struct_array.field(1).to_pylist() == mids
    assert struct_array.field(4).to_pylist() == [float(j % 30) for j in range(len(mids))]
    assert struct_array.field(0).cast(pa.int64()).to_pylist() == expected_ts
    assert struct_array.field(0).cast(pa.int64())[61].as_py() == 1768435200_000000 + 1_000000 + 60_000000 * (61 % 30)


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads the RSS from /proc")
def test_parsing_many_times_does_not_grow_memory():
    """~2 MB of columns per parse, wrapped by pyarrow and dropped, 60 times: the RSS after stays
    within 40 MB of the RSS after the first few (a leaked block per parse would add ~120 MB)."""
    lines, _ = _day_like(1000, 50, 4)
    for _ in range(5):
        _arrays(_parse_all(lines)[2])
    gc.collect()
    before = _rss()
    for _ in range(60):
        taken, counts, columns = _parse_all(lines)
        assert sum(len(c) for c in columns) > 1_700_000
        arrays = _arrays(columns)
        del taken, counts, columns, arrays
    gc.collect()
    assert _rss() - before < 40 * 2**20
