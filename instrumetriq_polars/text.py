"""Text from the input that reaches the manifest, a message or ``_extra``.

Two things can go wrong with such text. It may not be encodable as UTF-8: Python's ``json.loads``
keeps a lone surrogate such as ``"\\ud800"``, and a file name that is not UTF-8 comes back from
the file system with each undecodable byte as a surrogate (``\\udcff`` for byte 0xff). Writing
either as UTF-8 raises ``UnicodeEncodeError``: the manifest could not be written. And in a
message it may hold a newline or another control character, which would break the one-line
``error: ...``/``warning: ...`` lines the cron log is read by.
"""

from __future__ import annotations


def representable(text: str) -> str:
    """``text`` itself when UTF-8 can encode it; otherwise each lone surrogate is written out as
    the escape ``\\udXXX`` (six characters), so the text can be written and its reader sees where
    the original held something unencodable."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return "".join(_escape(c) if _is_surrogate(c) else c for c in text)
    return text


def file_name(name: str) -> str:
    """A name listed from a file system, writable: the bytes of a name that is not UTF-8 are shown
    as ``\\xff`` escapes (as ``ls -b`` does), other unencodable characters as in ``representable``."""
    try:
        name.encode()
    except UnicodeEncodeError:
        try:
            return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a surrogate that does not stand for a byte
            return representable(name)
    return name


def one_line(text: str) -> str:
    """``text`` for a one-line message: writable, and every character that is not printable
    (newline, tab and the other control, format and separator characters) written as an escape."""
    if text.isprintable():  # the usual case; lone surrogates are not printable
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _is_surrogate(c: str) -> bool:
    return "\ud800" <= c <= "\udfff"


_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(c: str) -> str:
    if c in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[c]
    code = ord(c)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
