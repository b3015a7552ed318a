"""Pages rendered by the live server, asserted on what a person sees."""

from __future__ import annotations

import re

from .conftest import BUCKET, Console, Server


def test_root_redirects_a_browser_to_the_console(server: Server) -> None:
    with Console(server.url) as c:
        r = c.get("/")
    assert r.url.path == "/console/sign-in"
    assert "Sign in" in r.text


def test_projects_create_list_and_delete_with_confirmation(console: Console) -> None:
    r = console.post("/console/projects", {"name": "p-delete-me"})
    assert "Project p-delete-me created." in r.text
    assert "No dataset yet" in r.text
    listing = console.get("/console").text
    assert ">p-delete-me</a>" in listing
    confirm = console.get("/console/projects/p-delete-me/delete").text
    assert "Delete project p-delete-me?" in confirm
    assert "the project <strong>p-delete-me</strong>" in confirm
    wrong = console.post("/console/projects/p-delete-me/delete", {"confirm": "nope"})
    assert "Type the project&#39;s name (p-delete-me) to delete it." in wrong.text
    gone = console.post("/console/projects/p-delete-me/delete", {"confirm": "p-delete-me"})
    assert "Project p-delete-me deleted." in gone.text
    assert ">p-delete-me</a>" not in gone.text


def test_service_errors_show_on_the_page(console: Console) -> None:
    r = console.post("/console/projects", {"name": "bad name!"})
    assert r.status_code == 400
    assert "InvalidParameterException" in r.text and "ProjectName" in r.text
    missing = console.get("/console/projects/no-such-project")
    assert missing.status_code == 400 or missing.status_code == 404
    assert "no-such-project" in missing.text


def test_dataset_page_shows_stats_and_thumbnails(console: Console, bee_project: str) -> None:
    page = console.get(f"/console/projects/{bee_project}/datasets/train").text
    assert "555 images" in page
    for label in ("bee", "pollenbee", "drone", "queen"):
        assert f"> {label}</td>" in page
    assert "555 image(s) · page 1 of 12" in page
    assert page.count("/thumb") == 48


def test_filters_narrow_the_grid(console: Console, bee_project: str) -> None:
    base = f"/console/projects/{bee_project}/datasets/train/grid"
    queens = console.get(base, params={"label": "queen"}).text
    count = int(re.search(r"(\d+) image\(s\)", queens).group(1))  # type: ignore[union-attr]
    assert 0 < count < 555
    unlabelled = console.get(base, params={"unlabelled": "on"}).text
    assert "70 image(s)" in unlabelled
    named = console.get(base, params={"q": "1085701"}).text
    assert "1 image(s)" in named and "1085701-214827957_jpg" in named


def test_one_image_large_with_its_boxes(console: Console, bee_project: str) -> None:
    grid = console.get(
        f"/console/projects/{bee_project}/datasets/train/grid", params={"q": "1085701"}
    ).text
    href = re.search(r'href="([^"]+/entries/\d+)"', grid).group(1)  # type: ignore[union-attr]
    page = console.get(href).text
    assert "7 box(es)" in page and "pollenbee" in page
    image = console.get(href + "/image")
    assert image.headers["content-type"] == "image/jpeg" and len(image.content) > 10_000
    thumb = console.get(href + "/thumb")
    assert thumb.headers["content-type"] == "image/jpeg"
    assert len(thumb.content) < len(image.content)


def test_import_of_a_missing_manifest_says_why(console: Console) -> None:
    console.post("/console/projects", {"name": "p-missing"})
    r = console.post(
        "/console/projects/p-missing/datasets",
        {"dataset_type": "TRAIN", "bucket": BUCKET, "key": "nope.manifest"},
    )
    assert "InvalidS3ObjectException" in r.text and "nope.manifest" in r.text


def test_import_pascal_voc_through_the_importer(console: Console) -> None:
    console.post("/console/projects", {"name": "cells"})
    r = console.post(
        "/console/projects/cells/datasets",
        {
            "dataset_type": "TRAIN",
            "format": "voc",
            "bucket": "bccd-demo",
            "key": "voc",
            "images": "images",
        },
    )
    assert "TRAIN dataset: 292 images imported (voc)." in r.text
    for label in ("RBC", "WBC", "Platelets"):
        assert f"> {label}</td>" in r.text
    grid = console.get("/console/projects/cells/datasets/train/grid", params={"q": "00000"}).text
    assert "BloodImage_00000.jpg" in grid and "<rect" in grid
    outside = console.post(
        "/console/projects/cells/datasets",
        {"dataset_type": "TEST", "format": "voc", "bucket": "bccd-demo", "key": "../x"},
    )
    assert "InvalidS3ObjectException" in outside.text
