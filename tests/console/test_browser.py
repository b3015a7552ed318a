"""A new user's flow in a real browser (Playwright driving Debian's Chromium, offline), each
step saving a screenshot under ``runs/console-screenshots/`` (gitignored)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from .conftest import BUCKET, KEY, Server, shot, sign_in

FRAME = "images/1085701-214827957_jpg.rf.a2e359ad921222f7f939e1b7cc5082b9.jpg"


def test_new_user_flow_sign_in_import_browse(page: Any, server: Server) -> None:
    page.goto("/")
    assert page.url.endswith("/console/sign-in?next=/console")
    shot(page, "01-sign-in")
    page.get_by_label("Access key id").fill(KEY)
    page.get_by_label("Secret access key").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Wrong access key id or secret access key.").wait_for()
    sign_in(page)
    shot(page, "02-projects")

    page.get_by_label("New project name").fill("bees")
    page.get_by_role("button", name="Create project").click()
    page.get_by_text("Project bees created.").wait_for()
    page.get_by_label("Bucket", exact=True).fill(BUCKET)
    page.get_by_label("Manifest, file or folder key").fill("output.manifest")
    shot(page, "03-new-project")
    page.get_by_role("button", name="Import").click()
    page.get_by_text("TRAIN dataset created.").wait_for()
    page.get_by_text("555 image(s) · page 1 of 12").wait_for()
    shot(page, "04-dataset")

    # filter by label without a reload (htmx swaps the grid)
    page.get_by_label("Label", exact=True).select_option("queen")
    page.locator("#grid-count").filter(
        has_text=re.compile(r"^\d+ image\(s\) · page 1 of 1$")
    ).wait_for()
    queens = int(page.locator("#grid-count").inner_text().split()[0])
    assert 0 < queens < 555
    assert "label=queen" in page.url
    shot(page, "05-filter-queen")
    page.get_by_label("Label", exact=True).select_option("")
    page.get_by_label("File name contains").fill("1085701")
    page.locator("#grid-count").filter(has_text=re.compile(r"^1 image\(s\)")).wait_for()
    page.locator("ul.thumbs a").first.click()
    page.get_by_text("7 box(es)").wait_for()
    assert page.locator(".large rect").count() == 7
    shot(page, "06-image")


def test_pr_curves_follow_a_slider_below_the_assumed_threshold(
    page: Any, model_project: tuple[str, str], scripted_version: str
) -> None:
    """The slider goes under the assumed threshold (stored scores from 1 %): recall rises, F1
    changes and the dot on bee's precision-recall curve moves right."""
    sign_in(page)
    project, _ = model_project
    page.goto(f"/console/projects/{project}/versions/{scripted_version}/evaluation")
    row = page.locator("#thresholds tr", has_text="bee").first
    dot = page.locator(f"#{row.get_attribute('data-curve')} circle.at")
    before = (row.locator(".r").inner_text(), row.locator(".f1").inner_text())
    cx_before = float(dot.get_attribute("cx"))
    slider = row.get_by_label("Threshold of bee")
    assert slider.get_attribute("min") == "1" and int(slider.get_attribute("value")) >= 50
    slider.fill("10")
    after = (row.locator(".r").inner_text(), row.locator(".f1").inner_text())
    assert float(after[0]) > float(before[0]) and after[1] != before[1], (before, after)
    assert float(dot.get_attribute("cx")) > cx_before
    assert page.locator("figure.pr-curve polyline.curve").count() >= 1
    shot(page, "07b-evaluation-pr-curves")


def test_use_the_model_then_sign_out(
    page: Any, server: Server, model_project: tuple[str, str], tmp_path: Path
) -> None:
    """The model (a tiny real detector imported into its own project): start, try, stop."""
    sign_in(page)
    project, version = model_project
    # the evaluation: false positives of "bee", then a threshold slider moves F1
    page.goto(f"/console/projects/{project}/versions/{version}")
    page.get_by_role("link", name=re.compile("Explore the evaluation")).click()
    page.get_by_label("Label", exact=True).select_option("bee")
    page.get_by_label("Outcome").select_option("fp")
    page.get_by_role("button", name="Show").click()
    page.get_by_text(re.compile(r"Test images \(\d+ of 10\)")).wait_for()
    assert "outcome=fp" in page.url
    row = page.locator("#thresholds tr", has_text="bee").first
    f1_before = row.locator(".f1").inner_text()
    slider = row.get_by_label("Threshold of bee")
    low = int(slider.get_attribute("min"))
    slider.fill(str(min(100, low + 25)))
    f1_after = row.locator(".f1").inner_text()
    assert f1_after != f1_before, (f1_before, f1_after)
    shot(page, "07-evaluation-fp-threshold")

    page.goto(f"/console/projects/{project}/versions/{version}")
    page.get_by_label("Inference units").fill("1")
    page.get_by_role("button", name="Start the model").click()
    page.locator("#status-text", has_text="RUNNING").wait_for(timeout=60_000)
    page.reload()
    shot(page, "08-model-running")
    frame = tmp_path / "frame.jpg"
    shutil.copyfile(server.buckets / BUCKET / FRAME, frame)
    page.get_by_label("Image (JPEG or PNG)").set_input_files(str(frame))
    page.get_by_role("button", name="Detect").click()
    page.locator("#try-boxes").wait_for()
    all_boxes = page.locator("#try-boxes rect").count()
    assert all_boxes >= 1
    slider = page.get_by_label(re.compile("Minimum confidence"))
    slider.fill("0")
    shown_at_0 = page.locator("#try-boxes rect:not(.hidden)").count()
    slider.fill("100")
    shown_at_100 = page.locator("#try-boxes rect:not(.hidden)").count()
    assert shown_at_0 == all_boxes and shown_at_100 < shown_at_0
    slider.fill("30")
    shot(page, "09-try-it")
    page.get_by_role("button", name="Stop the model").click()
    page.get_by_text("Stopping v1.").wait_for()
    page.locator("#status-text", has_text="STOPPED").wait_for(timeout=30_000)
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("Signed out.").wait_for()
    shot(page, "10-signed-out")
    page.goto("/console/projects/bees")
    assert "/console/sign-in" in page.url


def _status(page: Any) -> str:
    return str(page.locator("#status-text").inner_text())


def _step(page: Any) -> int:
    steps = page.locator("#step")
    return int(steps.inner_text()) if steps.count() else 0


def _poll(page: Any, done: Any, timeout_s: float = 900) -> None:
    """Poll what the page shows (wait_for_function would need eval, which the CSP refuses)."""
    for _ in range(int(timeout_s / 2)):
        if done():
            return
        page.wait_for_timeout(2000)
    raise AssertionError("timed out waiting on the page")


def _wait_trained(page: Any) -> None:
    """Wait (the page refreshes itself) until training ends; it must have completed."""
    _poll(page, lambda: _status(page) != "TRAINING_IN_PROGRESS")
    page.reload()
    status = page.locator("#status-text").inner_text()
    assert status == "TRAINING_COMPLETED", page.locator("#status-message").inner_text()


@pytest.mark.slow
def test_train_with_a_60_second_budget_and_watch_progress(page: Any, server: Server) -> None:
    """Real training (60 s budget, then evaluation): minutes on 2 shared cores, so marked slow."""
    sign_in(page)
    page.get_by_label("New project name").fill("bees-train")
    page.get_by_role("button", name="Create project").click()
    page.get_by_label("Bucket", exact=True).fill(BUCKET)
    page.get_by_label("Manifest, file or folder key").fill("output.manifest")
    page.get_by_role("button", name="Import").click()
    page.goto("/console/projects/bees-train")
    page.get_by_label("Time budget (seconds)").fill("60")
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Training of v1 queued.").wait_for()
    # the status part refreshes itself (htmx, every 2 s): wait for steps, without reloading
    _poll(page, lambda: _step(page) > 0 or _status(page) != "TRAINING_IN_PROGRESS")
    shot(page, "14-training")
    _wait_trained(page)
    page.get_by_text(re.compile(r"Evaluation on \d+ test images")).wait_for()
    shot(page, "15-evaluation")


@pytest.mark.slow
def test_upload_label_and_train_a_classifier(page: Any, server: Server, datasets_dir: Path) -> None:
    """Crops uploaded from the computer, labelled with image-level labels, trained for 60 s."""
    from customlabels.service import browse, labelling, projects, uploads

    projects.create_project(server.ctx, "crops-train")
    for label in ("bee", "pollenbee"):
        for path in sorted((datasets_dir / "bee-crops" / "images" / label).glob("*.jpg"))[:12]:
            uploads.upload_image(
                server.ctx,
                "crops-train",
                "TRAIN",
                BUCKET,
                f"{label}-{path.name}",
                path.read_bytes(),
            )
    sign_in(page)
    page.goto("/console/projects/crops-train")
    arn = projects.describe_projects(server.ctx, ["crops-train"])["ProjectDescriptions"][0][
        "Datasets"
    ][0]["DatasetArn"]
    entries, total = browse.browse_entries(server.ctx, arn, browse.EntryFilter(), per_page=100)
    assert total == 24
    # the first image is labelled in the browser, the rest through the same use case
    first = entries[0]
    page.goto(f"/console/projects/crops-train/datasets/train/entries/{first.id}/label")
    for name in ("bee", "pollenbee"):
        page.get_by_label("New label").fill(name)
        page.get_by_role("button", name="Add", exact=True).click()
    page.locator("#image-label-choices input[value=bee]").check()
    page.get_by_text("Saved: bee.").wait_for()
    for e in entries[1:]:
        with server.ctx.catalog.session() as s:
            rev = labelling.revision(browse.entry_row(s, arn, e.id).line)
        label = "pollenbee" if e.name.startswith("pollenbee") else "bee"
        labelling.save_entry_labels(server.ctx, arn, e.id, rev, image_labels=[label])
    page.goto("/console/projects/crops-train")
    page.get_by_label("Time budget (seconds)").fill("60")
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Training of v1 queued.").wait_for()
    _wait_trained(page)
    shot(page, "18-classifier-trained")
