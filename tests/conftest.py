"""Shared fixtures: where the real datasets are, and skips that say why."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATASETS = SHARED / "datasets"
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """``../shared/datasets``; tests that need real data fail loudly without it."""
    if not DATASETS.is_dir():
        pytest.fail(f"real datasets not found at {DATASETS} (expected ../shared/datasets)")
    return DATASETS


@pytest.fixture(scope="session")
def bees_manifest(datasets_dir: Path) -> Path:
    return datasets_dir / "bees" / "output.manifest"


@pytest.fixture(scope="session")
def bccd_manifest(datasets_dir: Path) -> Path:
    return datasets_dir / "bccd" / "output.manifest"


@pytest.fixture(scope="session")
def bee_crops_manifest(datasets_dir: Path) -> Path:
    return datasets_dir / "bee-crops" / "output.manifest"


@pytest.fixture(scope="session")
def bccd_buckets(tmp_path_factory: pytest.TempPathFactory, bccd_manifest: Path) -> Path:
    """A ``--buckets`` folder holding bucket ``bccd-demo``: 12 real BCCD images (copied) and
    their Ground Truth manifest at ``manifests/train.manifest`` (service area)."""
    import shutil

    root = tmp_path_factory.mktemp("buckets")
    bucket = root / "bccd-demo"
    lines = [line for line in bccd_manifest.read_text().splitlines() if line.strip()][:12]
    for line in lines:
        key = line.split('"source-ref": "s3://bccd-demo/', 1)[1].split('"', 1)[0]
        (bucket / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bccd_manifest.parent / key, bucket / key)
    (bucket / "manifests").mkdir()
    (bucket / "manifests" / "train.manifest").write_text("\n".join(lines) + "\n")
    (root / "models-out").mkdir()
    return root
