"""Typed settings of the service, in one place.

Defaults live here; ``customlabels serve`` flags and the environment only override them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from customlabels.core.durations import DEFAULT_TIME_BUDGET_S
from customlabels.errors import ConfigError
from customlabels.io.images import DEFAULT_LIMITS, REQUEST_LIMITS, ImageLimits

__all__ = ["DEFAULT_HOME", "ServiceSettings"]

DEFAULT_HOME = Path("~/.customlabels")


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
        request_timeout_s: a client must send a request's head, and then its body, within
            this many seconds each (slow clients are answered 408 or disconnected).
        train_command: the command that trains (argv prefix); default runs this package's CLI
            with the current interpreter.
        train_runner: who runs training jobs, a name of
            :data:`customlabels.service.training.RUNNERS`: ``embedded`` (a child process of
            the server) or ``celery`` (the ``train`` queue of ``train_broker``, served by
            ``customlabels worker --queues train`` on machines that see ``home`` at the same
            path; see ``docs/service.md``). ``serve --train-runner``.
        train_broker: the Celery broker of the ``celery`` runner, ``redis://HOST:6379/0`` or
            ``amqp://...`` (``serve --train-broker``).
        train_heartbeat_timeout_s: ``celery`` runner: a running job whose worker stops its
            heartbeat (every 2 s) this long fails as "the training worker stopped".
        pipeline_bucket: the bucket ``customlabels pipeline run`` processes, shown on the
            console's pipeline page (``serve --pipeline-bucket``).
        pipeline_model: a model folder (``model.onnx`` + ``model.json``): the server then runs
            the embedded pipeline on ``pipeline_bucket`` itself (``serve --pipeline-model``;
            see :mod:`customlabels.service.pipeline_runner`). None: it only follows the bucket.
    """

    home: Path = field(default_factory=lambda: DEFAULT_HOME.expanduser())
    database_url: str | None = None
    buckets_dir: Path | None = None
    s3_endpoint_url: str | None = None
    train_time_budget_s: float = DEFAULT_TIME_BUDGET_S
    request_limits: ImageLimits = REQUEST_LIMITS
    s3_limits: ImageLimits = DEFAULT_LIMITS
    access_key_id: str | None = None
    secret_access_key: str | None = None
    auth: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    threads_per_session: int = 1
    request_timeout_s: float = 30.0
    train_command: list[str] | None = None
    train_runner: str = "embedded"
    train_broker: str | None = None
    train_heartbeat_timeout_s: float = 60.0
    pipeline_bucket: str | None = None
    pipeline_model: Path | None = None

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
