"""Security basics: a date is validated before it forms a path or an object key; the credentials
file is readable by its owner only."""

from __future__ import annotations

import os
import stat
from datetime import date

import pytest

from instrumetriq_polars import ArchiveError, export_day, export_days, storage
from instrumetriq_polars.cli import main

BAD_DATES = {
    "..": "expected YYYY-MM-DD",
    "../2026-01-15": "expected YYYY-MM-DD",
    "2026-01-15/..": "expected YYYY-MM-DD",
    "2026-01-15/../../etc": "expected YYYY-MM-DD",
    "/etc/passwd": "expected YYYY-MM-DD",
    "2026\\01\\15": "expected YYYY-MM-DD",
    "2026-1-5": "expected YYYY-MM-DD",
    "20260115": "expected YYYY-MM-DD",
    "2026-01-15\n": "expected YYYY-MM-DD",
    " 2026-01-15": "expected YYYY-MM-DD",
    "2026-01-15T00:00": "expected YYYY-MM-DD",
    "2026-01-1\uff15": "expected YYYY-MM-DD",  # a fullwidth digit
    "": "expected YYYY-MM-DD",
    "2026-02-30": "no such calendar day",
    "2026-13-01": "no such calendar day",
    "0000-01-01": "no such calendar day",
}


def _tree(path):
    return sorted(p.relative_to(path) for p in path.rglob("*")) if path.exists() else []


@pytest.fixture
def archive(tmp_path):
    """An archive root with a day folder in it (never read: the date is refused first)."""
    folder = tmp_path / "archive" / "20260115"
    folder.mkdir(parents=True)
    (folder / "00.jsonl.gz").write_bytes(b"never read")
    return tmp_path / "archive"


@pytest.mark.parametrize("text", list(BAD_DATES), ids=[repr(t) for t in BAD_DATES])
def test_cli_refuses_a_bad_date_before_touching_anything(text, archive, tmp_path, capsys):
    out = tmp_path / "out"
    before = _tree(archive)
    ways = [["--date", text]]
    if text:  # an empty --from-date is "not given": refused as an incomplete range instead
        ways += [["--from-date", text, "--to-date", "2026-01-15"], ["--from-date", "2026-01-15", "--to-date", text]]
    for args in ways:
        code = main(["export", *args, "--archive-path", str(archive), "--out-dir", str(out)])
        _, err = capsys.readouterr()
        assert code == 2 and err == f"error: invalid date {text!r}: {BAD_DATES[text]}\n"
    assert not out.exists() and _tree(archive) == before


@pytest.mark.parametrize("text", ["..", "../x", "2026-01-15/..", "2026-1-5", "2026-02-30", 20260115, None])
def test_api_refuses_a_bad_date_before_touching_anything(text, archive, tmp_path):
    with pytest.raises(ArchiveError, match=r"^invalid date .*: (expected YYYY-MM-DD|no such calendar day)$"):
        export_day(text, str(archive), str(tmp_path / "out"))
    [error] = export_days([text], str(archive), str(tmp_path / "out"))
    assert isinstance(error, ArchiveError)
    assert not (tmp_path / "out").exists()


def test_a_valid_date_forms_the_expected_names(small_archive, tmp_path):
    result = export_day(date(2026, 1, 15), str(small_archive), str(tmp_path / "out"))
    assert result.location == f"{tmp_path}/out/2026-01-15" and result.manifest.archive_day == "20260115"


def test_credentials_file_is_owner_only(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    modes_while_writing = []
    dump = storage.json.dump

    def checking_dump(data, f, **kwargs):  # the mode of the file the secret is about to go into
        modes_while_writing.append(stat.S_IMODE(os.fstat(f.fileno()).st_mode))
        return dump(data, f, **kwargs)

    monkeypatch.setattr(storage.json, "dump", checking_dump)
    old_umask = os.umask(0)  # the most permissive umask: the modes must not depend on it
    try:
        path = storage.save_settings(storage.R2Settings(endpoint="https://example.invalid", access_key_id="id",
                                                        secret_access_key="not-a-real-secret", bucket="b"))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        path.chmod(0o644)  # an old file someone widened is tightened when rewritten
        path.parent.chmod(0o755)  # and so is an existing folder
        stale = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        stale.write_text("left by a killed run")
        stale.chmod(0o666)  # a leftover temporary file is not reused with its mode
        storage.save_settings(storage.R2Settings(endpoint="https://example.invalid", access_key_id="id2",
                                                 secret_access_key="not-a-real-secret", bucket="b"))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
        assert "id2" in path.read_text()
    finally:
        os.umask(old_umask)
    assert modes_while_writing == [0o600, 0o600]  # 0600 before the secret was written, both times


@pytest.mark.parametrize("order", [("secret", "given-secret-5d1a77c0"), ("given-secret-5d1a77c0", "secret")])
def test_a_secret_holding_another_is_masked_whole(order, monkeypatch):
    """Secrets are masked longest first: masking a shorter secret found inside a longer one first
    would leave the longer one's other characters in the text (found when test order changed)."""
    from instrumetriq_polars import storage

    monkeypatch.setattr(storage, "_known_secrets", list(order))  # a list: the order the masking meets them
    assert storage.redact("bad signature for given-secret-5d1a77c0, then secret") == \
        f"bad signature for {storage.MASK}, then {storage.MASK}"
