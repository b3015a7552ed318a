"""The model page: status, start/stop with inference units, try an image, and the code
snippets, each run against the live server."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import BUCKET, KEY, SECRET, Console, Server, wait_for

FRAME = "images/1085701-214827957_jpg.rf.a2e359ad921222f7f939e1b7cc5082b9.jpg"


def _status(console: Console, project: str, version: str) -> str:
    page = console.get(f"/console/projects/{project}/versions/{version}/status").text
    return re.search(r'id="status-text">([A-Z_]+)<', page).group(1)  # type: ignore[union-attr]


@pytest.fixture
def running(console: Console, model_project: tuple[str, str]) -> tuple[str, str]:
    project, version = model_project
    page = console.post(f"/console/projects/{project}/versions/{version}/start", {"units": "2"})
    assert "Starting v1 with 2 inference unit(s)." in page.text
    wait_for(lambda: _status(console, project, version) == "RUNNING")
    yield project, version
    console.get(f"/console/projects/{project}/versions/{version}")
    stopped = console.post(f"/console/projects/{project}/versions/{version}/stop")
    assert "Stopping v1." in stopped.text
    wait_for(lambda: _status(console, project, version) == "STOPPED")


def test_version_page_before_start(console: Console, model_project: tuple[str, str]) -> None:
    project, version = model_project
    page = console.get(f"/console/projects/{project}/versions/{version}").text
    assert ("TRAINING_COMPLETED" in page or "STOPPED" in page) and "Start the model" in page
    assert "Try it" not in page


def test_try_an_image_shows_boxes_and_errors(
    console: Console, running: tuple[str, str], server: Server
) -> None:
    project, version = running
    page = console.get(f"/console/projects/{project}/versions/{version}").text
    assert "2 inference unit(s)" in page and "Try it" in page and "Stop the model" in page
    url = f"/console/projects/{project}/versions/{version}/try"
    data = (server.buckets / BUCKET / FRAME).read_bytes()
    r = console.http.post(
        url,
        files={"image": ("frame.jpg", data, "image/jpeg")},
        headers={"X-CSRF-Token": console.csrf},
    )
    assert r.status_code == 200
    assert 'id="try-boxes"' in r.text and "data:image/jpeg;base64," in r.text
    assert r.text.count("<rect data-confidence=") >= 1
    bad = console.http.post(
        url,
        files={"image": ("notes.txt", b"hello", "text/plain")},
        headers={"X-CSRF-Token": console.csrf},
    )
    assert "InvalidImageFormatException" in bad.text
    truncated = console.http.post(
        url,
        files={"image": ("cut.jpg", data[:2000], "image/jpeg")},
        headers={"X-CSRF-Token": console.csrf},
    )
    assert "InvalidImageFormatException" in truncated.text or "truncated" in truncated.text


def test_snippets_run_against_the_server(
    console: Console, running: tuple[str, str], server: Server, tmp_path: Path
) -> None:
    project, version = running
    page = console.get(f"/console/projects/{project}/versions/{version}").text
    codes = [
        html.unescape(c)
        for c in re.findall(
            r"<pre class=\"code\" tabindex=\"0\"><code>(.*?)</code></pre>", page, re.S
        )
    ]
    assert len(codes) == 3
    boto3_code, cli, curl = codes
    arn = re.search(r"<code>(arn:aws:rekognition:[^<]+)</code>", page).group(1)  # type: ignore[union-attr]
    assert arn in boto3_code and arn in cli and server.url in curl
    shutil.copyfile(server.buckets / BUCKET / FRAME, tmp_path / "frame.jpg")
    env = {
        **os.environ,
        "CUSTOMLABELS_ACCESS_KEY_ID": KEY,
        "CUSTOMLABELS_SECRET_ACCESS_KEY": SECRET,
    }
    runs = {
        "boto3": [sys.executable, "-c", boto3_code],
        "curl": ["bash", "-c", curl],
    }
    if shutil.which("aws"):
        runs["AWS CLI"] = ["bash", "-c", cli]
    for name, argv in runs.items():
        done = subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, (name, done.stderr)
        assert "bee" in done.stdout or "CustomLabels" in done.stdout, (name, done.stdout)


def test_evaluation_page_thresholds_and_outcome_filter(
    console: Console, model_project: tuple[str, str]
) -> None:
    project, version = model_project
    base = f"/console/projects/{project}/versions/{version}/evaluation"
    page = console.get(base).text
    assert "Evaluation on 10 test images" in page
    assert "Assumed threshold" in page and "Precision (95% interval)" in page
    rows = re.findall(r'<tr data-scores="([^"]*)" data-gt="(\d+)"', page)
    assert rows and any(int(gt) > 0 for _, gt in rows)
    fps = console.get(base, params={"label": "bee", "outcome": "fp"}).text
    assert "Test images (" in fps, fps[-3000:]
    shown = int(re.search(r"Test images \((\d+) of 10\)", fps).group(1))  # type: ignore[union-attr]
    every = int(re.search(r"Test images \((\d+) of 10\)", page).group(1))  # type: ignore[union-attr]
    assert shown <= every == 10
    if shown:
        assert 'class="fp"' in fps
    image = re.search(r'href="([^"]+/evaluation/images/\d+)"', page).group(1)  # type: ignore[union-attr]
    assert console.get(image).headers["content-type"] == "image/jpeg"


def test_evaluation_page_draws_a_pr_curve_per_label_and_slides_below_the_threshold(
    console: Console, model_project: tuple[str, str], scripted_version: str
) -> None:
    """One SVG precision-recall curve per label of the table, a point per distinct confidence;
    the sliders go down to the 1 % floor, under scores that lie below the assumed threshold."""
    project, _ = model_project
    page = console.get(f"/console/projects/{project}/versions/{scripted_version}/evaluation").text
    row = r'<tr data-scores="([^"]*)" data-gt="(\d+)" data-curve="[^"]+">'
    rows = re.findall(row + r"\s*<td>.*?</svg> ([^<]+)</td>", page, re.S)
    curves = re.findall(r'<figure class="pr-curve" data-label="([^"]+)">', page)
    assert rows and curves == [name for _, _, name in rows]
    drawn = re.findall(r'<polyline class="curve"[^>]* points="([^"]+)"', page)
    with_gt = [(json.loads(html.unescape(s)), int(gt)) for s, gt, _ in rows if int(gt)]
    assert with_gt and len(drawn) == len(with_gt)
    for points, (scores, _) in zip(drawn, with_gt, strict=True):
        # the start at recall 0, then one point per distinct confidence (thinned above 300)
        distinct = len({c for c, _ in scores})
        n = len(points.split()) - 1
        assert n == distinct if distinct <= 300 else 150 <= n <= 301
    assert page.count("no test instances") == len(rows) - len(with_gt)
    assert set(re.findall(r'class="threshold" type="range" min="(\d+)"', page)) == {"1"}
    values = [int(v) for v in re.findall(r'class="threshold"[^>]* value="(\d+)"', page)]
    scores = [json.loads(html.unescape(s)) for s, _, _ in rows]
    assert any(c * 100 < v for pairs, v in zip(scores, values, strict=True) for c, _ in pairs)


def test_saving_a_threshold_writes_the_model_card(
    console: Console, model_project: tuple[str, str], server: Server
) -> None:
    from customlabels.core.model_card import ModelCard
    from customlabels.service import versions

    project, _ = model_project
    base = f"/console/projects/{project}/versions/v2/evaluation"
    console.get(base)
    r = console.post(base + "/threshold", {"label": "queen", "threshold": "0.73"})
    assert "Threshold of queen saved: 0.73 (used from the next start)." in r.text
    arn = versions.version_arn_of(server.ctx, project, "v2")
    with server.ctx.catalog.session() as s:
        model_dir = Path(versions.get_version(s, arn).model_dir)
    assert ModelCard.load(model_dir).thresholds["queen"] == 0.73
    bad = console.post(base + "/threshold", {"label": "<wasp>", "threshold": "0.5"})
    assert "expected one of" in bad.text and "&lt;wasp&gt;" in bad.text


def test_two_versions_side_by_side(console: Console, model_project: tuple[str, str]) -> None:
    project, _ = model_project
    page = console.get(f"/console/projects/{project}/compare", params={"a": "v1", "b": "v2"}).text
    assert "<h2>v1 " in page and "<h2>v2 " in page
    assert "Evaluation on 10 test images" in page and "No evaluation for v2." in page
