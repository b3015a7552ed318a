"""Core-area fixtures: the crafted 20000×20000 PNG (shared with tests/datasets)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def huge_png_bytes() -> bytes:
    spec = importlib.util.spec_from_file_location(
        "datasets_conftest", Path(__file__).resolve().parents[1] / "datasets" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return bytes(module.huge_png())
