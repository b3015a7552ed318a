"""``customlabels compare``: two model versions on the same test set, side by side.

Both models predict the same images in the same process with the same thread count (median
ms per image is comparable, the first call included as a warm-up is excluded by the median).
Each is scored at its OWN assumed thresholds with the same matching. A paired bootstrap over
the test images (the same resamples for both) gives an interval for ``F1(B) − F1(A)``, overall
(micro) and per label; the difference is called significant when the interval excludes 0.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from customlabels.core.model_card import ONNX_NAME
from customlabels.errors import InvalidParameterError
from customlabels.evaluation.bootstrap import PairedDifference, paired_difference
from customlabels.evaluation.html import esc, img_tag, num, page, png_uri
from customlabels.evaluation.plots import plot_pr_curves, plot_reliability
from customlabels.evaluation.run import Evaluation, PredictorLike, evaluate

__all__ = ["ComparisonOutput", "compare_models", "format_comparison"]

NOTE = "difference = B − A; significant when its 95% interval excludes 0"


@dataclass
class ComparisonOutput:
    """The comparison dict (``--json``) and the files written."""

    summary: dict[str, Any]
    evaluations: tuple[Evaluation, Evaluation]
    files: dict[str, Path] = field(default_factory=dict)


def _num(v: float | None) -> float | None:
    return None if v is None or math.isnan(v) else round(float(v), 6)


def _size(model_dir: Path) -> int | None:
    onnx = Path(model_dir) / ONNX_NAME
    return onnx.stat().st_size if onnx.is_file() else None


def _model(name: str, model_dir: Path, ev: Evaluation) -> dict[str, Any]:
    m = ev.metrics
    overall = ev.intervals.overall
    seconds = ev.card.training.get("seconds") if isinstance(ev.card.training, dict) else None
    out: dict[str, Any] = {
        "Name": name,
        "ModelDir": str(model_dir),
        "VersionName": ev.card.version_name,
        "MedianInferenceMs": _num(ev.median_ms),
        "ModelSizeBytes": _size(model_dir),
        "TrainingSeconds": _num(float(seconds)) if isinstance(seconds, int | float) else None,
        "Precision": _num(m.precision),
        "Recall": _num(m.recall),
        "F1Score": _num(m.f1),
        "F1Interval95": overall["f1"].to_list(),
        "mAP50": _num(m.map50),
        "ECE": _num(ev.reliability.ece) if ev.reliability else None,
        "ECERaw": _num(ev.raw_reliability.ece) if ev.raw_reliability else None,
        "Calibrated": bool(ev.card.calibration),
        "Labels": {},
    }
    if ev.detection:
        out["mAP50_95"] = _num(getattr(m, "map50_95", math.nan))
    for label, lm in m.per_label.items():
        out["Labels"][label] = {
            "Threshold": _num(lm.at_threshold.threshold),
            "ThresholdSource": ev.threshold_source.get(label),
            "Precision": _num(lm.at_threshold.precision),
            "Recall": _num(lm.at_threshold.recall),
            "F1Score": _num(lm.at_threshold.f1),
            "F1Interval95": ev.intervals.per_label[label]["f1"].to_list(),
            "AP50": _num(lm.ap50),
            "AP50_95": _num(lm.ap50_95) if ev.detection else None,
            "NumberOfTestingInstances": lm.num_gt,
        }
    return out


def _differences(
    a: Evaluation, b: Evaluation, labels: list[str], n_boot: int, seed: int
) -> tuple[PairedDifference, dict[str, PairedDifference]]:
    n = len(a.records)
    pa, pb = a.metrics.per_label, b.metrics.per_label
    overall = paired_difference(
        [pa[x] for x in labels], [pb[x] for x in labels], n, n_boot=n_boot, seed=seed
    )
    per_label = {
        x: paired_difference([pa[x]], [pb[x]], n, n_boot=n_boot, seed=seed) for x in labels
    }
    return overall, per_label


def _check_same_images(a: Evaluation, b: Evaluation) -> None:
    refs_a = [r.ref for r in a.records]
    refs_b = [r.ref for r in b.records]
    if refs_a != refs_b:
        raise InvalidParameterError("the two models were not evaluated on the same test images")


def compare_models(
    model_a: Path,
    model_b: Path,
    test_manifest: Path,
    out_dir: Path | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    threads: int = 1,
    bucket_map: dict[str, Path] | None = None,
    predictors: tuple[PredictorLike, PredictorLike] | None = None,
) -> ComparisonOutput:
    """Evaluate both models on ``test_manifest`` and compare them; writes ``compare.json``,
    ``compare_pr_curves.png``, ``compare_reliability.png`` and ``compare.html`` into ``out_dir``
    when given."""
    pred_a, pred_b = predictors if predictors is not None else (None, None)
    ev_a, ev_b = (
        evaluate(
            Path(model_dir),
            Path(test_manifest),
            predictor=predictor,
            n_boot=n_boot,
            seed=seed,
            threads=threads,
            bucket_map=bucket_map,
        )
        for model_dir, predictor in ((model_a, pred_a), (model_b, pred_b))
    )
    if ev_a.card.task != ev_b.card.task:
        raise InvalidParameterError(
            f"cannot compare a {ev_a.card.task.value} model with a {ev_b.card.task.value} model"
        )
    _check_same_images(ev_a, ev_b)
    labels = [x for x in ev_a.labels if x in ev_b.labels]
    if not labels:
        raise InvalidParameterError("the two models have no label in common")
    overall, per_label = _differences(ev_a, ev_b, labels, n_boot, seed)
    name_a = ev_a.card.version_name or Path(model_a).name
    name_b = ev_b.card.version_name or Path(model_b).name
    if name_a == name_b:
        name_a, name_b = f"A: {name_a}", f"B: {name_b}"
    summary: dict[str, Any] = {
        "TestManifest": str(test_manifest),
        "NumberOfTestingImages": len(ev_a.records),
        "Task": ev_a.card.task.value,
        "Threads": threads,
        "Models": [_model(name_a, Path(model_a), ev_a), _model(name_b, Path(model_b), ev_b)],
        "CommonLabels": labels,
        "F1Difference": {
            "Note": NOTE,
            "Overall": overall.to_dict(),
            "Labels": {x: d.to_dict() for x, d in per_label.items()},
        },
        "Bootstrap": {"Resamples": n_boot, "Seed": seed, "Over": "test images (paired)"},
        "Warnings": [f"A: {w}" for w in ev_a.warnings] + [f"B: {w}" for w in ev_b.warnings],
    }
    out = ComparisonOutput(summary, (ev_a, ev_b))
    if out_dir is not None:
        out.files = _write(out, Path(out_dir), name_a, name_b)
    return out


def _write(out: ComparisonOutput, out_dir: Path, name_a: str, name_b: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": out_dir / "compare.json"}
    files["json"].write_text(json.dumps(out.summary, indent=2, allow_nan=False) + "\n")
    ev_a, ev_b = out.evaluations
    files["pr_curves"] = plot_pr_curves(
        [(name_a, ev_a.metrics), (name_b, ev_b.metrics)],
        out_dir / "compare_pr_curves.png",
        title=f"{name_a} vs {name_b}",
    )
    series = [(n, e.reliability) for n, e in ((name_a, ev_a), (name_b, ev_b)) if e.reliability]
    files["reliability"] = plot_reliability(
        series, out_dir / "compare_reliability.png", title=f"{name_a} vs {name_b}: reliability"
    )
    files["html"] = out_dir / "compare.html"
    files["html"].write_text(
        _html(out.summary, files["pr_curves"], files["reliability"]), encoding="utf-8"
    )
    return files


def _mb(v: int | None) -> str:
    return "—" if v is None else f"{v / 1e6:.1f} MB"


def _ece(m: dict[str, Any]) -> str:
    """A model's ECE on the test set, with its raw scores' in brackets when calibrated."""
    raw = f" ({num(m['ECERaw'])})" if m.get("ECERaw") is not None else ""
    return f"{num(m.get('ECE'))}{raw}"


def _html(s: dict[str, Any], pr_png: Path, reliability_png: Path) -> str:
    a, b = s["Models"]
    diff = s["F1Difference"]

    def verdict(d: dict[str, Any]) -> str:
        lo, hi = d["interval"]
        sig = "significant" if d["significant"] else "not significant"
        return f"{num(d['f1_difference'])} [{num(lo, 2)}, {num(hi, 2)}] ({sig})"

    rows = [
        ("F1 (micro, own thresholds)", num(a["F1Score"]), num(b["F1Score"])),
        ("precision", num(a["Precision"]), num(b["Precision"])),
        ("recall", num(a["Recall"]), num(b["Recall"])),
        ("mAP@0.5", num(a["mAP50"]), num(b["mAP50"])),
    ]
    if "mAP50_95" in a:
        rows.append(("mAP@[.5:.95]", num(a["mAP50_95"]), num(b["mAP50_95"])))
    rows += [
        ("calibration error (ECE)", _ece(a), _ece(b)),
        ("median ms / image", num(a["MedianInferenceMs"], 1), num(b["MedianInferenceMs"], 1)),
        ("model size (ONNX)", _mb(a["ModelSizeBytes"]), _mb(b["ModelSizeBytes"])),
        ("training time (s)", num(a["TrainingSeconds"], 0), num(b["TrainingSeconds"], 0)),
    ]
    overview = "".join(
        f'<tr><td class="l">{esc(k)}</td><td>{x}</td><td>{y}</td></tr>' for k, x, y in rows
    )
    label_rows = []
    for label in s["CommonLabels"]:
        la, lb = a["Labels"][label], b["Labels"][label]
        label_rows.append(
            f'<tr><td class="l">{esc(label)}</td><td>{la["NumberOfTestingInstances"]}</td>'
            + "".join(
                f"<td>{num(m['Threshold'], 2)}</td><td>{num(m['Precision'])}</td>"
                f"<td>{num(m['Recall'])}</td><td>{num(m['F1Score'])}</td>"
                for m in (la, lb)
            )
            + f"<td>{verdict(diff['Labels'][label])}</td></tr>"
        )
    warnings = "".join(f"<li>{esc(w)}</li>" for w in s["Warnings"])
    body = f"""
<h1>{esc(a["Name"])} vs {esc(b["Name"])}</h1>
<p class="muted">{esc(s["Task"])} · {s["NumberOfTestingImages"]} test images from
{esc(s["TestManifest"])} · same matching, each model at its own assumed thresholds ·
{s["Threads"]} inference thread(s) for both</p>
<div class="note"><b>F1 difference (B − A): {verdict(diff["Overall"])}</b>. Paired bootstrap over
the test images ({s["Bootstrap"]["Resamples"]} resamples, seed {s["Bootstrap"]["Seed"]}): the
difference is significant when its 95% interval excludes 0.</div>
{f'<div class="warn"><b>Warnings</b><ul>{warnings}</ul></div>' if warnings else ""}
<h2>Overall</h2>
<table><tr><th class="l"></th><th>A: {esc(a["Name"])}</th><th>B: {esc(b["Name"])}</th></tr>
{overview}</table>
<h2>Per label</h2>
<table><tr><th class="l">label</th><th>n</th><th>A thr</th><th>A P</th><th>A R</th><th>A F1</th>
<th>B thr</th><th>B P</th><th>B R</th><th>B F1</th><th>F1 B − A [95%]</th></tr>
{"".join(label_rows)}</table>
<h2>Precision–recall, both models</h2>
<div class="plots">{img_tag(png_uri(pr_png), "PR curves of both models")}</div>
<h2>Reliability: does each model's confidence mean what it says?</h2>
<div class="plots">{img_tag(png_uri(reliability_png), "reliability of both models")}</div>
"""
    return page(f"{a['Name']} vs {b['Name']}", body)


def format_comparison(s: dict[str, Any]) -> str:
    """A plain-text comparison table for the terminal."""
    a, b = s["Models"]
    d = s["F1Difference"]
    w = 14
    lines = [
        f"A = {a['Name']}   B = {b['Name']}   ({s['NumberOfTestingImages']} test images)",
        f"{'':<26}{'A':>{w}}{'B':>{w}}",
    ]

    def row(name: str, x: str, y: str) -> None:
        lines.append(f"{name:<26}{x:>{w}}{y:>{w}}")

    row("F1 (micro)", num(a["F1Score"]), num(b["F1Score"]))
    row("precision", num(a["Precision"]), num(b["Precision"]))
    row("recall", num(a["Recall"]), num(b["Recall"]))
    row("mAP@0.5", num(a["mAP50"]), num(b["mAP50"]))
    if "mAP50_95" in a:
        row("mAP@[.5:.95]", num(a["mAP50_95"]), num(b["mAP50_95"]))
    row("ECE (raw)", _ece(a), _ece(b))
    row("median ms/image", num(a["MedianInferenceMs"], 1), num(b["MedianInferenceMs"], 1))
    row("model size", _mb(a["ModelSizeBytes"]), _mb(b["ModelSizeBytes"]))
    row("training s", num(a["TrainingSeconds"], 0), num(b["TrainingSeconds"], 0))
    lines.append("per label (each at its own threshold): F1 A, F1 B, B − A [95% CI]")
    for label in s["CommonLabels"]:
        x = d["Labels"][label]
        lo, hi = x["interval"]
        lines.append(
            f"  {label[:22]:<24}{num(a['Labels'][label]['F1Score']):>{w}}"
            f"{num(b['Labels'][label]['F1Score']):>{w}}   {num(x['f1_difference']):>7} "
            f"[{num(lo, 2)}, {num(hi, 2)}]{' *' if x['significant'] else ''}"
        )
    o = d["Overall"]
    lo, hi = o["interval"]
    lines.append(
        f"F1 difference B − A: {num(o['f1_difference'])} [{num(lo, 2)}, {num(hi, 2)}] "
        f"{'significant' if o['significant'] else 'not significant'} (* = significant)"
    )
    lines += [f"warning: {x}" for x in s["Warnings"]]
    return "\n".join(lines)
