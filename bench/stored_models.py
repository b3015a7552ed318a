"""Shared by the benches that re-score stored model folders (``nms_choice``, ``threshold_choice``).

A stored model folder was trained on a shared set: ``bccd`` or ``crops`` in its name select BCCD
or bee-crops, else the bee frames; its ``model.json`` lists the images of each split.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from customlabels.core.dataset import ImageRecord
from customlabels.formats.groundtruth import load_ground_truth

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"


def dataset_manifest(folder: Path) -> Path:
    """The shared set's manifest a stored model folder was trained on (named in the docstring)."""
    name = folder.name
    dataset = "bccd" if "bccd" in name else "bee-crops" if "crops" in name else "bees"
    return DATASETS / dataset / "output.manifest"


def split_records(folder: Path, splits: tuple[str, ...]) -> dict[str, list[ImageRecord]]:
    """The ground-truth records of each of ``splits`` of the model in ``folder``."""
    images = json.loads((folder / "model.json").read_text())["dataset"]["images"]
    records = load_ground_truth(dataset_manifest(folder)).images
    return {s: [r for r in records if r.ref in set(images[s])] for s in splits}


def report_per_model(
    doc: str | None, header: list[str], rows: Callable[[Path], list[str]], results: Path
) -> None:
    """CLI: ``rows(folder)`` for each model folder given, printed as they come, then the whole
    table (``header`` + rows) written to ``results`` and printed."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("models", type=Path, nargs="+")
    lines = list(header)
    for folder in parser.parse_args().models:
        new = rows(folder)
        print("\n".join(new), flush=True)
        lines += new
    results.write_text("\n".join(lines) + "\n")
    print(results.read_text())
