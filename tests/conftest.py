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
