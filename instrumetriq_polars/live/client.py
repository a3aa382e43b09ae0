"""A Python client of ``live serve``: ``subscribe`` yields the feed's entries in ``seq`` order,
with no gap and no duplicate, across reconnects and server restarts.

It reads ``/v1/stream`` and remembers the last ``seq`` it yielded; on a dropped connection, an
``overflow`` event (it read too slowly) or a read timeout (no heartbeat), it reconnects with
``Last-Event-ID``. If an event's ``seq`` is not the next one, the missing entries are read from
``/v1/entries`` first. With ``symbols``, other symbols' seqs are skipped, so the gap check reads
the entries in between and keeps the wanted ones. Standard library HTTP only (no extra needed).
"""

from __future__ import annotations

import http.client
import time
import urllib.parse
from collections.abc import Iterator

import orjson

from ..errors import LiveError


def subscribe(url: str, *, after: int | None = None, fields="tier1", symbols=None, as_polars: bool = False,
              token: str | None = None, timeout: float = 45.0, retry_s: float = 1.0,
              max_retries: int | None = None) -> Iterator:
    """Entries of the server at ``url`` after ``after`` (None: from now on), each a dict (the tier1
    row, or ``fields``: a list of names), or with ``as_polars`` a one-row ``pl.DataFrame`` of the
    declared types. ``symbols``: only those. Reconnects forever unless ``max_retries`` is given
    (then ``LiveError`` after that many failed attempts in a row). ``LiveError`` at once for a
    cursor the server no longer keeps (410) or never had (409: another state folder), a refused
    token (401) or a bad request (400)."""
    base = url.rstrip("/")
    names = None if fields in (None, "tier1") else list(fields)
    if names is not None and "seq" not in names:
        names.insert(0, "seq")
    wanted = set(symbols) if symbols else None
    last = after
    failures = 0
    while True:
        try:
            for seq, row in _connect(base, last, names, wanted, token, timeout):
                failures = 0
                if seq is None:          # the hello event: where the stream starts
                    last = row if last is None else last
                    continue
                if last is not None and seq <= last:
                    continue
                if last is not None and seq > last + 1:
                    for fill_seq, fill_row in _fill(base, last, seq - 1, names, wanted, token, timeout):
                        last = fill_seq
                        if fill_row is not None:
                            yield _out(fill_row, names, as_polars)
                last = seq
                yield _out(row, names, as_polars)
        except (OSError, http.client.HTTPException, _Reconnect) as exc:
            failures += 0 if isinstance(exc, _Reconnect) else 1
            if max_retries is not None and failures > max_retries:
                raise LiveError(f"{base}: cannot read the stream ({exc}) after {max_retries} retries") from None
            time.sleep(retry_s if failures else 0)


class _Reconnect(Exception):
    """The server asked the client to reconnect (overflow), or the stream ended."""


def _request(base: str, path: str, params: dict, headers: dict, timeout: float):
    parts = urllib.parse.urlsplit(base)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    connection.request("GET", f"{parts.path}{path}" + (f"?{query}" if query else ""), headers=headers)
    response = connection.getresponse()
    if response.status in (400, 401, 403, 409, 410):
        body = response.read()
        try:
            detail = orjson.loads(body)
        except orjson.JSONDecodeError:
            detail = {"error": body.decode(errors="replace")}
        connection.close()
        extra = f" (oldest kept: {detail['oldest_seq']})" if "oldest_seq" in detail else ""
        raise LiveError(f"{base}{path}: HTTP {response.status}: {detail.get('error')}{extra}")
    if response.status != 200:
        connection.close()
        raise http.client.HTTPException(f"HTTP {response.status}")
    return connection, response


def _headers(token: str | None, last: int | None) -> dict:
    headers = {"Accept": "text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if last is not None:
        headers["Last-Event-ID"] = str(last)
    return headers


def _connect(base, last, names, wanted, token, timeout):
    """(seq, row) per entry event; (None, resume_after) for the hello event."""
    params = {"fields": ",".join(names) if names else None, "symbols": ",".join(sorted(wanted)) if wanted else None}
    connection, response = _request(base, "/v1/stream", params, _headers(token, last), timeout)
    try:
        for name, ident, data in _events(response):
            if name == "entry" and ident is not None:
                yield int(ident), orjson.loads(data)
            elif name == "hello":
                yield None, orjson.loads(data)["resume_after"]
            elif name == "overflow":
                raise _Reconnect("overflow")
        raise _Reconnect("the stream ended")
    finally:
        connection.close()


def _events(response) -> Iterator[tuple[str, str | None, bytes]]:
    """(event name, id, data) of each Server-Sent Event; comments are skipped."""
    name, ident, data = "message", None, []
    while True:
        line = response.readline()
        if not line:
            return
        line = line.rstrip(b"\r\n")
        if not line:
            if data:
                yield name, ident, b"\n".join(data)
            name, ident, data = "message", None, []
            continue
        if line.startswith(b":"):
            continue
        key, _, value = line.partition(b":")
        value = value[1:] if value.startswith(b" ") else value
        if key == b"event":
            name = value.decode()
        elif key == b"id":
            ident = value.decode()
        elif key == b"data":
            data.append(value)


def _fill(base, last, upto, names, wanted, token, timeout):
    """The entries after ``last`` up to ``upto`` from ``/v1/entries`` (kept: ``wanted`` symbols)."""
    while last < upto:
        params = {"after": last, "limit": min(upto - last, 10_000), "format": "jsonl"}
        connection, response = _request(base, "/v1/entries", params, _headers(token, None), timeout)
        try:
            lines = [orjson.loads(line) for line in response.read().splitlines() if line]
        finally:
            connection.close()
        if not lines:
            raise _Reconnect(f"entries {last + 1}..{upto} are not readable yet")
        for row in lines:
            if row["seq"] > upto:
                return
            last = row["seq"]
            if wanted is None or row.get("symbol") in wanted:
                yield last, {n: row.get(n) for n in names} if names else row
            else:
                yield last, None


def _out(row, names, as_polars):
    if not as_polars:
        return row
    from .tier1 import tier1_frame
    return tier1_frame([row], list(row))
