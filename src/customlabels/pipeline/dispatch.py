"""The scale-out producer: events and a periodic bucket listing -> Celery tasks, deduplicated.

Run it once per bucket (``customlabels pipeline run --store s3://B --broker redis://...``); the
workers (``customlabels worker``) run anywhere. Each (key, ETag) is dispatched once per claim
period (see :class:`Ledger.claim`), so an event and a reconciler pass for the same upload make
one task; a changed image has a new ETag and is dispatched again.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from customlabels.core.uris import is_s3_uri
from customlabels.errors import StoreUnavailableError
from customlabels.pipeline.celery_app import create_app, send_job
from customlabels.pipeline.events import RedisListSource
from customlabels.pipeline.keys import is_input, normalize_prefix
from customlabels.pipeline.ledger import Ledger, ledger_url_for
from customlabels.pipeline.reconciler import find_unprocessed
from customlabels.storage import open_store

__all__ = ["DispatchConfig", "Dispatcher", "run_dispatcher"]

log = logging.getLogger(__name__)


@dataclass
class DispatchConfig:
    """Settings of the scale-out producer.

    Attributes:
        store_url: ``s3://BUCKET``.
        broker: ``redis://HOST:PORT/DB`` or ``amqp://...`` (RabbitMQ).
        ledger_url: the Redis holding the ledger (claims, status); default: the broker, which
            must then be a Redis.
        prefix: input prefix.
        events_list: a Redis list receiving S3 event JSON (None: listing only).
        events_url: the Redis holding ``events_list`` (default: the ledger's).
        reconcile_s: period of the bucket listing that finds images without results.
        claim_ttl_s: how long a dispatched (key, ETag) is not dispatched again.
        model_dir: when given, the start-up listing also redoes results of other model versions.
        seaweed_filer: ``host:port`` of a SeaweedFS filer: follow its metadata feed as events.
    """

    store_url: str
    broker: str
    prefix: str = ""
    ledger_url: str | None = None
    s3_endpoint_url: str | None = None
    events_list: str | None = None
    events_url: str | None = None
    reconcile_s: float = 30.0
    claim_ttl_s: int = 3600
    model_dir: Any = None
    seaweed_filer: str | None = None
    exit_when_idle: bool = False

    def __post_init__(self) -> None:
        self.prefix = normalize_prefix(self.prefix)
        self.ledger_url = ledger_url_for(self.broker, self.ledger_url)


class Dispatcher:
    def __init__(self, config: DispatchConfig) -> None:
        import redis

        self.config = config
        opts: dict[str, Any] = {}
        if is_s3_uri(config.store_url):
            opts["endpoint_url"] = config.s3_endpoint_url
        self.store = open_store(config.store_url, **opts)
        self.app = create_app(config.broker)
        ledger_url = ledger_url_for(config.broker, config.ledger_url)
        self.ledger = Ledger(redis.Redis.from_url(ledger_url), self.store.name, config.claim_ttl_s)
        self.source = (
            RedisListSource(
                redis.Redis.from_url(config.events_url or ledger_url), config.events_list
            )
            if config.events_list
            else None
        )
        self.feed = None
        if config.seaweed_filer:
            from customlabels.pipeline.seaweed_feed import SeaweedMetaFeed

            self.feed = SeaweedMetaFeed(config.seaweed_filer, self.store.name, config.prefix)
        self.dispatched = 0
        self._deep_pending = True

    def offer(self, key: str, etag: str | None) -> bool:
        """Dispatch ``key`` unless this content of it was already dispatched."""
        if not is_input(key, self.config.prefix) or not self.ledger.claim(key, etag):
            return False
        send_job(self.app, self.store.name, key, etag)
        self.dispatched += 1
        return True

    def reconcile(self, deep: bool = False) -> int:
        version = None
        if deep and self.config.model_dir is not None:
            from customlabels.pipeline.model import model_version

            version = model_version(self.config.model_dir)
        n = 0
        for info in find_unprocessed(self.store, self.config.prefix, version):
            n += self.offer(info.key, info.etag)
        return n

    def pump_feed(self) -> int:
        """Dispatch what the SeaweedFS metadata feed reported since the last call."""
        n = 0
        while self.feed is not None and not self.feed.events.empty():
            event = self.feed.events.get_nowait()
            n += self.offer(event.key, event.etag)
        return n

    def pump_events(self, timeout_s: float) -> int:
        """Take one event document (waiting up to ``timeout_s``) and dispatch its keys."""
        n = self.pump_feed()
        if self.source is None:
            time.sleep(timeout_s)
            return n + self.pump_feed()
        raw = self.source.pop(timeout_s)
        if raw is None:
            return n
        for event in self.source.events(raw):
            if event.bucket != self.store.name:
                log.info("ignoring an event for bucket %s", event.bucket)
                continue
            n += self.offer(event.key, event.etag)
        self.source.done(raw)
        return n

    def close(self) -> None:
        if self.feed is not None:
            self.feed.close()

    def run(self, stop: threading.Event) -> int:
        try:
            return self._run(stop)
        finally:
            self.close()

    def _pass(self, deep: bool) -> float:
        """One reconciler pass; the time of the next one (sooner when the store was down)."""
        try:
            self.reconcile(deep=deep)
        except StoreUnavailableError as exc:
            log.warning("bucket listing failed, again in 5 s: %s", exc.message)
            return time.monotonic() + min(5.0, self.config.reconcile_s)
        self._deep_pending = False
        return time.monotonic() + self.config.reconcile_s

    def _run(self, stop: threading.Event) -> int:
        next_pass = self._pass(deep=True)
        while not stop.is_set():
            self.pump_events(timeout_s=0.5)
            if time.monotonic() >= next_pass:
                next_pass = self._pass(deep=self._deep_pending)
            if self.config.exit_when_idle:
                stats = self.ledger.stats()["counts"]
                if stats["QUEUED"] == 0 and stats["IN_PROGRESS"] == 0:
                    break
        return self.dispatched


def run_dispatcher(config: DispatchConfig, stop: threading.Event | None = None) -> int:
    """Run the producer until ``stop`` (or SIGTERM/SIGINT); returns how many tasks it sent."""
    import signal

    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    return Dispatcher(config).run(stop)
