"""Local-folder events (watchdog) and the settle check that holds back half-written files."""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
    FileSystemMovedEvent,
)
from watchdog.observers import Observer

from customlabels.pipeline.keys import is_input
from customlabels.storage.base import ObjectStore

__all__ = ["BucketWatcher", "SettleTracker"]


@dataclass
class _Seen:
    size: int
    mtime: float


class SettleTracker:
    """Candidate keys waiting until their size and mtime stop changing.

    A key is ready once ``store.head`` has returned the same size and mtime for ``settle_s``
    seconds (and its mtime is at least that old), so a file still being copied is never read.
    Thread-safe: the watcher thread adds keys, the supervisor takes ready ones.
    """

    def __init__(self, store: ObjectStore, settle_s: float = 1.0) -> None:
        self.store = store
        self.settle_s = settle_s
        self._pending: dict[str, _Seen | None] = {}
        self._force: set[str] = set()
        self._folders: set[str] = set()
        self._lock = threading.Lock()

    def note(self, key: str, force: bool = False) -> None:
        """A file event (``force``: it changed, redo it even if in flight) or a rescan hit."""
        with self._lock:
            self._pending.setdefault(key, None)
            if force:
                self._force.add(key)

    def note_folder(self, prefix: str) -> None:
        """A new folder: inotify may miss files created in it before it is watched."""
        with self._lock:
            self._folders.add(prefix)

    def take_folders(self) -> list[str]:
        with self._lock:
            folders, self._folders = sorted(self._folders), set()
        return folders

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def ready(self) -> tuple[list[str], list[str]]:
        """Settled keys, removed from the tracker: ``(plain, forced)``.

        Settled: not modified for ``settle_s`` seconds and the same size as when last looked at
        (``cp --preserve`` and ``shutil.copy2`` set an old mtime only after the data is written).
        """
        now = time.time()
        with self._lock:
            keys = list(self._pending)
        plain: list[str] = []
        forced: list[str] = []
        for key in keys:
            info = self.store.head(key)
            with self._lock:
                seen = self._pending.get(key)
                if info is None:  # deleted (or renamed away) before it settled
                    self._pending.pop(key, None)
                    self._force.discard(key)
                    continue
                self._pending[key] = _Seen(info.size, info.last_modified)
                if seen is not None and seen.size != info.size:
                    continue
                if now - info.last_modified < self.settle_s:
                    continue
                self._pending.pop(key)
                (forced if key in self._force else plain).append(key)
                self._force.discard(key)
        return plain, forced


class _Handler(FileSystemEventHandler):
    def __init__(self, root: Path, prefix: str, tracker: SettleTracker) -> None:
        self.root = root
        self.prefix = prefix
        self.tracker = tracker

    def _key(self, path: str | bytes) -> str | None:
        p = Path(path.decode() if isinstance(path, bytes) else path)
        try:
            return p.relative_to(self.root).as_posix()
        except ValueError:
            return None

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("deleted", "opened", "closed_no_write"):
            return
        path = event.dest_path if isinstance(event, FileSystemMovedEvent) else event.src_path
        key = self._key(path)
        if key is None:
            return
        if isinstance(event, DirCreatedEvent | DirMovedEvent):
            if (key + "/").startswith(self.prefix) or self.prefix.startswith(key + "/"):
                self.tracker.note_folder(key + "/")
            return
        if not event.is_directory and is_input(key, self.prefix):
            self.tracker.note(key, force=True)


class BucketWatcher:
    """watchdog observer on the folder holding ``prefix`` (created if missing)."""

    def __init__(self, root: Path, prefix: str, tracker: SettleTracker) -> None:
        self.root = Path(root).resolve()
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        self.folder = self.root / folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._observer = Observer()
        self._observer.schedule(
            _Handler(self.root, prefix, tracker), str(self.folder), recursive=True
        )

    def start(self) -> None:
        # watchdog warns when a folder created with its parents (mkdir -p) is registered twice
        # (once from its own event, once from the recursive walk of its parent); harmless
        warnings.filterwarnings(
            "ignore", message="Callback with id", category=RuntimeWarning, module="watchdog"
        )
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)
