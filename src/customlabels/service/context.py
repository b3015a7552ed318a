"""What every use case needs: settings, the catalog, the buckets, the trainer and the pool."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from customlabels.service.buckets import Buckets
from customlabels.service.catalog import Catalog
from customlabels.service.home_lock import HomeLock
from customlabels.service.settings import ServiceSettings

if TYPE_CHECKING:
    from customlabels.service.serving import ServingPool
    from customlabels.service.training import Trainer

__all__ = ["Context", "now", "open_context"]


def now() -> float:
    """Seconds since the epoch (the catalog's timestamps)."""
    return time.time()


@dataclass
class Context:
    settings: ServiceSettings
    catalog: Catalog
    buckets: Buckets
    trainer: Trainer
    pool: ServingPool
    home_lock: HomeLock | None = None

    def close(self) -> None:
        self.pool.stop_all()
        self.trainer.shutdown()
        self.catalog.close()
        if self.home_lock is not None:
            self.home_lock.release()


def open_context(settings: ServiceSettings, recover: bool = True) -> Context:
    """Open the catalog and build the service around it.

    Args:
        recover: take the home's lock (one server per home: see
            :mod:`~customlabels.service.home_lock`) and mark what a previous server left in
            flight (training, starting, running) as failed or stopped: nothing stays "in
            progress" forever after a restart. The CLI's local commands pass False so they
            never touch a live server's state.

    Raises:
        ResourceInUseError: ``recover`` and another server holds the home.
    """
    from customlabels.service.serving import ServingPool
    from customlabels.service.training import Trainer

    settings.home.mkdir(parents=True, exist_ok=True)
    lock = HomeLock(settings.home) if recover else None
    try:
        catalog = Catalog(settings.db_url)
        buckets = Buckets(settings.buckets_dir, settings.s3_endpoint_url)
        trainer = Trainer(settings, catalog, buckets)
        ctx = Context(settings, catalog, buckets, trainer, ServingPool(), lock)
        if recover:
            ctx.trainer.recover()
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return ctx
