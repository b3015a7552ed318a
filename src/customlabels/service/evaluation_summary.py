"""After training: the evaluation summary and manifest summary of a model version.

Files are written under ``<home>/models/<project>/<version>/output/`` and, when the version's
``OutputConfig`` names a bucket, copied there with the model itself under
``<S3KeyPrefix><project>/<version>/`` (``model.onnx``, ``model.json``,
``EvaluationResultSummary.json``, ``ManifestSummary.json``).

The summary is the evaluation area's ``evaluation/EvaluationSummary.json`` when training wrote
one; otherwise it is built from the model card's test metrics.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from customlabels.core.model_card import CARD_NAME, ONNX_NAME, ModelCard
from customlabels.errors import InvalidParameterError
from customlabels.service.buckets import Buckets
from customlabels.service.catalog import VersionRow

__all__ = ["Results", "output_key", "publish_results", "test_f1"]

SUMMARY_NAME = "EvaluationResultSummary.json"
MANIFEST_SUMMARY_NAME = "ManifestSummary.json"


@dataclass
class Results:
    f1_score: float | None
    summary_key: str
    manifest_summary_key: str


def output_key(row: VersionRow, name: str) -> str:
    """Key of an output file in the version's output bucket."""
    return f"{row.output_prefix}{row.project.name}/{row.name}/{name}"


def _find_f1(metrics: Any) -> float | None:
    """The aggregate F1 in a metrics dict, whichever spelling the writer used."""
    if not isinstance(metrics, dict):
        return None
    for key in ("F1Score", "f1", "f1_score", "F1"):
        value = metrics.get(key)
        if isinstance(value, int | float):
            return float(value) if math.isfinite(value) else None
    for key in ("AggregatedEvaluationResults", "overall", "aggregate", "summary"):
        found = _find_f1(metrics.get(key))
        if found is not None:
            return found
    return None


def test_f1(card: ModelCard) -> float | None:
    """Aggregate F1 on the test set (validation when there was no test set)."""
    for split in ("test", "validation"):
        found = _find_f1(card.metrics.get(split))
        if found is not None:
            return found
    return None


def _summary(model_dir: Path, card: ModelCard, row: VersionRow) -> dict[str, Any]:
    written = model_dir / "evaluation" / "EvaluationSummary.json"
    if written.is_file():
        data: dict[str, Any] = json.loads(written.read_text())
        return data
    test = card.metrics.get("test") or {}
    return {
        "Version": 1,
        "EvaluationDetails": {
            "EvaluationEndTimestamp": card.training.get("finished_at"),
            "Labels": card.labels,
            "NumberOfTrainingImages": len(card.dataset.get("images", {}).get("train", [])),
            "NumberOfTestingImages": len(card.dataset.get("images", {}).get("test", [])),
            "ProjectVersionArn": row.arn,
        },
        "AggregatedEvaluationResults": {"F1Score": test_f1(card), "Metrics": test},
        "LabelEvaluationResults": [
            {"Label": name, "Threshold": card.threshold_for(name)} for name in card.labels
        ],
    }


def _manifest_summary(version_dir: Path, card: ModelCard) -> dict[str, Any]:
    """Line counts of the job's input, split as training actually used it (from the card)."""
    path = version_dir / "input" / "train.manifest"
    total = sum(1 for line in path.read_text().splitlines() if line.strip())
    test_path = version_dir / "input" / "test.manifest"
    if test_path.is_file():
        total += sum(1 for line in test_path.read_text().splitlines() if line.strip())
    images = card.dataset.get("images", {})
    used = {split: len(images.get(split, [])) for split in ("train", "validation", "test")}
    return {
        "version": 1,
        "statistics": {
            "total_json_lines": total,
            "valid_json_lines": sum(used.values()),
            "invalid_json_lines": total - sum(used.values()),
            "training_json_lines": used["train"],
            "validation_json_lines": used["validation"],
            "testing_json_lines": used["test"],
        },
        "errors": [],
    }


def publish_results(row: VersionRow, buckets: Buckets) -> Results:
    """Write the summaries (and copy the model to the output bucket, if any).

    Raises:
        InvalidParameterError: the model folder has no model card (training wrote nothing).
        InvalidS3ObjectError: the output bucket cannot be written.
    """
    model_dir = Path(row.model_dir)
    if not (model_dir / CARD_NAME).is_file() or not (model_dir / ONNX_NAME).is_file():
        raise InvalidParameterError(f"{model_dir}: training wrote no {CARD_NAME} / {ONNX_NAME}")
    card = ModelCard.load(model_dir)
    version_dir = model_dir.parent
    out_dir = version_dir / "output"
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = _summary(model_dir, card, row)
    manifest_summary = _manifest_summary(version_dir, card)
    files = {
        SUMMARY_NAME: json.dumps(summary, indent=2).encode(),
        MANIFEST_SUMMARY_NAME: json.dumps(manifest_summary, indent=2).encode(),
    }
    for name, data in files.items():
        (out_dir / name).write_bytes(data)
    f1 = _find_f1(summary.get("AggregatedEvaluationResults"))
    if f1 is None:
        f1 = test_f1(card)
    if not row.output_bucket:
        return Results(f1, "", "")
    store = buckets.store(row.output_bucket)
    for name, data in files.items():
        store.put(output_key(row, name), data)
    for name in (CARD_NAME, ONNX_NAME):
        store.put(
            output_key(row, name), (model_dir / name).read_bytes(), "application/octet-stream"
        )
    evaluation = model_dir / "evaluation"
    for path in sorted(evaluation.glob("*")) if evaluation.is_dir() else []:
        if path.is_file():  # the evaluation manifest, summary, plots and report
            data = path.read_bytes()
            store.put(output_key(row, f"evaluation/{path.name}"), data, "application/octet-stream")
    return Results(f1, output_key(row, SUMMARY_NAME), output_key(row, MANIFEST_SUMMARY_NAME))
