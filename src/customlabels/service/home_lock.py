"""One server per home folder: an exclusive lock held while a service context is open.

Restart recovery (:meth:`~customlabels.service.training.Trainer.recover`) marks every version
in flight as failed or stopped and ends stale training children, which is only right when no
other server is using the same home: a second ``customlabels serve`` on a home in use would
fail the first one's training and stop its models. So the context that recovers takes
``<home>/server.lock`` (``flock``, released by the kernel when the process dies, even on
SIGKILL) and a second one is refused. Commands that only read or add to the catalog
(``recover=False``) take no lock: their writes are serialised by the catalog itself.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from customlabels.errors import ResourceInUseError

__all__ = ["LOCK_NAME", "HomeLock"]

LOCK_NAME = "server.lock"


class HomeLock:
    """The exclusive lock of ``home`` (taken on construction).

    Raises:
        ResourceInUseError: another process (or context) holds the lock; the message names the
            process id written in the lock file.
    """

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / LOCK_NAME
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ResourceInUseError(
                f"home {home} is in use by another server (pid {holder}); stop it, or give "
                "this one another --home"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd: int | None = fd

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
