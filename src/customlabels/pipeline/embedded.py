"""The embedded pipeline: one supervisor process, N worker processes, a SQLite queue, no servers.

The supervisor watches the bucket folder (watchdog), rescans it at start and periodically,
queues settled images, and restarts dead workers (handing their leases back at once; a lease
that runs out does the same if the supervisor itself died). Workers keep the model loaded and
lease one job at a time.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing as mp
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from customlabels.errors import InvalidParameterError
from customlabels.pipeline.keys import normalize_prefix
from customlabels.pipeline.reconciler import find_unprocessed
from customlabels.pipeline.retry import OutagePolicy, through_outages
from customlabels.pipeline.sqlite_queue import QueueConfig, SqliteJobQueue, worker_id
from customlabels.pipeline.watcher import BucketWatcher, SettleTracker
from customlabels.pipeline.worker import WorkerOptions, error_record, process_image
from customlabels.storage.local import LocalStore

__all__ = ["EmbeddedConfig", "RunSummary", "default_state_dir", "run_embedded", "worker_loop"]

log = logging.getLogger(__name__)

STATE_DIR_NAME = ".customlabels-pipeline"
QUEUE_FILE = "queue.sqlite3"


def default_state_dir(bucket: Path) -> Path:
    """``<bucket>/.customlabels-pipeline``: hidden, so never taken for an input."""
    return Path(bucket) / STATE_DIR_NAME


@dataclass
class EmbeddedConfig:
    """Settings of ``customlabels pipeline run`` (flags override these defaults).

    Attributes:
        bucket: the local folder used as a bucket (``bucket/<key>``).
        prefix: only keys under it are inputs (nested folders included).
        model_dir: the model version folder (``model.onnx`` + ``model.json``).
        workers: worker processes, each with the model loaded.
        threads: ONNX Runtime intra-op threads per worker.
        options: thresholds and result size (see :class:`WorkerOptions`).
        queue: lease, retry and dead-letter settings.
        state_dir: where the queue lives (default: ``<bucket>/.customlabels-pipeline``).
        settle_s: a file is read only after it has not changed for this long.
        rescan_s: period of the full listing that catches missed events.
        poll_s: how often the supervisor and idle workers look for work.
        watch: use file-system events (off: rescans only).
        exit_when_idle: stop once the start-up rescan's work is finished (batch mode).
    """

    bucket: Path
    prefix: str
    model_dir: Path
    workers: int = 1
    threads: int = 1
    options: WorkerOptions = field(default_factory=WorkerOptions)
    queue: QueueConfig = field(default_factory=QueueConfig)
    state_dir: Path | None = None
    settle_s: float = 1.0
    rescan_s: float = 30.0
    poll_s: float = 0.2
    watch: bool = True
    exit_when_idle: bool = False

    def __post_init__(self) -> None:
        self.bucket = Path(self.bucket)
        self.prefix = normalize_prefix(self.prefix)
        if self.workers < 1:
            raise InvalidParameterError(f"--workers: expected ≥ 1, got {self.workers}")
        if not self.bucket.is_dir():
            raise InvalidParameterError(f"--bucket {self.bucket}: not a folder")

    @property
    def queue_path(self) -> Path:
        return (self.state_dir or default_state_dir(self.bucket)) / QUEUE_FILE


@dataclass
class RunSummary:
    queued: int = 0
    restarts: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def worker_loop(
    queue_path: Path,
    store_root: Path,
    model_dir: Path,
    queue_config: QueueConfig,
    options: WorkerOptions,
    threads: int,
    poll_s: float,
    stop: threading.Event | None = None,
    outage: OutagePolicy | None = None,
) -> None:
    """A worker process: load the model once, then lease, process, complete.

    Stops after the job in hand on SIGTERM (or when ``stop`` is set), and by itself when its
    supervisor is gone (its parent changes), so a killed pipeline leaves no orphans behind. No
    lock is shared with the supervisor: a worker killed at any instant cannot wedge it. A store
    outage is waited out within the job's lease (``outage``), then the job goes back to the
    queue as a retry; it is never written as an image error.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(message)s")
    stop = stop or threading.Event()
    outage = outage or OutagePolicy()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when workers stop
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    parent = os.getppid()
    from customlabels.pipeline.model import load_model

    model = load_model(model_dir, threads=threads)
    store = LocalStore(store_root)
    queue = SqliteJobQueue(queue_path, queue_config)
    me = worker_id()
    log.info("worker %s ready (model %s)", me, model.version)
    while not stop.is_set() and os.getppid() == parent:
        job = queue.lease(me)
        if job is None:
            stop.wait(poll_s)
            continue
        # wait out a store outage while the lease lasts (a margin left to complete it)
        deadline = time.monotonic() + (job.lease_until or time.time()) - time.time() - 5.0
        try:
            result = through_outages(
                functools.partial(process_image, store, job.key, model, options),
                outage,
                stop,
                deadline,
                what=job.key,
            )
        except Exception as exc:  # not the image's fault: retry later, dead-letter at the end
            log.warning("retry %s after %s: %s", job.key, type(exc).__name__, exc)
            queue.retry(job, error_record(exc))
            continue
        queue.complete(job, failed=result.error)
    queue.close()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (dead, not yet reaped: orphans in a container) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


class _Supervisor:
    def __init__(self, config: EmbeddedConfig) -> None:
        self.config = config
        self.store = LocalStore(config.bucket)
        self.queue = SqliteJobQueue(config.queue_path, config.queue)
        self.tracker = SettleTracker(self.store, config.settle_s)
        self.ctx = mp.get_context("spawn")  # no fork: watchdog threads and ONNX Runtime
        self.procs: list[BaseProcess] = []
        self.summary = RunSummary()

    def _spawn(self) -> BaseProcess:
        c = self.config
        proc = self.ctx.Process(
            target=worker_loop,
            args=(
                c.queue_path,
                c.bucket,
                c.model_dir,
                c.queue,
                c.options,
                c.threads,
                c.poll_s,
            ),
            name="customlabels-worker",
        )
        proc.start()
        return proc

    def _reap(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc.is_alive():
                continue
            released = self.queue.release_worker(f"{socket.gethostname()}:{proc.pid}")
            log.warning(
                "worker %s exited (code %s); %d job(s) handed back; restarting",
                proc.pid,
                proc.exitcode,
                released,
            )
            self.procs[i] = self._spawn()
            self.summary.restarts += 1

    def release_dead_local_workers(self) -> int:
        """Hand back leases of workers on this host that no longer run (a crashed supervisor's).

        Leases of other hosts, or of live processes, are left to expire.
        """
        released = 0
        host = socket.gethostname()
        for worker in self.queue.leased_workers():
            w_host, _, pid = worker.rpartition(":")
            if w_host != host or not pid.isdigit() or _alive(int(pid)):
                continue
            released += self.queue.release_worker(worker)
        if released:
            log.warning("%d job(s) leased by dead local workers handed back", released)
        return released

    def rescan(self, deep: bool = False, under: str | None = None) -> None:
        version = None
        if deep:
            from customlabels.pipeline.model import model_version

            version = model_version(self.config.model_dir)
        for info in find_unprocessed(self.store, self.config.prefix, version, under=under):
            self.tracker.note(info.key, force=False)

    def _enqueue_ready(self) -> None:
        for folder in self.tracker.take_folders():
            self.rescan(under=folder)
        plain, forced = self.tracker.ready()
        if plain:
            self.summary.queued += self.queue.enqueue_many(plain)
        if forced:
            self.summary.queued += self.queue.enqueue_many(forced, force=True)

    def run(self, stop: threading.Event) -> RunSummary:
        c = self.config
        watcher = BucketWatcher(c.bucket, c.prefix, self.tracker) if c.watch else None
        if watcher:
            watcher.start()  # before the rescan, so nothing falls between the two
        try:
            self.release_dead_local_workers()
            self.procs = [self._spawn() for _ in range(c.workers)]
            self.rescan(deep=True)
            next_rescan = time.monotonic() + c.rescan_s
            log.info("pipeline on %s/%s with %d worker(s)", c.bucket, c.prefix, c.workers)
            while not stop.is_set():
                self._enqueue_ready()
                self._reap()
                if time.monotonic() >= next_rescan:
                    self.rescan()
                    next_rescan = time.monotonic() + c.rescan_s
                if c.exit_when_idle and len(self.tracker) == 0 and self.queue.pending() == 0:
                    break
                stop.wait(c.poll_s)
        finally:
            if watcher:
                watcher.stop()
            self._shutdown()
        self.summary.counts = {s.value: n for s, n in self.queue.stats().counts.items()}
        return self.summary

    def _shutdown(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: finish the job in hand, then exit
        deadline = time.monotonic() + 30.0
        for proc in self.procs:
            proc.join(timeout=max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
            self.queue.release_worker(f"{socket.gethostname()}:{proc.pid}")


def run_embedded(config: EmbeddedConfig, stop: threading.Event | None = None) -> RunSummary:
    """Run until ``stop`` is set (or SIGTERM/SIGINT, or idle with ``exit_when_idle``).

    Returns:
        How many jobs were queued, how many worker restarts happened, final status counts.
    """
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():

        def _on_signal(signum: int, _frame: Any) -> None:
            log.info("signal %d: stopping after the jobs in flight", signum)
            stop.set()

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
    log.debug("supervisor pid %d", os.getpid())
    return _Supervisor(config).run(stop)
