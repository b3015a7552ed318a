"""The serving pool: running model versions and their ONNX Runtime sessions.

StartProjectVersion loads ``MinInferenceUnits`` predictors of the version (one ONNX session each,
each with its own intra-op threads) in a background thread; requests borrow a free predictor, so
up to that many detections of one model run in parallel. Stopping drops the sessions and frees
their memory. This module and everything it imports stays free of torch.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from customlabels.errors import ResourceNotReadyError
from customlabels.io.images import ImageLimits

__all__ = ["ServedModel", "ServingPool"]

log = logging.getLogger(__name__)


class ServedModel:
    """``units`` predictors of one model folder, lent out one request at a time.

    Args:
        model_dir: a model folder (``model.onnx`` + ``model.json``).
        units: number of ONNX sessions (requests served in parallel).
        threads: intra-op threads of each session.
    """

    def __init__(self, model_dir: Path, units: int, threads: int = 1) -> None:
        from customlabels.inference.predictor import Predictor

        self.model_dir = Path(model_dir)
        self.units = units
        self._free: queue.Queue[Any] = queue.Queue()
        for _ in range(units):
            self._free.put(Predictor.load(self.model_dir, threads=threads))

    def detect(
        self,
        data: bytes,
        name: str,
        min_confidence: float | None,
        max_results: int | None,
        limits: ImageLimits,
    ) -> dict[str, Any]:
        """The DetectCustomLabels response for one image (confidences 0–100)."""
        from customlabels.inference.detect import detect_bytes

        predictor = self._free.get()
        try:
            result: dict[str, Any] = detect_bytes(
                predictor,
                data,
                name,
                min_confidence=min_confidence,
                max_results=max_results,
                limits=limits,
            )
            return result
        finally:
            self._free.put(predictor)


class ServingPool:
    """Model versions being started or served, by ARN."""

    def __init__(self) -> None:
        self._models: dict[str, ServedModel] = {}
        self._lock = threading.Lock()
        self._loaders: list[threading.Thread] = []

    def start(
        self,
        arn: str,
        model_dir: Path,
        units: int,
        threads: int,
        done: Callable[[str, str | None], None],
        background: bool = True,
    ) -> None:
        """Load the sessions, then call ``done(arn, error_message_or_None)``."""

        def load() -> None:
            try:
                model = ServedModel(model_dir, units, threads)
            except Exception as exc:
                log.exception("starting %s failed", arn)
                done(arn, f"could not load {model_dir}: {exc}")
                return
            with self._lock:
                self._models[arn] = model
            done(arn, None)

        if not background:
            load()
            return
        thread = threading.Thread(target=load, name=f"start-{arn[-13:]}", daemon=True)
        self._loaders = [t for t in self._loaders if t.is_alive()] + [thread]
        thread.start()

    def stop(self, arn: str) -> None:
        with self._lock:
            self._models.pop(arn, None)

    def get(self, arn: str) -> ServedModel:
        """The running model of ``arn``; ResourceNotReadyError when it is not loaded."""
        with self._lock:
            model = self._models.get(arn)
        if model is None:
            raise ResourceNotReadyError(f"ProjectVersionArn: {arn} is not RUNNING")
        return model

    def running(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def stop_all(self) -> None:
        for thread in self._loaders:
            thread.join(timeout=30)
        with self._lock:
            self._models.clear()
