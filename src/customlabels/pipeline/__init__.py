"""Event-driven detection over a bucket: images in, ``<key>.json`` results beside them.

Two modes share one worker function (:func:`process_image`): the embedded mode (a local folder,
watchdog events, a SQLite queue with leases, worker processes) and the scale-out mode (an
S3-compatible store, S3 event JSON from a Redis list, Celery workers over Redis). Heavy pieces
(Celery, Redis, ONNX Runtime) load only in the modules that need them.
"""

from customlabels.pipeline.job import Job, JobStatus
from customlabels.pipeline.keys import error_key, is_input, normalize_prefix, result_key
from customlabels.pipeline.sqlite_queue import QueueConfig, QueueStats, SqliteJobQueue
from customlabels.pipeline.worker import Outcome, ProcessResult, WorkerOptions, process_image

__all__ = [
    "Job",
    "JobStatus",
    "Outcome",
    "ProcessResult",
    "QueueConfig",
    "QueueStats",
    "SqliteJobQueue",
    "WorkerOptions",
    "error_key",
    "is_input",
    "normalize_prefix",
    "process_image",
    "result_key",
]
