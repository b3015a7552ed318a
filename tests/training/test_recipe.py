"""The automatic recipe follows the dataset statistics and leaves user-set fields alone."""

from __future__ import annotations

import numpy as np
import pytest

from customlabels.core.dataset import ImageRecord, Task
from customlabels.training.config import TrainConfig
from customlabels.training.recipe import auto_config, max_views, summarize


def _records(size_wh: tuple[int, int], box_px: float, n: int = 5) -> list[ImageRecord]:
    box = np.array([[10.0, 10.0, 10.0 + box_px, 10.0 + box_px]])
    return [
        ImageRecord(ref=f"i{i}.jpg", size_wh=size_wh, boxes=box, box_labels=[0]) for i in range(n)
    ]


@pytest.mark.parametrize(
    ("size_wh", "box_px", "expected_wh", "small"),
    [
        ((1920, 1080), 44.0, (1280, 736), True),  # bee frames: small objects, capped long side
        ((640, 480), 100.0, (384, 288), False),  # BCCD-like: large cells
        ((480, 640), 20.0, (960, 1280), False),  # portrait, 20-px objects -> 40 px
    ],
)
def test_input_size_from_object_size(
    size_wh: tuple[int, int], box_px: float, expected_wh: tuple[int, int], small: bool
) -> None:
    summary = summarize(_records(size_wh, box_px), Task.OBJECT_LOCALIZATION)
    config, notes = auto_config(TrainConfig(), {}, summary)
    assert config.task == "detection"
    assert (config.input.width, config.input.height) == expected_wh
    assert config.input.crop <= 320
    assert (config.augment.scale_max > TrainConfig().augment.scale_max) == small
    assert notes


def test_user_fields_win() -> None:
    summary = summarize(_records((1920, 1080), 44.0), Task.OBJECT_LOCALIZATION)
    base = TrainConfig.from_dict({"input": {"width": 320, "height": 320}})
    config, _ = auto_config(base, {"input": {"width": 320, "height": 320}}, summary)
    assert (config.input.width, config.input.height) == (320, 320)


def test_classification_recipe() -> None:
    recs = [ImageRecord(ref="a.jpg", size_wh=(100, 100), image_labels=[0])]
    config, _ = auto_config(TrainConfig(), {}, summarize(recs, Task.IMAGE_LEVEL_LABELS))
    assert config.task == "classification"
    assert (config.input.width, config.input.height) == (224, 224)


def test_view_cap_follows_memory() -> None:
    small = TrainConfig.from_dict({"input": {"width": 320, "height": 320}})
    large = TrainConfig.from_dict({"input": {"width": 960, "height": 960}})
    assert max_views(small, 400) > max_views(large, 400) >= 1
    assert max_views(large, 100_000) == 1
