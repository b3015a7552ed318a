"""``report.html``: one self-contained page (plots and images inlined as base64, no network)
with the metrics table, the plots and a gallery of test images, worst first."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from customlabels.errors import CustomLabelsError
from customlabels.evaluation.draw import KIND_COLORS, draw_outcome
from customlabels.evaluation.html import esc, img_tag, jpeg_uri, num, page, png_uri
from customlabels.evaluation.outcomes import ImageOutcome, Kind
from customlabels.evaluation.run import Evaluation, open_image

__all__ = ["render_report"]

log = logging.getLogger(__name__)


def _ci(values: list[float | None]) -> str:
    return f'<span class="ci">[{num(values[0], 2)}, {num(values[1], 2)}]</span>'


def _overview(ev: Evaluation, summary: dict[str, Any]) -> str:
    d, agg = summary["EvaluationDetails"], summary["AggregatedEvaluationResults"]
    iv = agg["Intervals95"]
    cells = [
        ("Precision", f"{num(agg['Precision'])} {_ci(iv['Precision'])}"),
        ("Recall", f"{num(agg['Recall'])} {_ci(iv['Recall'])}"),
        ("F1", f"{num(agg['F1Score'])} {_ci(iv['F1Score'])}"),
    ]
    group = agg.get("GroupIntervals95")
    if group:
        cells.append((f"F1 over {d['Bootstrap']['Groups']} scene groups", _ci(group["F1Score"])))
    cal = summary.get("Calibration")
    if cal:
        raw = f" (raw {num(cal['ECERaw'])})" if cal["ECERaw"] is not None else ""
        cells.append(("ECE", f"{num(cal['ECE'])}{raw}"))
    if ev.detection:
        cells += [
            ("mAP@0.5", num(agg["AveragePrecision"])),
            ("mAP@[.5:.95]", num(agg["AveragePrecision50_95"])),
            ("mAR@[.5:.95]", num(agg["AverageRecall"])),
        ]
    else:
        cells += [("Accuracy", num(agg["Accuracy"])), ("mean AP", num(agg["AveragePrecision"]))]
    cells.append(("median ms / image", num(d["MedianInferenceMs"], 1)))
    head = "".join(f"<th>{esc(k)}</th>" for k, _ in cells)
    row = "".join(f"<td>{v}</td>" for _, v in cells)
    return f"<table><tr>{head}</tr><tr>{row}</tr></table>"


def _label_table(ev: Evaluation, summary: dict[str, Any]) -> str:
    unit = "boxes" if ev.detection else "images"
    head = (
        f'<tr><th class="l">label</th><th>test {unit}</th><th>images</th><th>threshold</th>'
        "<th>precision</th><th>recall</th><th>F1</th><th>TP / FP / FN</th><th>AP@0.5</th>"
        + ("<th>AP@[.5:.95]</th>" if ev.detection else "")
        + '<th class="opt">test-optimal thr</th><th class="opt">its F1 (optimistic)</th></tr>'
    )
    rows = []
    for item in summary["LabelEvaluationResults"]:
        m, iv, opt, cnt = item["Metrics"], item["Intervals95"], item["TestOptimal"], item["Counts"]
        source = item["ThresholdSource"]
        rows.append(
            f'<tr><td class="l">{esc(item["Label"])}</td>'
            f"<td>{item['NumberOfTestingInstances']}</td><td>{item['NumberOfTestingImages']}</td>"
            f'<td title="{esc(source)}">{num(m["Threshold"], 3)}'
            f"{'' if source == 'validation' else ' *'}</td>"
            f"<td>{num(m['Precision'])} {_ci(iv['Precision'])}</td>"
            f"<td>{num(m['Recall'])} {_ci(iv['Recall'])}</td>"
            f"<td>{num(m['F1Score'])} {_ci(iv['F1Score'])}</td>"
            f"<td>{cnt['TruePositives']} / {cnt['FalsePositives']} / {cnt['FalseNegatives']}</td>"
            f"<td>{num(item['AveragePrecision'])}</td>"
            + (f"<td>{num(item['AveragePrecision50_95'])}</td>" if ev.detection else "")
            + f'<td class="opt">{num(opt["Threshold"], 3)}</td>'
            f'<td class="opt">{num(opt["F1Score"])}</td></tr>'
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _advice(summary: dict[str, Any]) -> str:
    data = summary.get("DataAdvice")
    if not data:
        return ""
    cols = [
        ("images", "images"),
        ("instances", "boxes / images"),
        ("groups", "independent scenes"),
        ("validation_instances", "validation"),
        ("test_instances", "test"),
        ("test_groups", "test scenes"),
    ]
    head = '<tr><th class="l">label</th>' + "".join(f"<th>{esc(t)}</th>" for _, t in cols)
    rows = "".join(
        f'<tr><td class="l">{esc(e["label"])}</td>'
        + "".join(f"<td>{'—' if e.get(k) is None else e[k]}</td>" for k, _ in cols)
        + "</tr>"
        for e in data["labels"]
    )
    items = "".join(f"<li>{esc(a)}</li>" for a in data["advice"])
    return f"<h2>Data behind the scores</h2><table>{head}</tr>{rows}</table>" + (
        f'<div class="warn"><b>Advice</b><ul>{items}</ul></div>' if items else ""
    )


def _legend() -> str:
    names = {
        Kind.TRUE_POSITIVE: "true positive",
        Kind.FALSE_POSITIVE: "false positive",
        Kind.FALSE_NEGATIVE: "missed (false negative)",
    }
    return "".join(
        f'<span class="sw" style="background:rgb{KIND_COLORS[k]}"></span>{names[k]}' for k in names
    )


def _gallery(ev: Evaluation, outcomes: list[ImageOutcome], max_images: int) -> str:
    order = sorted(outcomes, key=lambda o: (-o.errors, -o.count(Kind.FALSE_NEGATIVE), o.index))[
        :max_images
    ]
    figures = []
    for out in order:
        rec = ev.records[out.index]
        try:
            image = draw_outcome(open_image(rec), out, ev.labels, max_side=720)
        except (CustomLabelsError, OSError) as exc:
            log.warning("gallery: cannot draw %s: %s", rec.ref, exc)
            continue
        caption = (
            f"{esc(rec.name)} — TP {out.count(Kind.TRUE_POSITIVE)}, "
            f"FP {out.count(Kind.FALSE_POSITIVE)}, missed {out.count(Kind.FALSE_NEGATIVE)}"
        )
        figures.append(
            f"<figure>{img_tag(jpeg_uri(image), rec.name)}<figcaption>{caption}</figcaption>"
            "</figure>"
        )
    return f'<div class="gallery">{"".join(figures)}</div>'


def render_report(
    ev: Evaluation,
    summary: dict[str, Any],
    plots: dict[str, Path],
    path: Path,
    outcomes: list[ImageOutcome] | None = None,
    max_images: int = 30,
    attribution: str | None = None,
) -> Path:
    """Write ``report.html``.

    Args:
        summary: from :func:`customlabels.evaluation.summary.evaluation_summary`.
        plots: ``{title: png_path}``, inlined in this order.
        max_images: gallery size (the images with most false positives + misses first).
        attribution: a line crediting the images' source, shown under the gallery.
    """
    outcomes = outcomes if outcomes is not None else ev.outcomes()
    d = summary["EvaluationDetails"]
    name = d["ModelVersion"] or "model"
    warnings = "".join(f"<li>{esc(w)}</li>" for w in summary["Warnings"])
    shown = min(max_images, len(outcomes))
    body = [
        f"<h1>Evaluation of {esc(name)}</h1>",
        f'<p class="muted">{esc(d["Task"])} · {d["NumberOfTestingImages"]} test images'
        f" from {esc(str(d['TestManifest']))} · evaluated {esc(d['EvaluationEndTimestamp'])}"
        + (" · boxes match at IoU ≥ 0.5" if ev.detection else "")
        + "</p>",
        '<div class="note">Each label is scored at its <b>assumed threshold</b>: the confidence '
        "with the best F1 on the <i>validation</i> split, chosen by training and stored in the "
        "model card (a * marks a label without one, scored at its test-optimal threshold). The "
        '<span class="opt">test-optimal</span> columns show what the same test set would score '
        "if the threshold were picked on it: optimistic, as the managed service reports it. "
        f"Brackets are 95% bootstrap intervals ({ev.intervals.n_boot} resamples of the test "
        f"images, seed {ev.intervals.seed}). {esc(summary['IntervalsCover']['Covers'])} "
        f"<b>Not covered:</b> {esc(summary['IntervalsCover']['DoesNotCover'])}</div>",
        (
            '<div class="note">Confidences are <b>calibrated</b> on the validation split: '
            "a detection at confidence 80 is a true positive about 80 % of the time, and a "
            "threshold of 90 keeps detections that are right at least about 90 % of the time. "
            "The reliability diagram below checks this on the test set (ECE: the average gap, "
            "0 is perfect).</div>"
            if ev.card.calibration
            else ""
        ),
        f'<div class="warn"><b>Warnings</b><ul>{warnings}</ul></div>' if warnings else "",
        "<h2>Overall</h2>",
        _overview(ev, summary),
        "<h2>Per label</h2>",
        _label_table(ev, summary),
        _advice(summary),
        '<h2>Plots</h2><div class="plots">',
        *(f"<h3>{esc(title)}</h3>{img_tag(png_uri(p), title)}" for title, p in plots.items()),
        "</div>",
        f"<h2>Test images, worst first ({shown} of {len(outcomes)})</h2>",
        f"<p>{_legend()}</p>",
        _gallery(ev, outcomes, max_images),
        f'<p class="muted">{esc(attribution)}</p>' if attribution else "",
    ]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page(f"Evaluation of {name}", "\n".join(body)), encoding="utf-8")
    return path
