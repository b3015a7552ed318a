"""Labelling one image: draw, move, resize and delete boxes with Annotorious (vendored), pick a
box's label, image-level labels for classification; every change is saved at once through the
UpdateDatasetEntries use case (``service.labelling``), with the revision the page started from
so a second tab's save is refused instead of overwritten."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from customlabels.console.app import guard
from customlabels.console.pages.images import dataset_arn_of
from customlabels.console.web import PREFIX, call, ctx_of, label_colour, render
from customlabels.service import browse, datasets, labelling
from customlabels.service.context import Context

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(guard)])
_ENTRY = "/projects/{name}/datasets/{kind}/entries/{entry_id}"


class BoxIn(BaseModel):
    label: str = Field(min_length=1, max_length=256)
    left: float
    top: float
    width: float = Field(gt=0)
    height: float = Field(gt=0)


class LabelsIn(BaseModel):
    revision: str = Field(max_length=64)
    boxes: list[BoxIn] | None = Field(default=None, max_length=2000)
    image_labels: list[str] | None = Field(default=None, max_length=100)
    size_wh: tuple[int, int] | None = None


def _label_page(ctx: Context, arn: str, entry_id: int) -> dict[str, Any]:
    entry = browse.get_entry(ctx, arn, entry_id)
    with ctx.catalog.session() as s:
        line = browse.entry_row(s, arn, entry_id).line
    found = datasets.list_dataset_labels(ctx, arn, max_results=100)["DatasetLabelDescriptions"]
    names = [d["LabelName"] for d in found]
    detection = any(d["LabelStats"]["BoundingBoxCount"] for d in found) or not names
    before, after = browse.neighbours(ctx, arn, entry_id)
    return {
        "entry": entry,
        "boxes": [asdict(b) for b in entry.boxes],
        "image_labels": [n for n, count in entry.labels.items() if count == 0],
        "revision": labelling.revision(line),
        "label_names": names,
        "colours": {n: label_colour(n) for n in names},
        "detection": detection,
        "prev_id": before,
        "next_id": after,
    }


@router.get(_ENTRY + "/label")
async def label_page(request: Request, name: str, kind: str, entry_id: int) -> Response:
    arn = await dataset_arn_of(request, name, kind)
    view = await call(_label_page, ctx_of(request), arn, entry_id)
    base = f"{PREFIX}/projects/{name}/datasets/{kind.lower()}"
    return render(request, "label.html", name=name, kind=kind.upper(), base=base, **view)


@router.post(_ENTRY + "/labels")
async def save_labels(
    request: Request, name: str, kind: str, entry_id: int, body: LabelsIn
) -> Response:
    """Save the image's boxes / image-level labels; answers the new revision as JSON."""
    arn = await dataset_arn_of(request, name, kind)
    boxes = None
    if body.boxes is not None:
        boxes = [
            labelling.LabelledBox(b.label, b.left, b.top, b.width, b.height) for b in body.boxes
        ]
    result = await call(
        labelling.save_entry_labels,
        ctx_of(request),
        arn,
        entry_id,
        body.revision,
        boxes,
        body.image_labels,
        body.size_wh,
    )
    return JSONResponse(result)
