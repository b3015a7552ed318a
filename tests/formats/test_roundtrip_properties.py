"""Property tests: every writable detection format gives back every box, to the pixel."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from customlabels.core.dataset import Dataset, ImageRecord, LabelMap, Task
from customlabels.formats import available_formats, load, save

LABELS = ["bee", "drone", "queen"]


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    """1–3 images of 64–300 px with 0–6 integer-pixel boxes each (at least 1 px a side)."""
    images = []
    for i in range(draw(st.integers(1, 3))):
        w, h = draw(st.integers(64, 300)), draw(st.integers(64, 300))
        boxes, ids = [], []
        for _ in range(draw(st.integers(0, 6))):
            x1 = draw(st.integers(0, w - 2))
            y1 = draw(st.integers(0, h - 2))
            x2 = draw(st.integers(x1 + 2, w))
            y2 = draw(st.integers(y1 + 2, h))
            boxes.append([x1, y1, x2, y2])
            ids.append(draw(st.integers(0, len(LABELS) - 1)))
        images.append(
            ImageRecord(
                ref=f"img{i}.png",
                size_wh=(w, h),
                boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
                box_labels=ids,
                extra={"task": Task.OBJECT_LOCALIZATION},
            )
        )
    return Dataset(labels=LabelMap(LABELS), images=images)


def _boxes_by_name(ds: Dataset) -> dict[str, list[tuple[str, tuple[float, ...]]]]:
    return {
        im.name: sorted(
            (ds.labels.name_of(int(c)), tuple(np.round(b, 6)))
            for b, c in zip(im.boxes, im.box_labels, strict=True)
        )
        for im in ds
    }


DETECTION_WRITERS = ["coco", "groundtruth", "voc", "yolo"]


def test_the_registry_lists_every_format() -> None:
    assert available_formats() == ["coco", "folders", "groundtruth", "voc", "yolo"]
    assert available_formats(writable=True) == ["coco", "folders", "groundtruth", "voc", "yolo"]


@pytest.mark.parametrize("fmt", DETECTION_WRITERS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ds=datasets())
def test_round_trip_keeps_every_box(fmt: str, ds: Dataset) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for im in ds:
            assert im.size_wh is not None
            Image.new("RGB", im.size_wh, (40, 90, 160)).save(root / im.ref)
            im.path = root / im.ref
        target = {"coco": root / "c.json", "groundtruth": root / "o.manifest"}.get(fmt, root / fmt)
        save(fmt, ds, target)
        options = {"voc": {"images_dir": root}}.get(fmt, {})
        back = load(fmt, target, **options)
        assert _boxes_by_name(back) == _boxes_by_name(ds)
        assert {im.name: im.size_wh for im in back} == {im.name: im.size_wh for im in ds}


@settings(max_examples=30, deadline=None)
@given(
    x=st.floats(0, 1000),
    y=st.floats(0, 1000),
    w=st.floats(4, 1000),
    h=st.floats(4, 1000),
)
def test_yolo_text_round_trip_is_sub_pixel(x: float, y: float, w: float, h: float) -> None:
    from customlabels.formats import ValidationReport
    from customlabels.formats.yolo import dataset_to_yolo_labels, parse_yolo_labels

    size = (int(x + w) + 1, int(y + h) + 1)
    box = np.array([[x, y, x + w, y + h]])
    text = dataset_to_yolo_labels(box, np.array([0]), size)
    back, ids = parse_yolo_labels(text, size, 1, ValidationReport(), 1, "t")
    np.testing.assert_allclose(back, box, atol=1e-4)
    assert ids.tolist() == [0]
