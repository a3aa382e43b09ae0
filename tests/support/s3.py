"""A real S3 server for the tests: moto's, in a thread on 127.0.0.1, and what tests ask of it.

tests/conftest.py starts ONE server per test run (the session fixture ``moto``) and resets it
before each test that asks for ``s3``. The credentials are dummies; ``SECRET`` is a marker that
must never show in any output (``run`` checks it).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

BUCKET = "instrumetriq-datasets"
SECRET = "s3cr3t-NEVER-SHOWN-9f2c1e7a"
KEY_ID = "test-key-id-4711"
#: Settings the tests' environment must not inherit from the machine's.
R2_AND_AWS_ENV = ("R2_ENDPOINT", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_BUCKET",
                  "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


def clear_r2_env(monkeypatch) -> None:
    """No R2 or AWS settings from the machine's environment."""
    for var in R2_AND_AWS_ENV:
        monkeypatch.delenv(var, raising=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoS3:
    """A moto S3 server on 127.0.0.1 that a test may stop and start again (its state survives)."""

    def __init__(self) -> None:
        self.endpoint = f"http://127.0.0.1:{free_port()}"
        self._server: ThreadedMotoServer | None = None

    def start(self) -> None:
        if self._server is None:
            from moto.server import ThreadedMotoServer

            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(self.endpoint.rsplit(":", 1)[1]), verbose=False)
            self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def boto_client(moto: MotoS3):
    import boto3

    return boto3.client("s3", endpoint_url=moto.endpoint, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                        region_name="us-east-1")


def uploads(moto: MotoS3, prefix: str = "") -> list[str]:
    """The keys of the unfinished multipart uploads on the server."""
    listing = boto_client(moto).list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    return [upload["Key"] for upload in listing.get("Uploads", [])]


def sending(requests_seen: list[str]) -> list[str]:
    """The requests that send or change data (anything but GET / HEAD)."""
    return [r for r in requests_seen if not r.startswith(("GET ", "HEAD "))]


def run(capfd, *argv: str) -> tuple[int, str, str]:
    """The CLI's ``main`` in this process: (exit code, stdout, stderr). Fails the test if the
    secret or a traceback appears in either."""
    from instrumetriq_polars.cli import main

    code = main(list(argv))
    out, err = capfd.readouterr()
    assert SECRET not in out + err
    assert "Traceback" not in err
    return code, out, err
