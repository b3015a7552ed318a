"""The embedded pipeline run inside ``customlabels serve`` (``--pipeline-bucket B
--pipeline-model DIR``): the same supervisor, SQLite queue and worker processes as
``customlabels pipeline run --bucket <buckets>/B --model DIR``, in a background thread of the
server, started and stopped with the app (its lifespan). The console's pipeline page then shows
a bucket this very server processes.

Only a local bucket folder (``--buckets DIR``) can be watched: the embedded pipeline reads file
system events.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from customlabels.errors import InvalidParameterError
from customlabels.service.settings import ServiceSettings

if TYPE_CHECKING:  # the pipeline (watchdog, ONNX Runtime workers) loads only when started
    from customlabels.pipeline.embedded import EmbeddedConfig, RunSummary

__all__ = ["EmbeddedPipeline", "start_embedded_pipeline"]

log = logging.getLogger(__name__)


class EmbeddedPipeline:
    """A running embedded pipeline; :meth:`stop` ends it after the jobs in flight."""

    def __init__(self, config: EmbeddedConfig) -> None:
        self.config = config
        self.summary: RunSummary | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="customlabels-pipeline", daemon=True)

    def _run(self) -> None:
        from customlabels.pipeline.embedded import run_embedded

        try:
            self.summary = run_embedded(self.config, self._stop)
        except Exception:  # the server keeps serving; the page shows the queue as it was
            log.exception("the embedded pipeline on %s stopped", self.config.bucket)

    def start(self) -> EmbeddedPipeline:
        self._thread.start()
        log.info("pipeline: watching %s with %s", self.config.bucket, self.config.model_dir)
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask the supervisor to stop (workers finish their job) and wait up to ``timeout_s``."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=timeout_s)


def start_embedded_pipeline(settings: ServiceSettings) -> EmbeddedPipeline | None:
    """Start the pipeline ``settings`` ask for (None when ``pipeline_model`` is not set).

    Raises:
        InvalidParameterError: a model without a bucket, a bucket that is not a local folder
            under ``buckets_dir``, or a model folder without ``model.onnx``.
    """
    if settings.pipeline_model is None:
        return None
    if not settings.pipeline_bucket:
        raise InvalidParameterError(
            "--pipeline-model: needs --pipeline-bucket (the bucket to process)"
        )
    if settings.buckets_dir is None:
        raise InvalidParameterError(
            "--pipeline-model: the embedded pipeline watches a local bucket folder; "
            "start the server with --buckets DIR"
        )
    from customlabels.pipeline.embedded import EmbeddedConfig

    model = Path(settings.pipeline_model)
    if not (model / "model.onnx").is_file():
        raise InvalidParameterError(f"--pipeline-model {model}: expected model.onnx in it")
    config = EmbeddedConfig(
        bucket=settings.buckets_dir / settings.pipeline_bucket,
        prefix="",
        model_dir=model,
        threads=settings.threads_per_session,
    )
    return EmbeddedPipeline(config).start()
