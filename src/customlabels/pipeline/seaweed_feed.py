"""SeaweedFS's metadata feed as an event source: ``weed filer.meta.tail`` run as a child process.

The filer streams every metadata change as a JSON object (pretty-printed, back to back):
``{"directory", "eventNotification": {"oldEntry", "newEntry": {"name", "isDirectory",
"attributes": {"md5" (base64)}}, "newParentPath"}, "tsNs"}``. A new or replaced file under
``/buckets/<bucket>/<prefix>`` becomes an :class:`ObjectEvent` with its key and ETag (the hex of
the MD5, what S3 reports for a single-part upload). Deletions and folders are dropped.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import queue
import subprocess
import threading
from typing import IO, Any

from customlabels.errors import ConfigError
from customlabels.pipeline.events import ObjectEvent
from customlabels.pipeline.local_servers import find_weed

__all__ = ["SeaweedMetaFeed", "parse_meta_event", "split_json_stream"]

log = logging.getLogger(__name__)


def split_json_stream(buffer: str) -> tuple[list[Any], str]:
    """Complete JSON values at the start of ``buffer`` and the unparsed rest."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    pos = 0
    while True:
        while pos < len(buffer) and buffer[pos].isspace():
            pos += 1
        if pos >= len(buffer):
            return values, ""
        try:
            value, end = decoder.raw_decode(buffer, pos)
        except ValueError:
            return values, buffer[pos:]  # incomplete: wait for more text
        values.append(value)
        pos = end


def parse_meta_event(doc: dict[str, Any], bucket: str) -> ObjectEvent | None:
    """The created/replaced object in one feed record, or None (folder, deletion, elsewhere)."""
    note = doc.get("eventNotification") or {}
    entry = note.get("newEntry")
    if not isinstance(entry, dict) or entry.get("isDirectory"):
        return None
    parent = note.get("newParentPath") or doc.get("directory") or ""
    root = f"/buckets/{bucket}/"
    path = f"{parent.rstrip('/')}/{entry.get('name', '')}"
    if not path.startswith(root):
        return None
    etag = None
    md5 = (entry.get("attributes") or {}).get("md5")
    if md5:
        try:
            etag = base64.b64decode(md5).hex()
        except (binascii.Error, ValueError):
            etag = None
    size = (entry.get("attributes") or {}).get("fileSize")
    return ObjectEvent(bucket, path[len(root) :], etag, int(size) if size else None)


class SeaweedMetaFeed:
    """Runs ``weed filer.meta.tail`` for one bucket prefix; events arrive on :attr:`events`.

    Args:
        filer: ``host:port`` of the SeaweedFS filer (HTTP port; gRPC is that + 10000).
        bucket: the S3 bucket (``/buckets/<bucket>`` on the filer).
        prefix: only keys under it.
        weed: the ``weed`` binary (default: next to this Python, then ``$PATH``).
    """

    def __init__(self, filer: str, bucket: str, prefix: str = "", weed: str | None = None) -> None:
        exe = weed or find_weed()
        self.bucket = bucket
        self.events: queue.Queue[ObjectEvent] = queue.Queue()
        self._proc = subprocess.Popen(
            [exe, "filer.meta.tail", f"-filer={filer}", f"-pathPrefix=/buckets/{bucket}/{prefix}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
        )
        stdout = self._proc.stdout
        if stdout is None:  # cannot happen with stdout=PIPE; keeps the type checker informed
            raise ConfigError("weed filer.meta.tail: no output pipe")
        self._reader = threading.Thread(target=self._read, args=(stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        buffer = ""
        for line in stream:
            buffer += line
            if not line.startswith("}"):
                continue  # records end with a closing brace at column 0
            values, buffer = split_json_stream(buffer)
            for doc in values:
                event = parse_meta_event(doc, self.bucket) if isinstance(doc, dict) else None
                if event is not None:
                    self.events.put(event)

    def alive(self) -> bool:
        return self._proc.poll() is None

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._reader.join(timeout=5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
