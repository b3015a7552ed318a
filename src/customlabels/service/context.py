"""What every use case needs: settings, the catalog, the buckets, the trainer and the pool."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from customlabels.service.buckets import Buckets
from customlabels.service.catalog import Catalog
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

    def close(self) -> None:
        self.pool.stop_all()
        self.trainer.shutdown()
        self.catalog.close()


def open_context(settings: ServiceSettings, recover: bool = True) -> Context:
    """Open the catalog and build the service around it.

    Args:
        recover: mark what a previous server left in flight (training, starting, running) as
            failed or stopped: nothing stays "in progress" forever after a restart. The CLI's
            read-only commands pass False so they never touch a live server's state.
    """
    from customlabels.service.serving import ServingPool
    from customlabels.service.training import Trainer

    settings.home.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(settings.db_url)
    buckets = Buckets(settings.buckets_dir, settings.s3_endpoint_url)
    ctx = Context(settings, catalog, buckets, Trainer(settings, catalog, buckets), ServingPool())
    if recover:
        ctx.trainer.recover()
    return ctx
