"""Datasets: create one from a Ground Truth manifest in a bucket, upload images from the
computer, the automatic train/test split, and the dataset page (statistics, validation problems
with advice, the image browser)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile as StarletteUploadFile

from customlabels.console.app import guard
from customlabels.console.pages.images import browse_context
from customlabels.console.pages.projects import project_view
from customlabels.console.web import PREFIX, call, ctx_of, done, render
from customlabels.errors import ImageTooLargeError, InvalidParameterError
from customlabels.service import browse, datasets, imports, labelling, projects, uploads
from customlabels.service.context import Context

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(guard)])


def dataset_arn(ctx: Context, name: str, kind: str) -> str:
    """The ARN of project ``name``'s TRAIN or TEST dataset."""
    view = project_view(ctx, name)
    found = view["datasets"].get(kind.upper())
    if found is None:
        raise InvalidParameterError(f"project {name}: has no {kind.upper()} dataset yet")
    return str(found["DatasetArn"])


@router.post("/projects/{name}/datasets")
async def create_dataset(
    request: Request,
    name: str,
    dataset_type: Annotated[str, Form()] = "TRAIN",
    fmt: Annotated[str, Form(alias="format", max_length=32)] = "groundtruth",
    bucket: Annotated[str, Form(max_length=255)] = "",
    key: Annotated[str, Form(max_length=1024)] = "",
    images: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    """CreateDataset from ``s3://bucket/key`` (a Ground Truth manifest), or through the COCO /
    VOC / YOLO / folder importers; empty without a source."""
    ctx = ctx_of(request)
    bucket, key = bucket.strip(), key.strip()
    if fmt != "groundtruth" and key:
        result = await call(
            imports.import_dataset,
            ctx,
            name,
            dataset_type,
            fmt,
            bucket,
            key,
            images.strip() or None,
        )
        message = f"{dataset_type} dataset: {result['Entries']} images imported ({fmt})."
    else:
        arn = await call(projects.project_arn_of, ctx, name)
        source = None
        if bucket or key:
            source = {"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Name": key}}}
        await call(datasets.create_dataset, ctx, arn, dataset_type, source)
        message = f"{dataset_type} dataset created."
    return done(request, f"{PREFIX}/projects/{name}/datasets/{dataset_type.lower()}", message)


def _split(ctx: Context, name: str) -> None:
    view = project_view(ctx, name)
    train = view["datasets"].get("TRAIN")
    if train is None:
        raise InvalidParameterError(f"project {name}: create its TRAIN dataset first")
    if "TEST" not in view["datasets"]:
        datasets.create_dataset(ctx, view["arn"], "TEST")
        view = project_view(ctx, name)
    datasets.distribute_dataset_entries(
        ctx, [{"Arn": train["DatasetArn"]}, {"Arn": view["datasets"]["TEST"]["DatasetArn"]}]
    )


@router.post("/projects/{name}/split")
async def split(request: Request, name: str) -> Response:
    """Create the TEST dataset (if missing) and move 20% of TRAIN into it, group-aware."""
    await call(_split, ctx_of(request), name)
    return done(request, f"{PREFIX}/projects/{name}", "Split: 20% of the images moved to TEST.")


@router.get("/projects/{name}/datasets/{kind}")
async def dataset_page(request: Request, name: str, kind: str) -> Response:
    ctx = ctx_of(request)
    arn = await call(dataset_arn, ctx, name, kind)
    overview = await call(browse.dataset_overview, ctx, arn)
    grid = await browse_context(request, name, kind, arn)
    return render(request, "dataset.html", name=name, kind=kind.upper(), overview=overview, **grid)


@router.post("/projects/{name}/upload")
async def upload(request: Request, name: str) -> Response:
    """One image per request (the page sends each file separately, with a progress bar), so a
    refused file does not stop the others. Answers ``{"SourceRef", "Size"}`` as JSON."""
    ctx = ctx_of(request)
    limit = ctx.settings.s3_limits.max_bytes
    async with request.form(max_files=1, max_fields=10) as form:
        image = form.get("image")
        if not isinstance(image, StarletteUploadFile):
            raise InvalidParameterError("image: expected a file in the multipart field 'image'")
        data = await image.read(limit + 1)
        filename = image.filename or "image"
        kind = str(form.get("dataset_type") or "TRAIN")
        bucket = str(form.get("bucket") or "")
    if len(data) > limit:
        raise ImageTooLargeError(f"{filename}: over the limit of {limit} bytes")
    result = await call(uploads.upload_image, ctx, name, kind, bucket, filename, data)
    return JSONResponse(result)


@router.post("/projects/{name}/datasets/{kind}/labels/rename")
async def rename_label(
    request: Request,
    name: str,
    kind: str,
    label: Annotated[str, Form(max_length=256)],
    new_name: Annotated[str, Form(max_length=256)],
) -> Response:
    ctx = ctx_of(request)
    arn = await call(dataset_arn, ctx, name, kind)
    result = await call(labelling.rename_label, ctx, arn, label, new_name)
    return done(
        request,
        f"{PREFIX}/projects/{name}/datasets/{kind.lower()}",
        f"Label {label} renamed to {new_name.strip()} in {result['Entries']} image(s).",
    )


@router.post("/projects/{name}/datasets/{kind}/labels/delete")
async def delete_label(
    request: Request,
    name: str,
    kind: str,
    label: Annotated[str, Form(max_length=256)],
    confirm: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Delete a label with its boxes, after the person typed the label's name again."""
    base = f"{PREFIX}/projects/{name}/datasets/{kind.lower()}"
    if confirm != label:
        return done(request, base, f"Type the label's name ({label}) to delete it.", "error")
    ctx = ctx_of(request)
    arn = await call(dataset_arn, ctx, name, kind)
    result = await call(labelling.rename_label, ctx, arn, label, None)
    return done(request, base, f"Label {label} deleted from {result['Entries']} image(s).")
