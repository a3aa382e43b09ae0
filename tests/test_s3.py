"""R2 / S3 against a real S3 server: moto's, in a thread on 127.0.0.1, reset before every test.

Sinking straight to s3://, --upload, refusing / forcing / "already published" (an idempotent
re-run sends nothing, damaged data is refused and --force repairs it), the data size checked
before the manifest is written, reading the archive from s3://, ``storage_options`` through the
API, credentials and ``config``, the server going away between multipart parts, stale multipart
uploads, and that the secret shows up nowhere (``--debug`` tracebacks included). Every CLI run
goes through ``run``, which fails the test if the secret or a traceback appears in stdout or
stderr. What the server received is observed on the server side (``server_requests``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import stat
import traceback
from types import SimpleNamespace

import fsspec
import polars as pl
import pytest
from botocore.exceptions import EndpointConnectionError
from s3fs import S3FileSystem
from s3fs.core import S3File

from instrumetriq_polars import ArchiveError, ConfigError, ConflictError, Manifest, PublishError, export_day, upload_day
from instrumetriq_polars import storage
from instrumetriq_polars.write import publish
from instrumetriq_polars.cli import main
from instrumetriq_polars.write.publish import Destination
from instrumetriq_polars.storage import describe_error, load_settings, r2_storage_options, redact
from instrumetriq_polars.synthetic import write_archive_day

from .conftest import DAY
from .support.s3 import BUCKET, KEY_ID, SECRET, boto_client, run, sending, uploads
from .support.s3 import clear_r2_env as _clear_r2_env, free_port as _free_port

FOLDER = f"{BUCKET}/tier3/daily/{DAY}"
R2_URL = f"s3://{BUCKET}/tier3/daily"
MIB = 2**20


def _shape(request: str) -> str:
    """A request without its query values: "POST /b/k?uploadId=x" -> "POST /b/k?uploadId"."""
    head, _, query = request.partition("?")
    return head + ("?" + "&".join(sorted(part.split("=")[0] for part in query.split("&"))) if query else "")


def keys(fs, prefix: str = FOLDER) -> list[str]:
    fs.invalidate_cache()
    return sorted(path.rsplit("/", 1)[-1] for path in fs.find(prefix))


def published(fs) -> tuple[Manifest, bytes]:
    """The manifest and data on the server; checks they describe each other."""
    fs.invalidate_cache()
    manifest = Manifest.from_json(fs.cat_file(f"{FOLDER}/manifest.json"))
    data = fs.cat_file(f"{FOLDER}/data.parquet")
    assert hashlib.sha256(data).hexdigest() == manifest.parquet_sha256
    assert len(data) == manifest.parquet_size_bytes
    return manifest, data


def export_args(archive, out, *extra: str) -> list[str]:
    return ["export", "--date", str(DAY), "--archive-path", str(archive), "--out-dir", str(out), *extra]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A complete day, 2 entries an hour (48 rows); tests only read it."""
    root = tmp_path_factory.mktemp("archive")
    write_archive_day(root, DAY, entries_per_hour=2)
    return root


@pytest.fixture(scope="module")
def other_archive(tmp_path_factory):
    """The same day with other entries (24 rows): different data."""
    root = tmp_path_factory.mktemp("other_archive")
    write_archive_day(root, DAY, entries_per_hour=1, seed=99)
    return root


# -- R2 compatibility options --------------------------------------------------------------------
def test_r2_options_are_in_effect_on_the_built_filesystem(s3, moto):
    fs, _ = fsspec.core.url_to_fs(f"s3://{BUCKET}", **r2_storage_options(load_settings()))
    fs.connect()
    config = fs.s3.meta.config
    assert fs.fixed_upload_size is True and fs.s3.meta.region_name == "auto"
    assert config.request_checksum_calculation == config.response_checksum_validation == "when_required"
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    # their effects, next to a default s3fs filesystem on the same server
    plain = S3FileSystem(key=KEY_ID, secret=SECRET, endpoint_url=moto.endpoint, skip_instance_cache=True)
    client = boto_client(moto)
    for name, filesystem in (("r2", fs), ("plain", plain)):
        filesystem.pipe_file(f"{BUCKET}/{name}.txt", b"hello")
        with filesystem.open(f"{BUCKET}/{name}.bin", "wb", block_size=5 * MIB) as f:
            for size in (3, 3, 3, 2):  # 11 MiB in uneven writes
                f.write(b"x" * size * MIB)
    head = {name: client.head_object(Bucket=BUCKET, Key=f"{name}.txt", ChecksumMode="ENABLED") for name in ("r2", "plain")}
    assert "ChecksumCRC32" in head["plain"] and not any("Checksum" in k for k in head["r2"])  # no CRC sent
    etags = {name: client.head_object(Bucket=BUCKET, Key=f"{name}.bin")["ETag"] for name in ("r2", "plain")}
    assert etags["r2"].endswith('-3"') and etags["plain"].endswith('-2"')  # 5+5+1 MiB parts vs 6+5


# -- sinking straight to s3:// -------------------------------------------------------------------
def test_export_streams_straight_to_s3(s3, archive, tmp_path):
    result = export_day(DAY, str(archive), R2_URL)
    assert (result.status, result.location) == ("published", f"s3://{FOLDER}")
    assert keys(s3) == ["data.parquet", "manifest.json"]  # no temporary key left
    manifest, data = published(s3)
    assert manifest == result.manifest and manifest.row_count == 48
    assert pl.read_parquet(io.BytesIO(data)).height == 48
    # the same bytes as a local export of the same day
    local = export_day(DAY, str(archive), str(tmp_path / "local"))
    assert local.manifest.parquet_sha256 == manifest.parquet_sha256


def test_refused_export_never_clobbers_the_published_day(s3, moto, archive, other_archive):
    export_day(DAY, str(archive), R2_URL)
    before = published(s3)
    with pytest.raises(ConflictError) as refused:
        export_day(DAY, str(other_archive), R2_URL)
    assert str(refused.value) == (
        f"s3://{FOLDER}/data.parquet and s3://{FOLDER}/manifest.json already published with different data "
        f"(parquet_sha256 {before[0].parquet_sha256[:12]}...)"
    )
    assert refused.value.remedy == "force"
    assert uploads(moto) == []  # its data was a multipart upload of data.parquet, aborted, never committed
    assert published(s3) == before and keys(s3) == ["data.parquet", "manifest.json"]

    again = export_day(DAY, str(archive), R2_URL)
    assert again.status == "already published" and published(s3) == before
    assert keys(s3) == ["data.parquet", "manifest.json"]

    forced = export_day(DAY, str(other_archive), R2_URL, force=True)
    manifest, _ = published(s3)
    assert forced.status == "published" and manifest.parquet_sha256 == forced.manifest.parquet_sha256 != before[0].parquet_sha256
    assert manifest.row_count == 24 and keys(s3) == ["data.parquet", "manifest.json"]


@pytest.mark.parametrize("where", ["local", "s3"])
def test_force_repairs_damaged_published_data(where, s3, archive, tmp_path, capfd):
    """Whether a day is already published is decided from its manifest's sha256 and the size of
    the data object in place (one info request, no download). A damaged data file of another size
    is refused by name; one of the same size cannot be seen that cheaply. --force always rewrites
    the day, which repairs both."""
    if where == "local":
        out, fs = str(tmp_path / "out"), fsspec.filesystem("file")
        data_path = shown = f"{out}/{DAY}/data.parquet"
    else:
        out, fs = R2_URL, s3
        data_path, shown = f"{FOLDER}/data.parquet", f"s3://{FOLDER}/data.parquet"

    def in_place() -> tuple[Manifest, bytes]:
        fs.invalidate_cache()
        return Manifest.from_json(fs.cat_file(data_path.replace("data.parquet", "manifest.json"))), fs.cat_file(data_path)

    def repaired_by_force() -> None:
        code, stdout, _ = run(capfd, *export_args(archive, out, "--force"))
        assert code == 0 and stdout.startswith("2026-01-15: published: 48 rows")
        manifest, data = in_place()
        assert hashlib.sha256(data).hexdigest() == manifest.parquet_sha256 and data == good

    assert export_day(DAY, str(archive), out).status == "published"
    _, good = in_place()
    assert run(capfd, *export_args(archive, out, "--force"))[0] == 0  # force rewrites an intact day too
    assert in_place()[1] == good

    fs.pipe_file(data_path, good[:500] + bytes([good[500] ^ 0x40]) + good[501:])  # one flipped byte
    code, stdout, _ = run(capfd, *export_args(archive, out))
    assert code == 0 and stdout.startswith("2026-01-15: already published: 48 rows")  # same size: not seen
    repaired_by_force()

    for damage, found in ((good[:-10], f"holds {len(good) - 10} bytes"), (None, "is missing")):
        if damage is None:
            fs.rm_file(data_path)
        else:
            fs.pipe_file(data_path, damage)
        code, _, stderr = run(capfd, *export_args(archive, out))
        assert code == 1 and stderr.splitlines()[-1] == (
            f"error: 2026-01-15: the published day is damaged: {shown} {found}, its manifest says {len(good)} bytes; "
            "pass --force to rewrite the day"
        )
        repaired_by_force()
    if where == "s3":
        assert keys(s3) == ["data.parquet", "manifest.json"]
    else:
        assert sorted(os.listdir(f"{out}/{DAY}")) == ["data.parquet", "manifest.json"]


def test_failed_write_aborts_the_multipart_upload(s3, moto):
    options = {**r2_storage_options(load_settings()), "default_block_size": 5 * MIB}
    destination = Destination(R2_URL, DAY, options)
    client = boto_client(moto)

    def write(fileobj):
        fileobj.write(b"p" * 6 * MIB)  # one part is uploaded: a multipart upload is under way
        assert len(client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])) == 1
        raise RuntimeError("the pipeline failed")

    with pytest.raises(RuntimeError, match="the pipeline failed"):
        destination.write_data(write)
    assert client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert keys(s3, BUCKET) == []


def test_data_of_the_wrong_size_in_place_never_gets_a_manifest(s3, archive, other_archive, tmp_path, monkeypatch):
    """The data object's size is checked once it is in place and before the manifest is written:
    an object that ends up short once committed leaves the day unpublished, and no manifest was
    written at any time."""
    export_day(DAY, str(archive), R2_URL)
    fs = fsspec.filesystem("s3", **r2_storage_options(load_settings()))
    assert Destination(R2_URL, DAY, r2_storage_options(load_settings())).fs is fs  # what export_day will use
    commit, pipe_file, manifests_written = S3File.commit, fs.pipe_file, []

    def short_commit(self):
        commit(self)
        if self.path.endswith("/data.parquet"):
            pipe_file(self.path, fs.cat_file(self.path)[:-1])  # the object in place lost its last byte

    def recording_pipe(path, *args, **kwargs):
        if path.endswith("/manifest.json"):
            manifests_written.append(path)
        return pipe_file(path, *args, **kwargs)

    with monkeypatch.context() as patch, pytest.raises(PublishError) as failed:
        patch.setattr(S3File, "commit", short_commit)
        patch.setattr(fs, "pipe_file", recording_pipe)
        export_day(DAY, str(other_archive), R2_URL, force=True)
    written = export_day(DAY, str(other_archive), str(tmp_path / "local")).manifest.parquet_size_bytes
    assert str(failed.value) == (
        f"s3://{FOLDER}/data.parquet holds {written - 1} bytes once in place, {written} were written; "
        "removed it, the day is not published; run the export again"
    )
    assert manifests_written == []  # not even for a moment
    assert keys(s3) == []  # the old manifest was removed (forced), the short object too: unpublished
    assert export_day(DAY, str(other_archive), R2_URL).status == "published"  # the next run publishes
    assert published(s3)[0].row_count == 24


def test_forced_export_dying_mid_stream_leaves_the_published_day(s3, archive, other_archive, monkeypatch):
    export_day(DAY, str(archive), R2_URL)
    before = published(s3)

    def connection_lost(self, data):
        raise EndpointConnectionError(endpoint_url=f"{self.fs.endpoint_url}/{self.path}")

    with monkeypatch.context() as patch:
        patch.setattr(S3File, "write", connection_lost)  # the Parquet stream fails inside Polars' sink
        with pytest.raises(PublishError) as failed:
            export_day(DAY, str(other_archive), R2_URL, force=True)
    assert str(failed.value).startswith(f"could not write s3://{FOLDER}/data.parquet: EndpointConnectionError: Could not connect")
    assert str(failed.value).endswith("; nothing published")
    assert published(s3) == before and keys(s3) == ["data.parquet", "manifest.json"]
    assert export_day(DAY, str(other_archive), R2_URL, force=True).manifest.row_count == published(s3)[0].row_count == 24


def test_stale_temporary_keys_are_removed_only_when_old(s3, archive, monkeypatch):
    """Only the exact temporary names this project writes are removed (once old); keys that merely
    contain ``.tmp-`` are someone else's, however old."""
    foreign = ["notes.tmp-backup", ".data.parquet.tmp-backup", "x.tmp-999999"]
    for name in [".data.parquet.tmp-1-deadbeef", *foreign]:
        s3.pipe_file(f"{FOLDER}/{name}", b"left by a killed run?")
    export_day(DAY, str(archive), R2_URL)
    assert keys(s3) == sorted([".data.parquet.tmp-1-deadbeef", *foreign, "data.parquet", "manifest.json"])  # may be a live run's
    monkeypatch.setattr(publish, "STALE_TEMP_SECONDS", 0)
    assert export_day(DAY, str(archive), R2_URL).status == "already published"
    assert keys(s3) == sorted([*foreign, "data.parquet", "manifest.json"])


# -- --upload --------------------------------------------------------------------------------------
def test_upload_lands_both_objects_under_the_guide_keys(s3, archive, tmp_path, capfd, server_requests):
    out = tmp_path / "out"
    code, stdout, _ = run(capfd, *export_args(archive, out, "--upload"))
    # the data goes up as a multipart upload of data.parquet, committed once the remote manifest
    # allows it (no temporary key, no server-side copy), then the manifest
    assert [_shape(r) for r in sending(server_requests)] == [
        f"POST /{FOLDER}/data.parquet?uploads", f"PUT /{FOLDER}/data.parquet?partNumber&uploadId",
        f"POST /{FOLDER}/data.parquet?uploadId", f"PUT /{FOLDER}/manifest.json"]
    assert code == 0
    lines = stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("2026-01-15: published: 48 rows, 24/24 hours") and lines[0].endswith(f"-> {out}/{DAY}")
    assert lines[1].startswith("2026-01-15: published: 48 rows, 24/24 hours") and lines[1].endswith(f"-> s3://{FOLDER}")
    assert keys(s3, BUCKET) == ["data.parquet", "manifest.json"]
    _, data = published(s3)
    assert data == (out / str(DAY) / "data.parquet").read_bytes()
    assert s3.cat_file(f"{FOLDER}/manifest.json") == (out / str(DAY) / "manifest.json").read_bytes()

    server_requests.clear()
    code, stdout, _ = run(capfd, *export_args(archive, out, "--upload"))
    assert code == 0 and [line.split(":")[1] for line in stdout.splitlines()] == [" already published"] * 2
    # the idempotent re-run (the nightly cron run again) read the manifest and looked at the data
    # object's size; it sent nothing: no temporary key, no upload, no copy
    assert f"GET /{FOLDER}/manifest.json" in server_requests and f"HEAD /{FOLDER}/data.parquet" in server_requests
    assert sending(server_requests) == [] and not [r for r in server_requests if ".tmp-" in r]


def test_upload_refuses_a_different_published_day_unless_forced(s3, archive, other_archive, tmp_path, capfd, server_requests):
    assert run(capfd, *export_args(archive, tmp_path / "a", "--upload"))[0] == 0
    before = published(s3)
    server_requests.clear()
    code, stdout, stderr = run(capfd, *export_args(other_archive, tmp_path / "b", "--upload"))
    assert sending(server_requests) == []  # refused from the remote manifest, before sending anything
    assert code == 1
    assert stdout.startswith("2026-01-15: published: 24 rows")  # the local export went through
    assert stderr.splitlines()[-1] == (
        f"error: 2026-01-15: s3://{FOLDER}/data.parquet and s3://{FOLDER}/manifest.json already published "
        f"with different data (parquet_sha256 {before[0].parquet_sha256[:12]}...); pass --force to replace"
    )
    assert published(s3) == before and keys(s3) == ["data.parquet", "manifest.json"]

    code, stdout, _ = run(capfd, *export_args(other_archive, tmp_path / "b", "--upload", "--force"))
    assert code == 0 and stdout.splitlines()[-1].startswith("2026-01-15: published: 24 rows")
    manifest, data = published(s3)
    assert data == (tmp_path / "b" / str(DAY) / "data.parquet").read_bytes() and manifest.row_count == 24


def test_upload_refuses_a_local_file_changed_since_its_export(s3, moto, archive, tmp_path, capfd):
    out = tmp_path / "out"
    result = export_day(DAY, str(archive), str(out))
    local = out / str(DAY) / "data.parquet"
    good = local.read_bytes()
    local.write_bytes(good[:100] + bytes([good[100] ^ 1]) + good[101:])  # one flipped byte, same size
    with pytest.raises(PublishError) as refused:
        upload_day(result, R2_URL)
    assert str(refused.value) == f"{local} no longer matches its manifest; nothing uploaded; export the day again, replacing it"
    assert keys(s3, BUCKET) == [] and uploads(moto) == []  # the upload was discarded

    with open(local, "ab") as f:  # now of another size too: the local re-export sees the damage
        f.write(b"tampered")
    code, _, stderr = run(capfd, *export_args(archive, out, "--upload"))
    assert code == 1 and stderr.splitlines()[-1] == (
        f"error: 2026-01-15: the published day is damaged: {local} holds {len(good) + 8} bytes, its manifest says "
        f"{len(good)} bytes; pass --force to rewrite the day"
    )
    assert keys(s3, BUCKET) == []

    code, stdout, _ = run(capfd, *export_args(archive, out, "--upload", "--force"))  # repairs, then uploads
    assert code == 0 and [line.split(":")[1] for line in stdout.splitlines()] == [" published"] * 2
    assert local.read_bytes() == good and published(s3)[1] == good


def test_dry_run_overrides_upload_and_needs_no_credentials(s3, archive, tmp_path, monkeypatch, capfd):
    _clear_r2_env(monkeypatch)
    out = tmp_path / "out"
    code, stdout, stderr = run(capfd, *export_args(archive, out, "--upload", "--dry-run"))
    assert code == 0
    assert stderr.splitlines()[0] == "warning: --dry-run writes local files only: --upload ignored"
    assert stdout.startswith("2026-01-15: published: 48 rows") and len(stdout.splitlines()) == 1
    assert sorted(p.name for p in (out / str(DAY)).iterdir()) == ["data.parquet", "manifest.json"]
    assert keys(s3, BUCKET) == []


# -- the archive on s3:// --------------------------------------------------------------------------
def test_archive_read_from_s3(s3, archive, tmp_path, capfd):
    for path in sorted((archive / "20260115").iterdir()):
        s3.put_file(str(path), f"{BUCKET}/archive/20260115/{path.name}")
    code, stdout, stderr = run(capfd, *export_args(f"s3://{BUCKET}/archive", tmp_path / "out"))
    assert code == 0 and stdout.startswith("2026-01-15: published: 48 rows, 24/24 hours")
    assert stderr.startswith(f"exporting 2026-01-15 from s3://{BUCKET}/archive\n")
    from_s3 = Manifest.from_json((tmp_path / "out" / str(DAY) / "manifest.json").read_bytes())
    from_disk = export_day(DAY, str(archive), str(tmp_path / "local")).manifest
    assert from_s3.parquet_sha256 == from_disk.parquet_sha256 and from_s3.source_files == from_disk.source_files

    code, _, stderr = run(capfd, "export", "--date", "2026-01-14", "--archive-path", f"s3://{BUCKET}/archive", "--out-dir", str(tmp_path / "out"))
    assert code == 1 and stderr.splitlines()[-1] == (
        f"error: no archive folder for 2026-01-14: s3://{BUCKET}/archive/20260114 does not exist or is empty"
    )


# -- credentials and config ------------------------------------------------------------------------
def test_missing_credentials_is_one_line_naming_them(home, archive, tmp_path, monkeypatch, capfd):
    how = f"run `python -m instrumetriq_polars config` (stores them in {home}/.config/instrumetriq/r2_credentials.json) or set those environment variables"
    out = tmp_path / "out"
    code, stdout, stderr = run(capfd, *export_args(archive, out, "--upload"))
    assert (code, stdout) == (1, "")
    assert stderr == f"error: R2 settings missing: R2_ENDPOINT, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY; {how}\n"
    assert not out.exists()  # refused before any work

    monkeypatch.setenv("R2_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", SECRET)
    code, _, stderr = run(capfd, *export_args(archive, R2_URL))
    assert code == 1 and stderr == f"error: R2 settings missing: R2_ACCESS_KEY_ID; {how}\n"
    with pytest.raises(ConfigError, match="^R2 settings missing: R2_ACCESS_KEY_ID; "):
        export_day(DAY, str(archive), R2_URL)


def test_config_stores_shows_and_checks_the_settings(s3, moto, monkeypatch, capfd):
    _clear_r2_env(monkeypatch)
    code, stdout, _ = run(capfd, "config", "--endpoint", moto.endpoint, "--access-key-id", KEY_ID, "--secret-access-key", SECRET)
    path = os.path.expanduser("~/.config/instrumetriq/r2_credentials.json")
    assert code == 0 and stdout == f"saved {path} (mode 0600)\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(open(path).read()) == {"endpoint": moto.endpoint, "access_key_id": KEY_ID, "secret_access_key": SECRET, "bucket": BUCKET}

    monkeypatch.setenv("R2_BUCKET", "from-env")
    code, stdout, _ = run(capfd, "config", "--show")
    assert code == 0 and stdout.splitlines() == [
        f"credentials file: {path} (mode 0600)",
        f"endpoint: {moto.endpoint} (file)",
        "access_key_id: ********4711 (file)",
        "secret_access_key: ******** (file)",
        "bucket: from-env (env R2_BUCKET)",
    ]
    code, _, stderr = run(capfd, "config", "--check")
    assert code == 1 and stderr == f"error: bucket from-env at {moto.endpoint} does not exist; create it, or set R2_BUCKET or the stored bucket\n"
    monkeypatch.delenv("R2_BUCKET")
    s3.pipe_file(f"{BUCKET}/tier3/daily/x", b"")
    code, stdout, _ = run(capfd, "config", "--check")
    assert code == 0 and stdout == f"ok: listed bucket {BUCKET} at {moto.endpoint} (1 top-level entries)\n"


def test_config_prompts_with_the_secret_hidden(home, monkeypatch, capfd):
    asked, hidden = [], []
    answers = iter(["https://acct.r2.cloudflarestorage.com", KEY_ID, ""])
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or next(answers))
    monkeypatch.setattr("getpass.getpass", lambda prompt: hidden.append(prompt) or SECRET)
    monkeypatch.setattr("instrumetriq_polars.cli._interactive", lambda: True)  # a terminal (prompts only on one: issue 21)
    code, _, _ = run(capfd, "config")
    assert code == 0
    assert hidden == ["secret access key (hidden) []: "] and len(asked) == 3 and asked[-1] == f"bucket [{BUCKET}]: "
    settings = load_settings()
    assert (settings.endpoint, settings.access_key_id, settings.secret_access_key, settings.bucket) == (
        "https://acct.r2.cloudflarestorage.com", KEY_ID, SECRET, BUCKET)
    # a second run keeps what is not answered, and shows the stored values masked
    answers = iter(["", "", "other-bucket"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: hidden.append(prompt) or "")
    assert run(capfd, "config")[0] == 0
    assert hidden[-1] == "secret access key (hidden) [********]: " and asked[-2] == "access key id [********4711]: "
    assert load_settings().secret_access_key == SECRET and load_settings().bucket == "other-bucket"


# -- the server going away ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_archive(tmp_path_factory):
    """A day whose data file takes two 5 MiB multipart parts (384 rows, about 8 MiB)."""
    root = tmp_path_factory.mktemp("big_archive")
    write_archive_day(root, DAY, entries_per_hour=16, seed=5)
    return root


def _small_parts(patch) -> None:
    """R2 options with 5 MiB parts (the S3 minimum) instead of s3fs's 50 MiB default, so that a
    day of a few MiB is uploaded in several parts."""
    options = storage.r2_storage_options
    patch.setattr(storage, "r2_storage_options", lambda settings=None: {**options(settings), "default_block_size": 5 * MIB})


def _clock_after_initiated(patch, moto, seconds: float) -> None:
    """Set the clock the stale rule reads to ``seconds`` after the uploads were initiated. (moto
    reports one fixed ``Initiated`` date for every multipart upload, 2010-11-10T20:48:33Z, so the
    age rule is tested against that date rather than against the wall clock.)"""
    [initiated] = {u["Initiated"] for u in boto_client(moto).list_multipart_uploads(Bucket=BUCKET)["Uploads"]}
    patch.setattr(publish, "time", SimpleNamespace(time=lambda: initiated.timestamp() + seconds))


def test_server_stopped_between_multipart_parts_publishes_nothing_and_a_rerun_succeeds(s3, moto, big_archive, tmp_path, monkeypatch, capfd):
    out = tmp_path / "out"
    upload, parts_on_server = S3File._upload_chunk, []

    def stop_between_parts(self, final=False):
        if self.parts and not parts_on_server:  # a part is on the server: stop before the next one
            parts_on_server.append(len(self.parts))
            moto.stop()
        return upload(self, final)

    with monkeypatch.context() as patch:
        _small_parts(patch)
        patch.setattr(S3File, "_upload_chunk", stop_between_parts)
        code, stdout, stderr = run(capfd, *export_args(big_archive, out, "--upload"))
    moto.start()
    S3FileSystem.clear_instance_cache()  # a re-run is a new process: no filesystem built while patched
    size = Manifest.from_json((out / str(DAY) / "manifest.json").read_bytes()).parquet_size_bytes
    assert size > 5 * MIB and parts_on_server == [1]  # really stopped between part 1 and part 2
    assert code == 1 and stdout.startswith("2026-01-15: published: 384 rows")  # the local export
    [error] = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert error == stderr.splitlines()[-1]
    assert error.startswith(f"error: 2026-01-15: could not write s3://{FOLDER}/data.parquet: EndpointConnectionError: "
                            "Could not connect to the endpoint URL") and error.endswith("; nothing published")
    assert keys(s3, BUCKET) == []  # no manifest, no data.parquet, no temporary key
    # the abort of the multipart upload failed too (the server was gone): it is left on the server
    assert uploads(moto, f"tier3/daily/{DAY}/") == [left := f"tier3/daily/{DAY}/data.parquet"]

    with monkeypatch.context() as patch:
        _small_parts(patch)
        _clock_after_initiated(patch, moto, 60)
        code, stdout, stderr = run(capfd, *export_args(big_archive, out, "--upload"))
        assert code == 0, stderr
        assert stdout.splitlines()[-1].startswith("2026-01-15: published: 384 rows")
        assert keys(s3, BUCKET) == ["data.parquet", "manifest.json"]
        _, data = published(s3)
        assert data == (out / str(DAY) / "data.parquet").read_bytes()
        assert uploads(moto) == [left]  # a minute old: it may be a live run's

        _clock_after_initiated(patch, moto, publish.STALE_TEMP_SECONDS + 60)
        code, stdout, _ = run(capfd, *export_args(big_archive, out, "--upload"))
    assert code == 0 and stdout.splitlines()[-1].startswith("2026-01-15: already published: 384 rows")
    assert uploads(moto) == []  # the stale multipart upload was aborted


def _stop_before_manifest(monkeypatch, moto):
    pipe = S3FileSystem._pipe_file

    async def stop_then_pipe(self, path, data, *args, **kwargs):
        if path.endswith("manifest.json"):
            moto.stop()
        return await pipe(self, path, data, *args, **kwargs)

    monkeypatch.setattr(S3FileSystem, "_pipe_file", stop_then_pipe)
    return f"error: 2026-01-15: could not publish s3://{FOLDER}: EndpointConnectionError: Could not connect to the endpoint URL"


def test_server_stopped_before_the_manifest_publishes_nothing_and_a_rerun_succeeds(s3, moto, archive, tmp_path, monkeypatch, capfd):
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        expected = _stop_before_manifest(patch, moto)
        code, _, stderr = run(capfd, *export_args(archive, out, "--upload"))
    moto.start()
    S3FileSystem.clear_instance_cache()  # a re-run is a new process: no filesystem built while patched
    assert code == 1
    assert stderr.splitlines()[-1].startswith(expected)
    assert "manifest.json" not in keys(s3, BUCKET)
    assert not [k for k in keys(s3, BUCKET) if ".tmp-" in k]  # nothing half-made lingers either

    code, stdout, stderr = run(capfd, *export_args(archive, out, "--upload"))
    assert code == 0, stderr
    assert stdout.splitlines()[-1].startswith("2026-01-15: published: 48 rows")
    assert keys(s3, BUCKET) == ["data.parquet", "manifest.json"]
    _, data = published(s3)
    assert data == (out / str(DAY) / "data.parquet").read_bytes()


def test_stale_multipart_uploads_under_the_day_are_aborted_only_when_old(s3, moto, archive, monkeypatch):
    client = boto_client(moto)
    day_upload = f"tier3/daily/{DAY}/.data.parquet.tmp-1-deadbeef"
    other_day = "tier3/daily/2026-01-14/.data.parquet.tmp-1-cafef00d"
    foreign = f"tier3/daily/{DAY}/notes.bin"  # not a name this project writes: never aborted
    for key in (day_upload, other_day, foreign):
        upload_id = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
        client.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=1, Body=b"p" * 5 * MIB)
    _clock_after_initiated(monkeypatch, moto, publish.STALE_TEMP_SECONDS - 60)
    export_day(DAY, str(archive), R2_URL)
    assert sorted(uploads(moto)) == sorted([day_upload, other_day, foreign])  # not 6 hours old: may be live runs'
    _clock_after_initiated(monkeypatch, moto, publish.STALE_TEMP_SECONDS + 60)
    destination = Destination(R2_URL, DAY, r2_storage_options(load_settings()))
    assert destination.clean_stale_temps() == [f"{BUCKET}/{day_upload} (unfinished upload)"]
    assert sorted(uploads(moto)) == sorted([other_day, foreign])  # another day's prefix is that day's business
    assert keys(s3) == ["data.parquet", "manifest.json"]


# -- secrets -------------------------------------------------------------------------------------------
def test_secret_never_shown(s3, archive, other_archive, tmp_path, monkeypatch, capfd, caplog):
    settings = load_settings()
    assert SECRET not in repr(settings) and "secret_access_key='********'" in repr(settings)
    assert describe_error(OSError(f"denied for {SECRET}")) == "OSError: denied for ********"

    caplog.set_level(logging.DEBUG)  # botocore, s3fs and fsspec log their requests at DEBUG
    assert run(capfd, *export_args(archive, tmp_path / "out", "--upload"))[0] == 0
    assert run(capfd, *export_args(other_archive, R2_URL))[0] == 1
    with pytest.raises(PublishError) as refused:
        export_day(DAY, str(other_archive), R2_URL)
    assert SECRET not in str(refused.value) + repr(refused.value)
    assert run(capfd, "config", "--show")[0] == 0
    assert run(capfd, "config", "--check")[0] == 0
    assert SECRET not in caplog.text and "put_object" in caplog.text  # the upload was logged
    for manifest in (s3.cat_file(f"{FOLDER}/manifest.json"), (tmp_path / "out" / str(DAY) / "manifest.json").read_bytes()):
        assert SECRET.encode() not in manifest

    monkeypatch.setenv("R2_ENDPOINT", f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    S3FileSystem.clear_instance_cache()
    code, _, stderr = run(capfd, "config", "--check")
    assert code == 1 and stderr.startswith("error: cannot list bucket instrumetriq-datasets at http://127.0.0.1:")


def test_debug_traceback_masks_the_secret_in_the_whole_chain(s3, archive, monkeypatch, capfd):
    """--debug prints the traceback of an expected failure with its chain (``raise PublishError(...)
    from exc``: the backend's own exception, its message, notes and frames, then ours). A secret in
    any of that text is masked."""
    pipe = S3FileSystem._pipe_file
    refused = f"AccessDenied: request signed with {SECRET} was refused"

    async def refuse_the_manifest(self, path, data, *args, **kwargs):
        if path.endswith("manifest.json"):
            error = PermissionError(refused)
            error.add_note(f"credentials in use: {KEY_ID}/{SECRET}")
            raise error
        return await pipe(self, path, data, *args, **kwargs)

    monkeypatch.setattr(S3FileSystem, "_pipe_file", refuse_the_manifest)
    masked = refused.replace(SECRET, "********")
    for argv in (["--debug", *export_args(archive, R2_URL)], [*export_args(archive, R2_URL), "--debug"]):
        code = main(argv)
        out, err = capfd.readouterr()
        assert code == 1 and SECRET not in out + err
        err = err[err.index("Traceback (most recent call last):\n"):]  # after the progress lines
        chain = err.split("\nThe above exception was the direct cause of the following exception:\n\n")
        assert len(chain) == 2  # the backend's exception, then ours
        assert f"\nPermissionError: {masked}\ncredentials in use: {KEY_ID}/********\n" in chain[0]
        assert 'File "' in chain[0] and "refuse_the_manifest" in chain[0]  # its frames are shown
        ours = f"could not publish s3://{FOLDER}: PermissionError: {masked}"
        assert f"\ninstrumetriq_polars.errors.StorageError: {ours}\n" in chain[1]
        assert err.splitlines()[-1] == f"error: 2026-01-15: {ours}"
        assert "manifest.json" not in keys(s3)
    # the same traceback unmasked would have shown it: the masking is what keeps it out
    try:
        export_day(DAY, str(archive), R2_URL)
    except PublishError as exc:
        text = "".join(traceback.format_exception(exc))
    assert SECRET in text and SECRET not in redact(text)


def test_storage_options_given_to_the_api_are_used_as_given(s3, moto, archive, tmp_path, monkeypatch):
    """export_day(storage_options=, archive_storage_options=) and upload_day(storage_options=) use
    the fsspec options they are given, not the R2 settings (which here point at nothing)."""
    for path in sorted((archive / "20260115").iterdir()):
        s3.put_file(str(path), f"{BUCKET}/archive/20260115/{path.name}")
    monkeypatch.setenv("R2_ENDPOINT", f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    given_secret = "given-secret-5d1a77c0"
    options = {"key": "given-key-id", "secret": given_secret, "endpoint_url": moto.endpoint,
               "client_kwargs": {"region_name": "us-east-1"}}

    streamed = export_day(DAY, f"s3://{BUCKET}/archive", f"s3://{BUCKET}/api/daily",
                          storage_options=options, archive_storage_options=options)
    assert (streamed.status, streamed.location) == ("published", f"s3://{BUCKET}/api/daily/{DAY}")
    assert keys(s3, f"{BUCKET}/api/daily/{DAY}") == ["data.parquet", "manifest.json"]
    local = export_day(DAY, f"s3://{BUCKET}/archive", str(tmp_path / "out"), archive_storage_options=options)
    assert local.manifest.parquet_sha256 == streamed.manifest.parquet_sha256 == export_day(DAY, str(archive), str(tmp_path / "disk")).manifest.parquet_sha256

    uploaded = upload_day(local, R2_URL, storage_options=options)
    assert (uploaded.status, uploaded.location) == ("published", f"s3://{FOLDER}")
    assert published(s3)[0].parquet_sha256 == local.manifest.parquet_sha256
    assert upload_day(local, R2_URL, storage_options=options).status == "already published"

    # without them the R2 settings are used, and those point at nothing
    with pytest.raises(PublishError, match=r"^could not list s3://.*: EndpointConnectionError: Could not connect"):
        upload_day(local, R2_URL, force=True)
    with pytest.raises(ArchiveError, match=rf"^could not list s3://{BUCKET}/archive/20260115: EndpointConnectionError: Could not connect"):
        export_day(DAY, f"s3://{BUCKET}/archive", str(tmp_path / "again"))
    # a secret given in storage_options is masked in error text like the configured one
    assert describe_error(OSError(f"bad signature for {given_secret}")) == "OSError: bad signature for ********"
