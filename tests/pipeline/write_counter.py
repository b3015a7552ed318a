"""Run as a separate process: print every ``*.json`` renamed into place under a folder.

The stores write a temporary file and rename it, so each rename is one result written. A
separate process keeps its inotify watches apart from the pipeline's own.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler, FileSystemMovedEvent
from watchdog.observers import Observer


class _Printer(FileSystemEventHandler):
    def __init__(self, root: Path) -> None:
        self.root = root

    def on_any_event(self, event: FileSystemEvent) -> None:
        if isinstance(event, FileSystemMovedEvent) and not event.is_directory:
            dest = Path(os.fsdecode(event.dest_path))
            if dest.name.endswith(".json"):
                print(dest.relative_to(self.root).as_posix(), flush=True)


def main() -> None:
    root = Path(sys.argv[1]).resolve()
    observer = Observer()
    observer.schedule(_Printer(root), str(root), recursive=True)
    observer.start()
    print("READY", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        observer.stop()


if __name__ == "__main__":
    main()
