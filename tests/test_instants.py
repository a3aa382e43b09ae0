"""The one rule for instants (instants.py) against this test suite's own reading of the documented
rule (``support.roundtrip.oracle_instant``): the same answer for every text, value by value and for a whole
column at once."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instrumetriq_polars.instants import NotInstants, are_instants, as_instant, parse_instant, parse_instants, to_instants

from .support.roundtrip import oracle_instant

UTC = timezone.utc

#: Every spelling the real archive uses, and the ones DESIGN.md and the issue name, with the instant.
ACCEPTED = {
    "2026-01-01T17:54:42.435Z": datetime(2026, 1, 1, 17, 54, 42, 435000, UTC),
    "2026-01-01T17:55:24.839582Z": datetime(2026, 1, 1, 17, 55, 24, 839582, UTC),
    "2026-01-01T17:55:31.818055+00:00": datetime(2026, 1, 1, 17, 55, 31, 818055, UTC),
    "2026-01-01T17:55:31Z": datetime(2026, 1, 1, 17, 55, 31, tzinfo=UTC),
    "2026-01-01T02:00:00+02:00": datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
    "2026-01-01T00:00:00-0530": datetime(2026, 1, 1, 5, 30, tzinfo=UTC),
    "2026-01-01T00:00:00+23": datetime(2025, 12, 31, 1, 0, tzinfo=UTC),
    "2026-01-01 12:00:00Z": datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
    "2026-01-01T12:00:00": datetime(2026, 1, 1, 12, 0, tzinfo=UTC),  # no offset: UTC
    "2026-01-01 12:00:00.5": datetime(2026, 1, 1, 12, 0, 0, 500000, UTC),
    "2026-01-01T12:30Z": datetime(2026, 1, 1, 12, 30, tzinfo=UTC),
    "2026-01-01T12": datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
    "2024-02-29T00:00:00Z": datetime(2024, 2, 29, tzinfo=UTC),
    "0001-01-01T00:00:00Z": datetime(1, 1, 1, tzinfo=UTC),
    "9999-12-31T23:59:59.999999Z": datetime(9999, 12, 31, 23, 59, 59, 999999, UTC),
}
REFUSED = [
    "2026-01-01T00:00:00.1234567Z",  # 7 fraction digits: they would be cut
    "2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T23:59:60Z",
    "2026-01-01", "2026-01-01Z", "20260101T000000Z", "2026-W01", "2026-1-01T00:00:00Z", "2026-01-01T0:00:00Z",
    "2026-01-01t00:00:00Z", "2026-01-01T00:00:00z", " 2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z ",
    "2026-01-01T00:00:00 Z", "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00,5Z", "2026-01-01T00:00:00+24:00",
    "2026-01-01T00:00:00+00:60", "2026-01-01T00:00:00+2:00", "2026-01-01T00:00:00+00:00:00",
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",  # outside the years 0001-9999 once in UTC
    "٢٠٢٦-01-01T00:00:00Z", "not-a-time", "", "2026-01-01T00:00:00\x00Z",
]


@pytest.mark.parametrize("text, instant", list(ACCEPTED.items()))
def test_accepted_spellings_are_their_instant(text, instant):
    assert parse_instant(text) == instant == oracle_instant(text)
    assert parse_instant(text).tzinfo is not None


@pytest.mark.parametrize("text", REFUSED)
def test_refused_texts_are_no_instant(text):
    assert parse_instant(text) is None and oracle_instant(text) is None
    with pytest.raises(NotInstants):
        to_instants(pa.array([next(iter(ACCEPTED)), text]))


@pytest.mark.parametrize("value", [None, 1767225600, 1.5, True, ["2026-01-01T00:00:00Z"], {"ts": "x"}, "\ud800"])
def test_values_that_are_not_text_are_no_instant(value):
    assert parse_instant(value) is None


def test_a_column_is_read_value_by_value():
    """A column mixing offsets, no offset and NULL: each value as it is on its own."""
    texts = [*ACCEPTED, None]
    assert to_instants(pa.array(texts)).to_pylist() == [*ACCEPTED.values(), None]
    assert parse_instants([*texts, "nope", 7]) == [*ACCEPTED.values(), None, None, None]
    assert are_instants(list(ACCEPTED)) and not are_instants([*ACCEPTED, "nope"]) and are_instants([])


def test_typed_values_are_instants_as_they_are():
    naive, aware = datetime(2026, 1, 1, 12), datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert as_instant(naive) == as_instant(aware) == aware == as_instant("2026-01-01T12:00:00Z")


DIGITS = st.text("0123456789", min_size=1, max_size=3)
NEAR = st.builds(
    "{}-{}-{}{}{}{}{}{}{}".format,
    st.sampled_from(["2026", "0001", "0000", "9999", "1970", "2024", "20260"]),
    st.sampled_from(["01", "02", "12", "13", "00", "1"]),
    st.sampled_from(["01", "28", "29", "30", "31", "32", "00"]),
    st.sampled_from(["T", " ", "t", "", "TT"]),
    st.sampled_from(["00", "12", "23", "24", "7", ""]),
    st.sampled_from(["", ":00", ":59", ":60", ":5", "00"]),
    st.sampled_from(["", ":00", ":59", ":60", ":1"]),
    st.one_of(st.just(""), DIGITS.map(lambda d: "." + d), st.text("0123456789", min_size=6, max_size=8).map(lambda d: "." + d)),
    st.sampled_from(["", "Z", "z", "+00:00", "-00:00", "+02:00", "-05:30", "+0530", "+23", "+24", "+00:60", "+2", " Z", "+00:00:00"]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(NEAR | st.text(max_size=12), min_size=1, max_size=6))
def test_the_rule_is_the_documented_one(texts):
    """Near-misses of every part of the grammar: the exporter's rule is the documented one, value
    by value, and a column is read as its values are."""
    expected = [oracle_instant(text) for text in texts]
    assert [parse_instant(text) for text in texts] == expected
    assert parse_instants(texts) == expected
    if all(instant is not None for instant in expected):
        assert to_instants(pa.array(texts)).to_pylist() == expected
    else:
        with pytest.raises(NotInstants):
            to_instants(pa.array(texts))


def test_the_year_bounds_are_the_first_and_last_microsecond_python_can_hold():
    """The bounds are plain integers (a tz-aware scalar at import made pyarrow import pandas)."""
    from instrumetriq_polars import instants

    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    first = datetime(1, 1, 1, tzinfo=timezone.utc) - epoch
    last = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc) - epoch
    assert instants._FIRST_US == (first.days * 86400 + first.seconds) * 10**6 + first.microseconds
    assert instants._LAST_US == (last.days * 86400 + last.seconds) * 10**6 + last.microseconds
    assert parse_instant("0001-01-01T00:00:00Z") == datetime(1, 1, 1, tzinfo=timezone.utc)
    assert parse_instant("9999-12-31T23:59:59.999999Z") is not None
    assert parse_instant("9999-12-31T23:59:59.999999-00:01") is None
