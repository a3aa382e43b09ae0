"""R2 (S3 API) settings, credentials and the s3fs options that make R2 work.

Settings come from ``~/.config/instrumetriq/r2_credentials.json`` (written by
``python -m instrumetriq_polars config``, mode 0600), each overridden by its environment variable.
``s3://`` URLs given to the exporter without explicit ``storage_options`` use these settings.

The secret is readable where it has to be: in the credentials file (owner only), in
``R2Settings.secret_access_key`` and in the options ``r2_storage_options()`` returns, which are
handed to s3fs/botocore to sign requests. It is not shown: reprs and ``config --show`` mask it,
and ``describe_error`` / ``redact`` (used for every storage error the exporter reports, and for
the CLI's ``--debug`` tracebacks) replace every secret this process has seen (loaded settings,
``storage_options`` given to the API) with ``********``. Only the literal secret is recognised,
not an encoded form of it (e.g. URL-escaped).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

from .errors import ConfigError

DEFAULT_BUCKET = "instrumetriq-datasets"
#: Where an upload puts a day: ``s3://{bucket}/tier3/daily/YYYY-MM-DD/``.
R2_PREFIX = "tier3/daily"
S3_PROTOCOLS = ("s3", "s3a")
MASK = "********"
#: botocore attempts per request (standard mode: exponential backoff with jitter). s3fs adds its
#: own loop of at most ``S3FileSystem.retries`` (5) over that for errors it deems retryable.
MAX_ATTEMPTS = 3

ENV = {
    "endpoint": "R2_ENDPOINT",
    "access_key_id": "R2_ACCESS_KEY_ID",
    "secret_access_key": "R2_SECRET_ACCESS_KEY",
    "bucket": "R2_BUCKET",
}

_known_secrets: set[str] = set()


@dataclass(frozen=True)
class R2Settings:
    endpoint: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    bucket: str = DEFAULT_BUCKET

    def __post_init__(self) -> None:
        if self.secret_access_key:
            _known_secrets.add(self.secret_access_key)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.masked().items())
        return f"R2Settings({shown})"

    def masked(self) -> dict[str, str | None]:
        """The settings as shown to people: the secret is never shown, the key id only its end."""
        return {
            "endpoint": self.endpoint,
            "access_key_id": _mask_key_id(self.access_key_id),
            "secret_access_key": MASK if self.secret_access_key else None,
            "bucket": self.bucket,
        }

    @property
    def missing(self) -> list[str]:
        return [f.name for f in fields(self) if not getattr(self, f.name)]

    @property
    def day_root(self) -> str:
        """The upload destination root: ``s3://{bucket}/tier3/daily``."""
        return f"s3://{self.bucket}/{R2_PREFIX}"


def credentials_path() -> Path:
    """``$HOME/.config/instrumetriq/r2_credentials.json`` (looked up at call time)."""
    return Path.home() / ".config" / "instrumetriq" / "r2_credentials.json"


def read_file_settings() -> dict[str, str]:
    """The values stored in the credentials file ({} when there is none)."""
    path = credentials_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path} ({type(exc).__name__}); run `python -m instrumetriq_polars config` to rewrite it") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a JSON object; run `python -m instrumetriq_polars config` to rewrite it")
    return {name: str(data[name]) for name in ENV if data.get(name)}


def env_settings() -> dict[str, str]:
    return {name: os.environ[var] for name, var in ENV.items() if os.environ.get(var)}


def load_settings(require: bool = True) -> R2Settings:
    """File values overridden by the environment. ``require``: ConfigError naming what is missing."""
    settings = R2Settings(**{**read_file_settings(), **env_settings()})
    if require and settings.missing:
        missing = ", ".join(ENV[name] for name in settings.missing)
        raise ConfigError(
            f"R2 settings missing: {missing}; run `python -m instrumetriq_polars config` "
            f"(stores them in {credentials_path()}) or set those environment variables"
        )
    return settings


def save_settings(settings: R2Settings) -> Path:
    """Write the credentials file, readable by its owner only (0600; its folder 0700, an
    existing one tightened). The file is written under a temporary name created 0600 before the
    secret goes in, then renamed over the old one."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)  # mkdir's mode is cut by the umask and not applied to an existing folder
    data = {name: value for name, value in vars(settings).items() if value}
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        temp.unlink()  # left by a killed run: never reuse a file whose mode may be wider
    except FileNotFoundError:
        pass
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)  # exactly 0600 whatever the umask, before anything is written
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def r2_storage_options(settings: R2Settings | None = None) -> dict:
    """fsspec/s3fs options for R2, with its compatibility settings, from ``settings``
    (default: ``load_settings()``)."""
    settings = settings or load_settings()
    return {
        "key": settings.access_key_id,
        "secret": settings.secret_access_key,
        "endpoint_url": settings.endpoint,
        "client_kwargs": {"region_name": "auto"},
        # R2 wants every multipart part the same size (>= 5 MiB), the last one may be smaller
        "fixed_upload_size": True,
        "config_kwargs": {
            # R2 has rejected the CRC checksum trailers botocore >= 1.36 sends by default
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
            "retries": {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        },
    }


def r2_filesystem(settings: R2Settings | None = None):
    """An ``s3fs.S3FileSystem`` for R2 (see ``r2_storage_options``)."""
    import s3fs

    return s3fs.S3FileSystem(**r2_storage_options(settings))


def is_local(target) -> bool:
    """Whether ``target`` (an fsspec filesystem, or a path/URL) is on the local disk: the one
    place that decides it."""
    if isinstance(target, (str, os.PathLike)):
        scheme, sep, _ = str(target).partition("://")
        return not sep or scheme in ("file", "local")
    protocols = (target.protocol,) if isinstance(target.protocol, str) else tuple(target.protocol)
    return "file" in protocols or "local" in protocols


def display_path(fs, path: str) -> str:
    """``path`` on ``fs`` as the operator would type it: plain locally, ``proto://path`` elsewhere."""
    if is_local(fs):
        return path
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return f"{protocol}://{path}"


def is_s3_url(url: str) -> bool:
    scheme, sep, _ = str(url).partition("://")
    return bool(sep) and scheme in S3_PROTOCOLS


def storage_options_for(url: str, given: dict | None) -> dict | None:
    """The fsspec options to open ``url`` with: ``given`` when the caller passed some; the R2
    settings for ``s3://`` URLs; otherwise none."""
    if given is not None:
        if given.get("secret"):
            _known_secrets.add(str(given["secret"]))
        return given
    if not is_s3_url(url):
        return None
    return r2_storage_options()


def redact(text: str) -> str:
    """``text`` with every known secret masked; the longest first, so a secret that holds another
    one is masked whole (masking the shorter first would leave the rest of the longer in view)."""
    for secret in sorted(_known_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def describe_error(exc: BaseException) -> str:
    """One line for an error raised by a storage backend, with any known secret masked."""
    text = " ".join(str(exc).split())
    return redact(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def _mask_key_id(key_id: str | None) -> str | None:
    if not key_id:
        return None
    return MASK + key_id[-4:] if len(key_id) > 8 else MASK


# -- the ``config`` command ---------------------------------------------------------------------
_PROMPTS = {
    "endpoint": "endpoint URL (https://<account id>.r2.cloudflarestorage.com)",
    "access_key_id": "access key id",
    "secret_access_key": "secret access key (hidden)",
    "bucket": "bucket",
}


def prompt_settings() -> dict[str, str]:
    """Ask for each setting (the secret without echo), showing the stored one (masked); an empty
    answer keeps it."""
    import getpass

    shown = R2Settings(**read_file_settings()).masked()
    answers = {}
    for name, label in _PROMPTS.items():
        prompt = f"{label} [{shown[name] or ''}]: "
        answer = (getpass.getpass if name == "secret_access_key" else input)(prompt).strip()
        if answer:
            answers[name] = answer
    return answers


def update_settings(values: dict[str, str]) -> Path:
    """Store ``values`` over what the credentials file holds."""
    return save_settings(R2Settings(**{**read_file_settings(), **values}))


def describe_settings() -> list[str]:
    """Lines for the CLI's ``config`` (show): each setting (secret masked) and where it comes from."""
    path = credentials_path()
    stored, env = read_file_settings(), env_settings()
    settings = R2Settings(**{**stored, **env})
    mode = f"mode {path.stat().st_mode & 0o777:04o}" if path.exists() else "absent"
    lines = [f"credentials file: {path} ({mode})"]
    for name, value in settings.masked().items():
        source = f"env {ENV[name]}" if name in env else "file" if name in stored else "default" if value else "not set"
        lines.append(f"{name}: {value or '-'} ({source})")
    if settings.missing:
        lines.append("missing: " + ", ".join(ENV[name] for name in settings.missing))
    return lines


def check_bucket(settings: R2Settings | None = None) -> str:
    """List the bucket: proves endpoint, credentials and bucket name work together."""
    settings = settings or load_settings()
    fs = r2_filesystem(settings)
    where = f"bucket {settings.bucket} at {settings.endpoint}"
    try:
        fs.invalidate_cache(settings.bucket)
        entries = fs.ls(settings.bucket, detail=False)
    except FileNotFoundError:
        raise ConfigError(f"{where} does not exist; create it, or set R2_BUCKET or the stored bucket") from None
    except Exception as exc:
        raise ConfigError(f"cannot list {where}: {describe_error(exc)}") from None
    return f"ok: listed {where} ({len(entries)} top-level entries)"
