"""``report.html`` rendered in headless Chromium (Debian's ``/usr/bin/chromium``, installed by
``scripts/install-system.sh``): every image inline and loaded, no network request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from customlabels.evaluation.outputs import EvaluationOutput


def render(browser: Any, html: Path, png: Path) -> dict:
    """Open ``html`` in ``browser`` (the shared Chromium of tests/conftest.py), screenshot the
    full page into ``png``; returns page facts."""
    requests: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.goto(html.as_uri(), wait_until="load")
        facts = page.evaluate(
            """() => ({
                images: document.images.length,
                broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0)
                    .map(i => i.alt),
                figures: document.querySelectorAll('.gallery figure').length,
                rows: document.querySelectorAll('table tr').length,
                title: document.title,
            })"""
        )
        page.screenshot(path=str(png), full_page=True)
    finally:
        context.close()
    facts["requests"] = requests
    return facts


def test_report_renders_offline(
    browser: Any, detector_eval: EvaluationOutput, tmp_path: Path
) -> None:
    report = detector_eval.files["report"]
    png = tmp_path / "report.png"
    facts = render(browser, report, png)
    assert facts["requests"] == [report.as_uri()]  # nothing but the page itself
    assert facts["broken"] == []
    assert facts["figures"] == 8  # every test image (fewer than --max-images)
    assert facts["images"] == 8 + 3  # gallery + PR curves + F1 plot + reliability
    assert facts["rows"] >= 2 + 1 + len(detector_eval.evaluation.labels)
    assert "Evaluation of" in facts["title"]
    with Image.open(png) as im:
        assert im.width == 1280 and im.height > 2000
        colors = im.convert("RGB").resize((64, 256)).getcolors(64 * 256)
        assert colors is not None and len(colors) > 500  # not a blank page


def test_compare_page_renders_offline(
    browser: Any,
    tmp_path: Path,
    tiny_detector_dir: Path,
    detector_test_set: tuple[Path, dict[str, Path]],
) -> None:
    from customlabels.evaluation.compare import compare_models

    manifest, buckets = detector_test_set
    out = compare_models(
        tiny_detector_dir, tiny_detector_dir, manifest, tmp_path, n_boot=100, bucket_map=buckets
    )
    facts = render(browser, out.files["html"], tmp_path / "compare.png")
    assert facts["requests"] == [out.files["html"].as_uri()]
    assert facts["broken"] == [] and facts["images"] == 2  # joint PR curves, reliability
    assert facts["rows"] >= 1 + 8 + 1 + len(out.evaluations[0].labels)
    with Image.open(tmp_path / "compare.png") as im:
        assert im.width == 1280
