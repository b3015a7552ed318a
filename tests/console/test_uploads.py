"""Uploading images from the computer (many files, one refused file does not stop the others),
then labelling them with image-level labels: in the browser, and the use case's refusals."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from customlabels.errors import ImageTooLargeError, InvalidImageError, InvalidParameterError
from customlabels.service import browse, projects, uploads

from .conftest import BUCKET, Server, shot, sign_in


def _crops(datasets_dir: Path, label: str, n: int) -> list[Path]:
    return sorted((datasets_dir / "bee-crops" / "images" / label).glob("*.jpg"))[:n]


def test_upload_many_files_refuse_bad_ones_then_label_them(
    page: Any, server: Server, datasets_dir: Path, tmp_path: Path
) -> None:
    good = _crops(datasets_dir, "bee", 2) + _crops(datasets_dir, "drone", 2)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good[0].read_bytes()[:1500])
    sign_in(page)
    page.get_by_label("New project name").fill("crops")
    page.get_by_role("button", name="Create project").click()
    page.get_by_label("Bucket to store them in").fill(BUCKET)
    page.locator("#up-files").set_input_files([str(p) for p in [*good[:2], text, cut, *good[2:]]])
    page.get_by_role("button", name="Upload", exact=True).click()
    page.get_by_text("6 of 6 sent · 4 added · 2 refused").wait_for()
    results = page.locator("#up-results").inner_text()
    assert "notes.jpg: InvalidImageFormatException" in results
    assert "cut.jpg: InvalidImageFormatException" in results and "truncated" in results
    shot(page, "16-upload")

    arn = projects.project_arn_of(server.ctx, "crops")
    ds = projects.describe_projects(server.ctx, ["crops"])["ProjectDescriptions"][0]["Datasets"]
    train = ds[0]["DatasetArn"]
    entries, total = browse.browse_entries(server.ctx, train, browse.EntryFilter())
    assert total == 4 and arn
    assert all(e.source_ref.startswith(f"s3://{BUCKET}/uploads/crops/") for e in entries)

    # label each with an image-level label: add the labels, then tick one per image
    for entry in entries:
        label = "drone" if "drone" in entry.name or entry in entries[2:] else "bee"
        page.goto(f"/console/projects/crops/datasets/train/entries/{entry.id}/label")
        page.locator("#label-image").wait_for()
        if not page.locator(f"#image-label-choices input[value={label}]").count():
            page.get_by_label("New label").fill(label)
            page.get_by_role("button", name="Add", exact=True).click()
        page.locator(f"#image-label-choices input[value={label}]").check()
        page.get_by_text(f"Saved: {label}.").wait_for()
    shot(page, "17-image-label")
    labelled, _ = browse.browse_entries(server.ctx, train, browse.EntryFilter())
    assert [sorted(e.labels) for e in labelled] == [["bee"], ["bee"], ["drone"], ["drone"]]
    assert all(e.labels[n] == 0 for e in labelled for n in e.labels)  # image-level, no boxes


def test_upload_use_case_refusals(server: Server, datasets_dir: Path) -> None:
    projects.create_project(server.ctx, "crops-refusals")
    data = _crops(datasets_dir, "queen", 1)[0].read_bytes()
    with pytest.raises(InvalidImageError):
        uploads.upload_image(server.ctx, "crops-refusals", "TRAIN", BUCKET, "a.jpg", b"GIF89a..")
    with pytest.raises(InvalidParameterError, match="file name"):
        uploads.upload_image(server.ctx, "crops-refusals", "TRAIN", BUCKET, "../..", data)
    big = server.settings.s3_limits
    server.settings.s3_limits = type(big)(max_bytes=len(data) - 1)
    try:
        with pytest.raises(ImageTooLargeError):
            uploads.upload_image(server.ctx, "crops-refusals", "TRAIN", BUCKET, "q.jpg", data)
    finally:
        server.settings.s3_limits = big
    ok = uploads.upload_image(server.ctx, "crops-refusals", "TRAIN", BUCKET, "../../q<1>.jpg", data)
    assert re.fullmatch(rf"s3://{BUCKET}/uploads/crops-refusals/q_1_.jpg", ok["SourceRef"])
    assert (server.buckets / BUCKET / "uploads" / "crops-refusals" / "q_1_.jpg").is_file()
