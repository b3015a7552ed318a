"""What the scale-out pipeline has done, kept in Redis beside the Celery broker.

Celery's Redis transport knows how many messages wait, not which keys are in flight or how often
a result was written. The dispatcher and the workers record that here (per bucket), which is
what ``customlabels pipeline status --broker ...`` and the tests read. Keys:

- ``customlabels:<bucket>:claim:<etag>:<key>`` (string, expires): this content of this key is
  already dispatched; an event and a reconciler pass for the same upload make one task.
- ``...:waiting`` (sorted set key -> dispatch time), ``...:inflight`` (hash key -> worker),
  ``...:counts`` (hash outcome -> n), ``...:writes`` (hash key -> results written),
  ``...:dead`` (hash key -> error JSON).
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

from customlabels.errors import ConfigError

__all__ = ["Ledger", "ledger_url_for"]


def ledger_url_for(broker: str, ledger_url: str | None = None) -> str:
    """The Redis URL of the ledger: ``ledger_url``, else the broker when it is a Redis.

    Raises:
        ConfigError: a RabbitMQ (or other) broker without a ``ledger_url``.
    """
    if ledger_url:
        return ledger_url
    if broker.startswith(("redis://", "rediss://", "unix://")):
        return broker
    raise ConfigError(
        f"--ledger: expected a redis:// URL for the pipeline ledger with broker {broker!r} "
        "(a Redis broker doubles as the ledger)"
    )


class Ledger:
    def __init__(self, client: Any, bucket: str, claim_ttl_s: int = 3600) -> None:
        self.r = client
        self.ns = f"customlabels:{bucket}"
        self.claim_ttl_s = claim_ttl_s

    def claim(self, key: str, etag: str | None) -> bool:
        """True the first time this content of ``key`` is dispatched (within ``claim_ttl_s``)."""
        ok = self.r.set(f"{self.ns}:claim:{etag or '-'}:{key}", "1", nx=True, ex=self.claim_ttl_s)
        if ok:
            self.r.zadd(f"{self.ns}:waiting", {key: time.time()}, nx=True)
        return bool(ok)

    def started(self, key: str) -> None:
        pipe = self.r.pipeline()
        pipe.zrem(f"{self.ns}:waiting", key)
        pipe.hset(
            f"{self.ns}:inflight", key, f"{socket.gethostname()}:{os.getpid()}:{time.time():.3f}"
        )
        pipe.execute()

    def finished(self, key: str, outcome: str) -> None:
        pipe = self.r.pipeline()
        pipe.hdel(f"{self.ns}:inflight", key)
        pipe.hincrby(f"{self.ns}:counts", outcome, 1)
        if outcome == "WRITTEN":
            pipe.hincrby(f"{self.ns}:writes", key, 1)
        pipe.execute()

    def retrying(self, key: str) -> None:
        pipe = self.r.pipeline()
        pipe.hdel(f"{self.ns}:inflight", key)
        pipe.zadd(f"{self.ns}:waiting", {key: time.time()}, nx=True)
        pipe.execute()

    def dead(self, key: str, error: dict[str, str]) -> None:
        pipe = self.r.pipeline()
        pipe.hdel(f"{self.ns}:inflight", key)
        pipe.hset(f"{self.ns}:dead", key, json.dumps(error))
        pipe.hincrby(f"{self.ns}:counts", "DEAD", 1)
        pipe.execute()

    def writes(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.r.hgetall(f"{self.ns}:writes").items()}

    def inflight(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.r.hgetall(f"{self.ns}:inflight").items()}

    def stats(self) -> dict[str, Any]:
        counts = {k.decode(): int(v) for k, v in self.r.hgetall(f"{self.ns}:counts").items()}
        oldest = self.r.zrange(f"{self.ns}:waiting", 0, 0, withscores=True)
        return {
            "counts": {
                "QUEUED": int(self.r.zcard(f"{self.ns}:waiting")),
                "IN_PROGRESS": int(self.r.hlen(f"{self.ns}:inflight")),
                "DONE": counts.get("WRITTEN", 0) + counts.get("SKIPPED", 0) + counts.get("GONE", 0),
                "FAILED": counts.get("FAILED", 0),
                "DEAD": counts.get("DEAD", 0),
            },
            "outcomes": counts,
            "oldest_waiting": None
            if not oldest
            else {"key": oldest[0][0].decode(), "age_s": round(time.time() - oldest[0][1], 3)},
        }
