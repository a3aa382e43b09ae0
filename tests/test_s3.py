"""R2 / S3 against a real S3 server: moto's, in a thread on 127.0.0.1, reset before every test.

Sinking straight to s3://, --upload, refusing / forcing / "already published", reading the archive
from s3://, credentials and ``config``, the server going away mid-run, and that the secret shows
up nowhere. Every CLI run goes through ``run``, which fails the test if the secret or a traceback
appears in stdout or stderr.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import socket
import stat

import boto3
import fsspec
import polars as pl
import pytest
import requests
from botocore.exceptions import EndpointConnectionError
from moto.server import ThreadedMotoServer
from s3fs import S3FileSystem
from s3fs.core import S3File

from instrumetriq_polars import ConfigError, Manifest, PublishError, export_day
from instrumetriq_polars import sink
from instrumetriq_polars.cli import main
from instrumetriq_polars.sink import DayDestination
from instrumetriq_polars.storage import describe_error, load_settings, r2_storage_options
from instrumetriq_polars.synthetic import write_archive_day

from .conftest import DAY

BUCKET = "instrumetriq-datasets"
SECRET = "s3cr3t-NEVER-SHOWN-9f2c1e7a"
KEY_ID = "test-key-id-4711"
FOLDER = f"{BUCKET}/tier3/daily/{DAY}"
R2_URL = f"s3://{BUCKET}/tier3/daily"
MIB = 2**20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoS3:
    """A moto S3 server on 127.0.0.1 that a test may stop and start again (state survives)."""

    def __init__(self) -> None:
        self.endpoint = f"http://127.0.0.1:{_free_port()}"
        self._server: ThreadedMotoServer | None = None

    def start(self) -> None:
        if self._server is None:
            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(self.endpoint.rsplit(":", 1)[1]), verbose=False)
            self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


@pytest.fixture(scope="module")
def moto():
    werkzeug = logging.getLogger("werkzeug")
    level, werkzeug.level = werkzeug.level, logging.ERROR  # no request log lines in captured output
    server = MotoS3()
    server.start()
    yield server
    server.stop()
    werkzeug.setLevel(level)


def _clear_r2_env(monkeypatch) -> None:
    for var in ("R2_ENDPOINT", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_BUCKET",
                "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty $HOME and no R2/AWS settings in the environment."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    _clear_r2_env(monkeypatch)
    return home


@pytest.fixture
def s3(moto, home, monkeypatch):
    """A fresh server holding an empty bucket; R2 settings (dummy credentials) in the environment.
    Returns an s3fs filesystem for looking at the bucket."""
    moto.start()
    requests.post(f"{moto.endpoint}/moto-api/reset", timeout=10).raise_for_status()
    S3FileSystem.clear_instance_cache()
    monkeypatch.setenv("R2_ENDPOINT", moto.endpoint)
    monkeypatch.setenv("R2_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", SECRET)
    fs = S3FileSystem(key=KEY_ID, secret=SECRET, endpoint_url=moto.endpoint, skip_instance_cache=True)
    fs.mkdir(BUCKET)
    yield fs
    S3FileSystem.clear_instance_cache()


def boto_client(moto):
    return boto3.client("s3", endpoint_url=moto.endpoint, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name="us-east-1")


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


def run(capfd, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capfd.readouterr()
    assert SECRET not in out + err
    assert "Traceback" not in err
    return code, out, err


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


def test_refused_export_never_clobbers_the_published_day(s3, archive, other_archive):
    export_day(DAY, str(archive), R2_URL)
    before = published(s3)
    with pytest.raises(PublishError) as refused:
        export_day(DAY, str(other_archive), R2_URL)
    assert str(refused.value) == (
        f"s3://{FOLDER}/data.parquet and s3://{FOLDER}/manifest.json already published with different data "
        f"(parquet_sha256 {before[0].parquet_sha256[:12]}...); pass --force to replace"
    )
    assert published(s3) == before and keys(s3) == ["data.parquet", "manifest.json"]

    again = export_day(DAY, str(archive), R2_URL)
    assert again.status == "already published" and published(s3) == before
    assert keys(s3) == ["data.parquet", "manifest.json"]

    forced = export_day(DAY, str(other_archive), R2_URL, force=True)
    manifest, _ = published(s3)
    assert forced.status == "published" and manifest.parquet_sha256 == forced.manifest.parquet_sha256 != before[0].parquet_sha256
    assert manifest.row_count == 24 and keys(s3) == ["data.parquet", "manifest.json"]


def test_failed_write_aborts_the_multipart_upload(s3, moto):
    options = {**r2_storage_options(load_settings()), "default_block_size": 5 * MIB}
    destination = DayDestination(R2_URL, DAY, options)
    client = boto_client(moto)

    def write(fileobj):
        fileobj.write(b"p" * 6 * MIB)  # one part is uploaded: a multipart upload is under way
        assert len(client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])) == 1
        raise RuntimeError("the pipeline failed")

    with pytest.raises(RuntimeError, match="the pipeline failed"):
        destination.write_data(write)
    assert client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert keys(s3, BUCKET) == []


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
    stale = f"{FOLDER}/.data.parquet.tmp-1-deadbeef"
    s3.pipe_file(stale, b"left by a killed run")
    export_day(DAY, str(archive), R2_URL)
    assert keys(s3) == [".data.parquet.tmp-1-deadbeef", "data.parquet", "manifest.json"]  # may be a live run's
    monkeypatch.setattr(sink, "STALE_TEMP_SECONDS", 0)
    assert export_day(DAY, str(archive), R2_URL).status == "already published"
    assert keys(s3) == ["data.parquet", "manifest.json"]


# -- --upload --------------------------------------------------------------------------------------
def test_upload_lands_both_objects_under_the_guide_keys(s3, archive, tmp_path, capfd):
    out = tmp_path / "out"
    code, stdout, _ = run(capfd, *export_args(archive, out, "--upload"))
    assert code == 0
    lines = stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("2026-01-15: published: 48 rows, 24/24 hours") and lines[0].endswith(f"-> {out}/{DAY}")
    assert lines[1].startswith("2026-01-15: published: 48 rows, 24/24 hours") and lines[1].endswith(f"-> s3://{FOLDER}")
    assert keys(s3, BUCKET) == ["data.parquet", "manifest.json"]
    _, data = published(s3)
    assert data == (out / str(DAY) / "data.parquet").read_bytes()
    assert s3.cat_file(f"{FOLDER}/manifest.json") == (out / str(DAY) / "manifest.json").read_bytes()

    code, stdout, _ = run(capfd, *export_args(archive, out, "--upload"))
    assert code == 0 and [line.split(":")[1] for line in stdout.splitlines()] == [" already published"] * 2


def test_upload_refuses_a_different_published_day_unless_forced(s3, archive, other_archive, tmp_path, capfd):
    assert run(capfd, *export_args(archive, tmp_path / "a", "--upload"))[0] == 0
    before = published(s3)
    code, stdout, stderr = run(capfd, *export_args(other_archive, tmp_path / "b", "--upload"))
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


def test_upload_refuses_a_local_file_changed_since_its_export(s3, archive, tmp_path, capfd):
    out = tmp_path / "out"
    assert run(capfd, *export_args(archive, out))[0] == 0
    with open(out / str(DAY) / "data.parquet", "ab") as f:
        f.write(b"tampered")
    code, _, stderr = run(capfd, *export_args(archive, out, "--upload"))
    assert code == 1 and stderr.splitlines()[-1] == (
        f"error: 2026-01-15: {out}/{DAY}/data.parquet no longer matches its manifest; export the day again"
    )
    assert keys(s3, BUCKET) == []


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
        f"error: 2026-01-14: no archive folder for 2026-01-14: s3://{BUCKET}/archive/20260114 does not exist or is empty"
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
    assert code == 1 and stderr == f"error: bucket from-env at {moto.endpoint} does not exist; create it or set R2_BUCKET / `config --bucket`\n"
    monkeypatch.delenv("R2_BUCKET")
    s3.pipe_file(f"{BUCKET}/tier3/daily/x", b"")
    code, stdout, _ = run(capfd, "config", "--check")
    assert code == 0 and stdout == f"ok: listed bucket {BUCKET} at {moto.endpoint} (1 top-level entries)\n"


def test_config_prompts_with_the_secret_hidden(home, monkeypatch, capfd):
    asked, hidden = [], []
    answers = iter(["https://acct.r2.cloudflarestorage.com", KEY_ID, ""])
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or next(answers))
    monkeypatch.setattr("getpass.getpass", lambda prompt: hidden.append(prompt) or SECRET)
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
def _stop_during_data_upload(monkeypatch, moto):
    upload = S3File._upload_chunk

    def stop_then_upload(self, final=False):
        moto.stop()
        return upload(self, final)

    monkeypatch.setattr(S3File, "_upload_chunk", stop_then_upload)
    return f"error: 2026-01-15: could not write s3://{FOLDER}/data.parquet: EndpointConnectionError: Could not connect to the endpoint URL"


def _stop_before_manifest(monkeypatch, moto):
    pipe = S3FileSystem._pipe_file

    async def stop_then_pipe(self, path, data, *args, **kwargs):
        if path.endswith("manifest.json"):
            moto.stop()
        return await pipe(self, path, data, *args, **kwargs)

    monkeypatch.setattr(S3FileSystem, "_pipe_file", stop_then_pipe)
    return f"error: 2026-01-15: could not publish s3://{FOLDER}: EndpointConnectionError: Could not connect to the endpoint URL"


@pytest.mark.parametrize("stop", [_stop_during_data_upload, _stop_before_manifest], ids=["data upload", "manifest"])
def test_server_stopped_mid_upload_publishes_nothing_and_a_rerun_succeeds(s3, moto, archive, tmp_path, monkeypatch, capfd, stop):
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        expected = stop(patch, moto)
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
