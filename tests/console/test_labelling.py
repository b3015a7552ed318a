"""Labelling in a real browser with the vendored Annotorious: fix one box and draw one new box,
reload, both kept; a stale second tab is refused, not overwritten; the use case keeps the
manifest line valid."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from customlabels.errors import InvalidParameterError, ResourceInUseError
from customlabels.service import browse, datasets, labelling, projects

from .conftest import BUCKET, Console, Server, shot, sign_in

FRAME_NAME = "1085701-214827957"


@pytest.fixture(scope="module")
def label_project(server: Server) -> str:
    with Console(server.url) as c:
        c.sign_in()
        c.post("/console/projects", {"name": "bees-label"})
        c.post(
            "/console/projects/bees-label/datasets",
            {"dataset_type": "TRAIN", "bucket": BUCKET, "key": "output.manifest"},
        )
    return "bees-label"


def _entry(server: Server, project: str) -> tuple[str, int]:
    arn = next(
        d["DatasetArn"]
        for d in projects.describe_projects(server.ctx, [project])["ProjectDescriptions"][0][
            "Datasets"
        ]
        if d["DatasetType"] == "TRAIN"
    )
    found, _ = browse.browse_entries(server.ctx, arn, browse.EntryFilter(name=FRAME_NAME))
    return arn, found[0].id


def _to_screen(page: Any, x: float, y: float) -> tuple[float, float]:
    box = page.locator("#label-image").bounding_box()
    natural = page.evaluate("[document.querySelector('#label-image').naturalWidth]")[0]
    scale = box["width"] / natural
    return box["x"] + x * scale, box["y"] + y * scale


def test_fix_a_box_and_draw_a_new_one_both_kept_after_reload(
    page: Any, server: Server, label_project: str
) -> None:
    arn, entry_id = _entry(server, label_project)
    sign_in(page)
    url = f"/console/projects/{label_project}/datasets/train/entries/{entry_id}/label"
    page.goto(url)
    page.locator("#label-image").wait_for()
    for _ in range(100):  # wait_for_function would need eval, which the CSP refuses
        if page.evaluate("() => document.querySelector('#label-image').complete"):
            break
        page.wait_for_timeout(100)
    page.wait_for_timeout(300)  # Annotorious mounts its SVG layer once the image is measured
    shot(page, "12-label-before")

    # fix box 4 (bee at left 16, top 296, 149×93): select it, then drag it 40 px right
    x, y = _to_screen(page, 16 + 75, 296 + 46)
    page.mouse.click(x, y)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 20, y, steps=5)
    x2, _ = _to_screen(page, 16 + 75 + 40, 296 + 46)
    page.mouse.move(x2, y, steps=5)
    page.mouse.up()
    page.keyboard.press("Escape")  # Annotorious reports an edit when the box is deselected
    page.get_by_text("Saved: 7 box(es).").wait_for()

    # draw a new box with label 3 (labels sorted: bee, drone, pollenbee, queen) in a free area
    page.keyboard.press("3")
    ax, ay = _to_screen(page, 120, 30)
    bx, by = _to_screen(page, 230, 140)
    page.mouse.move(ax, ay)
    page.mouse.down()
    page.mouse.move((ax + bx) / 2, (ay + by) / 2, steps=5)
    page.mouse.move(bx, by, steps=5)
    page.mouse.up()
    page.get_by_text("Saved: 8 box(es).").wait_for()
    shot(page, "13-label-after")

    page.reload()
    page.locator("#label-image").wait_for()
    entry = browse.get_entry(server.ctx, arn, entry_id)
    assert len(entry.boxes) == 8
    moved = [b for b in entry.boxes if abs(b.top - 296) < 3 and b.width == 149]
    assert moved and 40 <= moved[0].left <= 70, entry.boxes
    drawn = [b for b in entry.boxes if b.label == "pollenbee" and b.top < 60]
    assert drawn and 80 < drawn[0].width < 130, entry.boxes
    detail = page.goto(f"/console/projects/{label_project}/datasets/train/entries/{entry_id}")
    assert detail is not None and "8 box(es)" in page.content()


def test_a_stale_tab_is_refused_and_nothing_is_lost(server: Server, label_project: str) -> None:
    arn, entry_id = _entry(server, label_project)
    with server.ctx.catalog.session() as s:
        start = labelling.revision(browse.entry_row(s, arn, entry_id).line)
    before = browse.get_entry(server.ctx, arn, entry_id).boxes
    first = [labelling.LabelledBox(b.label, b.left, b.top, b.width, b.height) for b in before]
    saved = labelling.save_entry_labels(server.ctx, arn, entry_id, start, first[:-1])
    assert saved["Boxes"] == len(before) - 1
    with pytest.raises(ResourceInUseError, match="changed since you opened it"):
        labelling.save_entry_labels(server.ctx, arn, entry_id, start, [])
    assert len(browse.get_entry(server.ctx, arn, entry_id).boxes) == len(before) - 1
    labelling.save_entry_labels(server.ctx, arn, entry_id, saved["Revision"], first)


def test_saved_lines_stay_valid_ground_truth(server: Server, label_project: str) -> None:
    arn, entry_id = _entry(server, label_project)
    with server.ctx.catalog.session() as s:
        rev = labelling.revision(browse.entry_row(s, arn, entry_id).line)
    with pytest.raises(InvalidParameterError, match=r"boxes\[0\]"):
        labelling.save_entry_labels(
            server.ctx, arn, entry_id, rev, [labelling.LabelledBox("bee", 5000, 10, 20, 20)]
        )
    boxes = [labelling.LabelledBox('new "label" <b>', 10, 10, 30, 20)]
    labelling.save_entry_labels(server.ctx, arn, entry_id, rev, boxes)
    with server.ctx.catalog.session() as s:
        line = json.loads(browse.entry_row(s, arn, entry_id).line)
    meta = line["bee-labels-metadata"]
    assert meta["type"] == "groundtruth/object-detection"
    assert 'new "label" <b>' in meta["class-map"].values()
    assert line["bee-labels"]["annotations"][0] == {
        "class_id": next(int(k) for k, v in meta["class-map"].items() if v.startswith("new")),
        "left": 10,
        "top": 10,
        "width": 30,
        "height": 20,
    }
    assert re.search(r"\d{4}-\d\d-\d\dT", meta["creation-date"])


def test_rename_and_delete_a_label_in_every_image(console: Console, server: Server) -> None:
    console.post("/console/projects", {"name": "bees-relabel"})
    console.post(
        "/console/projects/bees-relabel/datasets",
        {"dataset_type": "TRAIN", "bucket": BUCKET, "key": "output.manifest"},
    )
    base = "/console/projects/bees-relabel/datasets/train"
    console.get(base)
    renamed = console.post(base + "/labels/rename", {"label": "drone", "new_name": "male bee"})
    assert "Label drone renamed to male bee in 14 image(s)." in renamed.text
    assert "> male bee</td>" in renamed.text and "> drone</td>" not in renamed.text
    refused = console.post(base + "/labels/delete", {"label": "queen", "confirm": "nope"})
    assert "Type the label&#39;s name (queen) to delete it." in refused.text
    deleted = console.post(base + "/labels/delete", {"label": "queen", "confirm": "queen"})
    assert "Label queen deleted from 21 image(s)." in deleted.text
    assert "> queen</td>" not in deleted.text
    assert "555 images" in deleted.text  # images stay, only the label's boxes went
    arn = next(
        d["DatasetArn"]
        for d in projects.describe_projects(server.ctx, ["bees-relabel"])["ProjectDescriptions"][0][
            "Datasets"
        ]
    )
    stats = {
        d["LabelName"]: d["LabelStats"]["BoundingBoxCount"]
        for d in datasets.list_dataset_labels(server.ctx, arn)["DatasetLabelDescriptions"]
    }
    assert stats == {"bee": 2833, "male bee": 22, "pollenbee": 340}
