"""Typed settings of the service, in one place.

Defaults live here; ``customlabels serve`` flags and the environment only override them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from customlabels.errors import ConfigError
from customlabels.io.images import ImageLimits

__all__ = ["DEFAULT_HOME", "ServiceSettings", "parse_duration"]

DEFAULT_HOME = Path("~/.customlabels")

# DetectCustomLabels: image bytes in the request up to 4 MB (the service's limit), S3 objects up
# to 15 MB, sides up to 4096 px.
_REQUEST_BYTES = 4 * 1024 * 1024
_S3_BYTES = 15 * 1024 * 1024


def parse_duration(text: str | float | int) -> float:
    """Seconds from ``"90"``, ``"90s"``, ``"15m"``, ``"2h"`` (or a number).

    Raises:
        ConfigError: not a positive duration.
    """
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        raw = text.strip().lower()
        scale = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(raw[-1:])
        number = raw[:-1] if scale else raw
        try:
            seconds = float(number) * (scale or 1.0)
        except ValueError:
            raise ConfigError(
                f"duration: expected seconds or a number with s/m/h (e.g. 15m), got {text!r}"
            ) from None
    if not seconds > 0:
        raise ConfigError(f"duration: expected a positive duration, got {text!r}")
    return seconds


@dataclass
class ServiceSettings:
    """Everything the service needs to know.

    Attributes:
        home: folder of the catalog (``catalog.db``) and of the artifacts (``models/``).
        database_url: SQLAlchemy URL; default ``sqlite:///<home>/catalog.db``. A PostgreSQL URL
            (``postgresql+psycopg://...``, driver ``psycopg[binary]``) works too (tested).
        buckets_dir: each subfolder is a bucket of that name (``DIR/<bucket>/<key>``).
        s3_endpoint_url: an S3-compatible store used for buckets instead of ``buckets_dir``.
        train_time_budget_s: training budget of CreateProjectVersion (the request tag
            ``customlabels:time-budget``, in seconds, overrides it).
        request_limits: limits of images sent as ``Bytes`` (checked before decoding).
        s3_limits: limits of images read from a bucket.
        access_key_id / secret_access_key: the one key pair requests must be signed with.
        auth: verify AWS Signature V4 (``--no-auth`` switches it off, loopback only).
        host / port: where ``serve`` listens (loopback by default).
        threads_per_session: ONNX Runtime intra-op threads of each serving session.
        train_command: the command that trains (argv prefix); default runs this package's CLI
            with the current interpreter.
        pipeline_bucket: the bucket ``customlabels pipeline run`` processes, shown on the
            console's pipeline page (``serve --pipeline-bucket``).
    """

    home: Path = field(default_factory=lambda: DEFAULT_HOME.expanduser())
    database_url: str | None = None
    buckets_dir: Path | None = None
    s3_endpoint_url: str | None = None
    train_time_budget_s: float = 15 * 60.0
    request_limits: ImageLimits = field(
        default_factory=lambda: ImageLimits(max_bytes=_REQUEST_BYTES, min_side=1)
    )
    s3_limits: ImageLimits = field(default_factory=lambda: ImageLimits(max_bytes=_S3_BYTES))
    access_key_id: str | None = None
    secret_access_key: str | None = None
    auth: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    threads_per_session: int = 1
    train_command: list[str] | None = None
    pipeline_bucket: str | None = None

    def __post_init__(self) -> None:
        self.home = Path(self.home).expanduser()
        if self.buckets_dir is not None:
            self.buckets_dir = Path(self.buckets_dir).expanduser()

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'catalog.db'}"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    def with_env_credentials(self) -> ServiceSettings:
        """Fill the key pair from ``CUSTOMLABELS_ACCESS_KEY_ID`` / ``..._SECRET_ACCESS_KEY``,
        else from ``<home>/credentials`` (two lines: ``access_key_id = ...`` and
        ``secret_access_key = ...``)."""
        key = os.environ.get("CUSTOMLABELS_ACCESS_KEY_ID")
        secret = os.environ.get("CUSTOMLABELS_SECRET_ACCESS_KEY")
        if not (key and secret):
            key, secret = _read_credentials_file(self.home / "credentials")
        if key and secret and not self.access_key_id:
            self.access_key_id, self.secret_access_key = key, secret
        return self


def _read_credentials_file(path: Path) -> tuple[str | None, str | None]:
    if not path.is_file():
        return None, None
    values: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", "[")):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"{path}:{n}: expected 'name = value', got {line!r}")
        values[name.strip().lower()] = value.strip()
    return values.get("access_key_id"), values.get("secret_access_key")
