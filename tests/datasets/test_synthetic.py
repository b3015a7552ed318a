"""The generated sample: valid for the service's rules, deterministic, learnable layout."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from customlabels.core.dataset import Task
from customlabels.datasets.synthetic import SHAPES, SampleConfig, generate_sample
from customlabels.datasets.validate import validate_manifest
from customlabels.errors import InvalidParameterError
from customlabels.formats import load


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def test_detection_sample_validates(tmp_path: Path) -> None:
    manifest = generate_sample(tmp_path / "a", n_images=30, seed=3)
    report = validate_manifest(manifest)
    assert report.usable and not report.errors
    ds = load("groundtruth", manifest)
    assert len(ds) == 30 and ds.task == Task.OBJECT_LOCALIZATION
    assert set(ds.labels.names) <= set(SHAPES) and len(ds.labels) >= 2
    assert ds.num_boxes >= 30
    assert all(im.size_wh == (256, 192) for im in ds)
    assert report.ignored_lines == {im.line for im in ds if not len(im.boxes)}


def test_same_seed_same_files(tmp_path: Path) -> None:
    generate_sample(tmp_path / "a", n_images=5, seed=1)
    generate_sample(tmp_path / "b", n_images=5, seed=1)
    generate_sample(tmp_path / "c", n_images=5, seed=2)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


def test_classification_sample(tmp_path: Path) -> None:
    manifest = generate_sample(
        tmp_path, n_images=9, config=SampleConfig(task=Task.IMAGE_LEVEL_LABELS)
    )
    report = validate_manifest(manifest)
    assert report.usable
    assert report.labels == {s: {"images": 3, "boxes": 0} for s in SHAPES}


@pytest.mark.parametrize(
    ("n", "config"),
    [(0, SampleConfig()), (3, SampleConfig(size_wh=(48, 200))), (3, SampleConfig(max_side=300))],
)
def test_bad_parameters(tmp_path: Path, n: int, config: SampleConfig) -> None:
    with pytest.raises(InvalidParameterError, match="synthetic sample"):
        generate_sample(tmp_path, n_images=n, config=config)
