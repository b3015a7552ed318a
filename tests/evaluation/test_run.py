"""``evaluate`` on real tiny models: outputs, honest thresholds, model card, and the
evaluation manifest read back through the Ground Truth importer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from customlabels.cli.main import app
from customlabels.core.model_card import ModelCard
from customlabels.evaluation import classification_metrics, detection_metrics
from customlabels.evaluation.manifest import DETAILS_KEY, PREDICTIONS_KEY
from customlabels.evaluation.outcomes import Kind
from customlabels.evaluation.outputs import EvaluationOutput
from customlabels.evaluation.summary import format_table
from customlabels.formats.groundtruth import load_ground_truth

SERVICE_KEYS = {
    "Version",
    "EvaluationDetails",
    "AggregatedEvaluationResults",
    "LabelEvaluationResults",
}


def _strict_json(path: Path) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"{path}: non-standard JSON constant {name}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_detector_outputs_and_summary_shape(detector_eval: EvaluationOutput) -> None:
    out_dir = detector_eval.files["summary"].parent
    assert out_dir.name == "evaluation"  # default: MODEL_DIR/evaluation
    for name in (
        "EvaluationSummary.json",
        "evaluation.manifest",
        "pr_curves.png",
        "f1_confidence.png",
        "report.html",
    ):
        assert (out_dir / name).stat().st_size > 0, name
    summary = _strict_json(out_dir / "EvaluationSummary.json")
    assert summary.keys() >= SERVICE_KEYS
    agg = summary["AggregatedEvaluationResults"]
    for key in (
        "Precision",
        "Recall",
        "F1Score",
        "AveragePrecision",
        "AverageRecall",
        "AveragePrecision50_95",
        "Intervals95",
    ):
        assert key in agg, key
    ev = detector_eval.evaluation
    assert summary["EvaluationDetails"]["NumberOfTestingImages"] == len(ev.records) == 8
    f1s = [x["Metrics"]["F1Score"] for x in summary["LabelEvaluationResults"]]
    assert f1s == sorted(f1s, key=lambda v: -1 if v is None else v, reverse=True)
    for item in summary["LabelEvaluationResults"]:
        assert {"F1Score", "Precision", "Recall", "Threshold"} <= item["Metrics"].keys()
        assert {"Threshold", "F1Score", "Note"} <= item["TestOptimal"].keys()
        lo, hi = item["Intervals95"]["F1Score"]
        f1 = item["Metrics"]["F1Score"]
        if lo is not None and f1 is not None:
            assert lo <= f1 + 1e-9 and f1 <= hi + 1e-9


def test_thresholds_come_from_the_card_not_the_test_set(detector_eval: EvaluationOutput) -> None:
    ev = detector_eval.evaluation
    for item in detector_eval.summary["LabelEvaluationResults"]:
        name = item["Label"]
        assert item["ThresholdSource"] == "validation"
        assert item["Metrics"]["Threshold"] == pytest.approx(ev.card.thresholds[name], abs=1e-6)
    # the reported numbers are exactly the metrics at the card's thresholds
    direct = detection_metrics(ev.records, ev.preds, ev.labels, ev.card.thresholds)
    assert direct.f1 == pytest.approx(ev.metrics.f1)
    assert direct.map50 == pytest.approx(ev.metrics.map50)
    # and the test-optimal F1 is never below the one at the assumed threshold
    for m in ev.metrics.per_label.values():
        if m.num_gt:
            assert m.best.f1 >= m.at_threshold.f1 - 1e-12


def test_few_instances_are_warned(detector_eval: EvaluationOutput) -> None:
    ev = detector_eval.evaluation
    few = [n for n, m in ev.metrics.per_label.items() if m.num_gt < 20]
    assert few  # 8 test images: the rare labels are rare
    for name in few:
        assert any(repr(name) in w for w in detector_eval.summary["Warnings"]), name


@pytest.mark.parametrize("which", ["detector_eval", "classifier_eval"])
def test_outcomes_add_up_to_the_metrics(which: str, request: pytest.FixtureRequest) -> None:
    ev = request.getfixturevalue(which).evaluation
    outcomes = ev.outcomes()
    for c, name in enumerate(ev.labels):
        at = ev.metrics.per_label[name].at_threshold
        got = {
            k: sum(1 for o in outcomes for i in o.items if i.label == c and i.kind == k)
            for k in Kind
        }
        assert (got[Kind.TRUE_POSITIVE], got[Kind.FALSE_POSITIVE], got[Kind.FALSE_NEGATIVE]) == (
            at.tp,
            at.fp,
            at.fn,
        ), name


def test_model_card_gets_test_metrics(detector_eval: EvaluationOutput) -> None:
    model_dir = detector_eval.files["summary"].parent.parent
    card = ModelCard.load(model_dir)
    test = card.metrics["test"]
    assert test["num_images"] == 8
    assert test["f1"] == pytest.approx(detector_eval.evaluation.metrics.f1, abs=1e-6)
    assert "validation" in card.metrics  # training's block kept
    json.loads((model_dir / "model.json").read_text(), parse_constant=lambda c: 1 / 0)


def test_evaluation_manifest_round_trip(
    detector_eval: EvaluationOutput, detector_test_set: tuple[Path, dict[str, Path]]
) -> None:
    manifest, buckets = detector_test_set
    path = detector_eval.files["manifest"]
    original = load_ground_truth(manifest, bucket_map=buckets)
    again = load_ground_truth(path, bucket_map=buckets)
    assert [r.ref for r in again.images] == [r.ref for r in original.images]
    assert again.labels == original.labels
    for a, b in zip(again.images, original.images, strict=True):
        np.testing.assert_array_equal(a.boxes, b.boxes)  # predictions are not imported as labels
        np.testing.assert_array_equal(a.box_labels, b.box_labels)
        assert a.path == b.path
    outcomes = detector_eval.evaluation.outcomes()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    n_fn = n_tp_gt = 0
    meta_key = PREDICTIONS_KEY + "-metadata"
    for line, out in zip(lines, outcomes, strict=True):
        block, meta = line[PREDICTIONS_KEY], line[PREDICTIONS_KEY + "-metadata"]
        flags = [o[DETAILS_KEY] for o in meta["objects"]]
        assert len(flags) == len(block["annotations"])
        assert sum(f["is-true-positive"] for f in flags) == out.count(Kind.TRUE_POSITIVE)
        assert sum(f["is-false-positive"] for f in flags) == out.count(Kind.FALSE_POSITIVE)
        assert len(block["missed"]) == out.count(Kind.FALSE_NEGATIVE)
        for key, value in line.items():
            if key.endswith("-metadata") and "objects" in value and key != meta_key:
                details = [o.get(DETAILS_KEY) for o in value["objects"]]
                n_fn += sum(1 for d in details if d and d["is-false-negative"])
                n_tp_gt += sum(1 for d in details if d and d["is-true-positive"])
    assert n_fn == sum(o.count(Kind.FALSE_NEGATIVE) for o in outcomes)
    assert n_tp_gt == sum(o.count(Kind.TRUE_POSITIVE) for o in outcomes)


def test_label_scores_reach_below_the_assumed_threshold(
    tiny_detector_dir: Path,
    detector_test_set: tuple[Path, dict[str, Path]],
    scripted_evaluation: Callable[..., EvaluationOutput],
    tmp_path: Path,
) -> None:
    """label_scores.json keeps every prediction from the 1 % floor up: at the assumed threshold
    it gives the summary's counts, and it holds the lower ones the manifest leaves out."""
    from customlabels.evaluation.curves import scores_at_threshold

    manifest, buckets = detector_test_set
    out = scripted_evaluation(tiny_detector_dir, manifest, tmp_path / "evaluation", buckets)
    stored = _strict_json(out.files["scores"])
    assert stored["floor"] == 0.01
    metrics = out.evaluation.metrics
    assert stored["labels"].keys() == metrics.per_label.keys()
    below = 0
    for name, entry in stored["labels"].items():
        pairs = entry["scores"]
        assert all(c >= 0.01 for c, _ in pairs)
        assert [c for c, _ in pairs] == sorted((c for c, _ in pairs), reverse=True)
        assert entry["num_gt"] == metrics.per_label[name].num_gt
        at = scores_at_threshold(
            [c for c, _ in pairs], [t for _, t in pairs], entry["num_gt"], entry["threshold"]
        )
        mine = metrics.per_label[name].at_threshold
        assert (at.tp, at.fp) == (mine.tp, mine.fp)
        below += sum(1 for c, _ in pairs if c < entry["threshold"])
    assert below > 0
    # the manifest still keeps only what the served model returns (at the thresholds)
    lines = [json.loads(x) for x in out.files["manifest"].read_text().splitlines()]
    kept = [o["confidence"] for x in lines for o in x[PREDICTIONS_KEY + "-metadata"]["objects"]]
    assert kept and min(kept) >= 0.5
    total = sum(len(e["scores"]) for e in stored["labels"].values())
    assert total == len(kept) + below


@pytest.mark.parametrize("which", ["detector", "classifier"])
def test_the_evaluation_manifest_passes_dataset_validate(
    which: str, request: pytest.FixtureRequest
) -> None:
    """What ``evaluate`` writes, ``dataset validate`` reads without a problem of its own: the
    predictions are typed as such, not taken for a label attribute (issue 12)."""
    ev: EvaluationOutput = request.getfixturevalue(f"{which}_eval")
    manifest, buckets = request.getfixturevalue(f"{which}_test_set")
    bucket_map = [f"{b}={folder}" for b, folder in buckets.items()]
    args = ["dataset", "validate", "--json", "--bucket-map", *bucket_map]
    original = json.loads(CliRunner().invoke(app, [*args[:2], str(manifest), *args[2:]]).stdout)
    result = CliRunner().invoke(app, [*args[:2], str(ev.files["manifest"]), *args[2:]])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    stats = summary["statistics"]
    assert stats["invalid_json_lines"] == 0 and stats["valid_json_lines"] == len(
        ev.evaluation.records
    )
    assert summary["labels"] == original["labels"]
    # no problem the test manifest itself does not have
    assert {i["code"] for i in summary["issues"]} <= {i["code"] for i in original["issues"]}


def test_classifier_evaluation(classifier_eval: EvaluationOutput) -> None:
    files = classifier_eval.files
    assert files["confusion_matrix"].stat().st_size > 0
    summary = _strict_json(files["summary"])
    agg = summary["AggregatedEvaluationResults"]
    assert "ConfusionMatrix" in agg and "Accuracy" in agg and "AverageRecall" not in agg
    ev = classifier_eval.evaluation
    direct = classification_metrics(
        ev.records, ev.preds, ev.labels, ev.card.thresholds, multi_label=ev.card.multi_label
    )
    assert agg["Accuracy"] == pytest.approx(direct.accuracy, abs=1e-6)
    assert int(direct.confusion.sum()) == 16
    rows: dict[str, float] = {}
    for cell in agg["ConfusionMatrix"]:
        rows[cell["GroundTruthLabel"]] = rows.get(cell["GroundTruthLabel"], 0) + cell["Value"]
    assert all(v == pytest.approx(1.0) for v in rows.values())  # normalized per true label


def test_classifier_manifest_round_trip(
    classifier_eval: EvaluationOutput, classifier_test_set: tuple[Path, dict[str, Path]]
) -> None:
    manifest, buckets = classifier_test_set
    again = load_ground_truth(classifier_eval.files["manifest"], bucket_map=buckets)
    original = load_ground_truth(manifest, bucket_map=buckets)
    assert [(r.ref, r.image_labels) for r in again.images] == [
        (r.ref, r.image_labels) for r in original.images
    ]
    lines = [json.loads(x) for x in classifier_eval.files["manifest"].read_text().splitlines()]
    flagged = [
        v[DETAILS_KEY]
        for x in lines
        for k, v in x.items()
        if k.endswith("-metadata") and DETAILS_KEY in v
    ]
    assert len(flagged) == 16  # every true label is flagged found or missed
    assert all(f["is-true-positive"] != f["is-false-negative"] for f in flagged)


def test_real_predictions_match_pycocotools(detector_eval: EvaluationOutput) -> None:
    """The tiny detector's own ONNX predictions (up to 1000 a frame), against pycocotools."""
    from ._coco import coco_reference

    ev = detector_eval.evaluation
    ref = coco_reference(ev.records, ev.preds, len(ev.labels))
    for key in ("ap50", "ap50_95", "ar"):
        ours = np.array([getattr(ev.metrics.per_label[x], key) for x in ev.labels])
        np.testing.assert_allclose(np.where(np.isnan(ours), -1, ours), ref[key], atol=1e-4)
    assert sum(len(p) for p in ev.preds) > 1000  # a real, crowded set of predictions


def test_skipped_test_lines_are_reported(
    tmp_path: Path, tiny_detector_dir: Path, detector_test_set: tuple[Path, dict[str, Path]]
) -> None:
    from customlabels.evaluation.run import evaluate

    manifest, buckets = detector_test_set
    lines = manifest.read_text().splitlines()
    missing = json.loads(lines[0])
    missing["source-ref"] = missing["source-ref"].rsplit("/", 1)[0] + "/no-such-image.jpg"
    broken = tmp_path / "broken.manifest"
    broken.write_text("\n".join([*lines[:3], "{not json", json.dumps(missing)]) + "\n")
    ev = evaluate(tiny_detector_dir, broken, bucket_map=buckets, n_boot=20)
    assert len(ev.records) == 3
    first = ev.warnings[0]
    assert first.startswith("test manifest: 2 of 5 line(s) skipped")
    assert "ERROR_INVALID_JSON_LINE" in first and "3 usable image(s)" in first


def test_calibration_intervals_and_data_advice_are_reported(
    detector_eval: EvaluationOutput,
) -> None:
    """The tiny detector's card carries a calibration: the summary gives the ECE of its
    confidences and of its raw scores, says what the intervals cover, and the data behind
    each label; the report has the reliability diagram."""
    out_dir = detector_eval.files["summary"].parent
    assert (out_dir / "reliability.png").stat().st_size > 0
    summary = detector_eval.summary
    cal = summary["Calibration"]
    assert cal["Calibrated"] and 0 <= cal["ECE"] <= 1 and 0 <= cal["ECERaw"] <= 1
    assert sum(cal["Confidence"]["Bins"]["Count"]) == cal["Confidence"]["Predictions"] > 0
    cover = summary["IntervalsCover"]
    assert "8 test images" in cover["Covers"] and "New cameras" in cover["DoesNotCover"]
    labels = {e["label"]: e for e in summary["DataAdvice"]["labels"]}
    assert set(labels) == set(detector_eval.evaluation.labels)
    assert all(e["validation_instances"] is not None for e in labels.values())
    assert sum(e["test_instances"] for e in labels.values()) == sum(
        len(r.boxes) for r in detector_eval.evaluation.records
    )
    text = format_table(summary)
    assert "calibration error (ECE" in text and "not covered:" in text
