"""The pipeline page (when ``serve --pipeline-bucket`` names the bucket ``customlabels pipeline
run`` processes): queue counts, the newest results with their boxes, failed images with their
error, and "add to dataset" on a result (then correct it on the labelling page, retrain)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from customlabels.console.app import guard
from customlabels.console.pages.images import image_response
from customlabels.console.web import PREFIX, call, ctx_of, done, render
from customlabels.errors import InvalidParameterError
from customlabels.service import pipeline_view, projects

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(guard)])


@router.get("/pipeline")
async def pipeline_page(request: Request) -> Response:
    ctx = ctx_of(request)
    if not ctx.settings.pipeline_bucket:
        return render(request, "pipeline.html", overview=None, projects=[])
    overview = await call(pipeline_view.pipeline_overview, ctx)
    found = await call(projects.describe_projects, ctx)
    names = [
        p["ProjectArn"].split(":project/", 1)[1].split("/", 1)[0]
        for p in found["ProjectDescriptions"]
    ]
    return render(request, "pipeline.html", overview=overview, projects=names)


@router.get("/pipeline/image")
async def pipeline_image(request: Request, key: str) -> Response:
    """An image of the watched bucket (keys cannot leave it: the bucket resolver refuses)."""
    ctx = ctx_of(request)
    bucket = ctx.settings.pipeline_bucket
    if not bucket:
        raise InvalidParameterError("this server watches no bucket")
    data = await call(ctx.buckets.get, bucket, key, ctx.settings.s3_limits.max_bytes)
    return image_response(data, key)


@router.post("/pipeline/add")
async def add_to_dataset(
    request: Request,
    key: Annotated[str, Form(max_length=1024)],
    project: Annotated[str, Form(max_length=255)],
    dataset_type: Annotated[str, Form()] = "TRAIN",
) -> Response:
    result = await call(
        pipeline_view.add_result_to_dataset, ctx_of(request), project, dataset_type, key
    )
    return done(
        request,
        f"{PREFIX}/projects/{project}/datasets/{dataset_type.lower()}",
        f"{key} added to {project} {dataset_type} with the model's {result['Boxes']} "
        "box(es): correct them on the labelling page.",
    )
