from __future__ import annotations

import json
import os
import time
from pathlib import Path

from customlabels.pipeline.reconciler import find_unprocessed
from customlabels.pipeline.watcher import SettleTracker
from customlabels.storage import LocalStore


def _touch(store: LocalStore, key: str, data: bytes = b"x", mtime: float | None = None) -> None:
    store.put(key, data)
    if mtime is not None:
        os.utime(store.path(key), (mtime, mtime))


def test_finds_inputs_without_current_outputs(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    old = time.time() - 100
    _touch(store, "test_images/new.jpg", mtime=old)
    _touch(store, "test_images/done.jpg", mtime=old)
    _touch(store, "test_images/done.jpg.json", json.dumps({"ModelVersion": "m@1"}).encode())
    _touch(store, "test_images/bad.jpg", mtime=old)
    _touch(store, "test_images/bad.jpg.error.json", json.dumps({"ModelVersion": "m@1"}).encode())
    _touch(store, "test_images/stale.jpg", mtime=old)
    _touch(store, "test_images/stale.jpg.json", b"{}", mtime=old - 10)  # image newer than result
    _touch(store, "test_images/deep/er/x.png", mtime=old)
    _touch(store, "outside/y.jpg", mtime=old)
    _touch(store, "test_images/.tmp-1.part", mtime=old)
    found = [o.key for o in find_unprocessed(store, "test_images/")]
    assert found == ["test_images/deep/er/x.png", "test_images/new.jpg", "test_images/stale.jpg"]
    # deep pass: outputs of another model version are stale too
    deep = [o.key for o in find_unprocessed(store, "test_images/", model_version="m@2")]
    assert deep == [
        "test_images/bad.jpg",
        "test_images/deep/er/x.png",
        "test_images/done.jpg",
        "test_images/new.jpg",
        "test_images/stale.jpg",
    ]
    assert [o.key for o in find_unprocessed(store, "test_images/", under="test_images/deep/")] == [
        "test_images/deep/er/x.png"
    ]


def test_settle_tracker_holds_back_a_file_still_being_written(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    tracker = SettleTracker(store, settle_s=0.3)
    path = tmp_path / "test_images" / "growing.jpg"
    path.parent.mkdir()
    with path.open("wb") as fh:
        fh.write(b"a" * 100)
        fh.flush()
        tracker.note("test_images/growing.jpg", force=True)
        tracker.note("test_images/gone.jpg")
        assert tracker.ready() == ([], [])  # modified just now
        assert len(tracker) == 1  # the missing one is dropped
        time.sleep(0.2)
        fh.write(b"b" * 100)
        fh.flush()
        assert tracker.ready() == ([], [])  # grew
    time.sleep(0.35)
    assert tracker.ready() == ([], ["test_images/growing.jpg"])
    assert len(tracker) == 0
    old = time.time() - 60
    _touch(store, "test_images/old.jpg", mtime=old)
    tracker.note("test_images/old.jpg")
    assert tracker.ready() == (["test_images/old.jpg"], [])  # a settled file goes at once
