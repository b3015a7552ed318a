"""Evaluation: per-label metrics with intervals (from EvaluationSummary.json), a threshold
slider per label recomputing precision / recall / F1 in the browser from the stored predictions,
saving a label's threshold into the version, the test images filtered by true positive / false
positive / miss per label, and two versions side by side."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from customlabels.console.app import guard
from customlabels.console.pages.images import image_response
from customlabels.console.web import PREFIX, call, ctx_of, done, render
from customlabels.service import evaluation_view, projects, version_view, versions

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(guard)])
_BASE = "/projects/{name}/versions/{version}/evaluation"


@router.get(_BASE)
async def evaluation_page(
    request: Request, name: str, version: str, label: str = "", outcome: str = ""
) -> Response:
    ctx = ctx_of(request)
    arn = await call(versions.version_arn_of, ctx, name, version)
    view = await call(evaluation_view.evaluation_view, ctx, arn, label[:256], outcome)
    details = await call(version_view.version_details, ctx, arn)
    return render(
        request,
        "evaluation.html",
        name=name,
        version=version,
        arn=arn,
        d=details,
        label=label,
        outcome=outcome,
        base=f"{PREFIX}/projects/{name}/versions/{version}",
        **view,
    )


@router.get(_BASE + "/images/{index}")
async def evaluation_image(request: Request, name: str, version: str, index: int) -> Response:
    ctx = ctx_of(request)
    arn = await call(versions.version_arn_of, ctx, name, version)
    data = await call(evaluation_view.evaluation_image, ctx, arn, index)
    return image_response(data, f"test image {index}")


@router.post(_BASE + "/threshold")
async def save_threshold(
    request: Request,
    name: str,
    version: str,
    label: Annotated[str, Form(max_length=256)],
    threshold: Annotated[float, Form(gt=0, le=1)],
) -> Response:
    ctx = ctx_of(request)
    arn = await call(versions.version_arn_of, ctx, name, version)
    await call(evaluation_view.set_label_threshold, ctx, arn, label, threshold)
    return done(
        request,
        f"{PREFIX}/projects/{name}/versions/{version}/evaluation",
        f"Threshold of {label} saved: {threshold:.2f} (used from the next start).",
    )


@router.get("/projects/{name}/compare")
async def compare(request: Request, name: str, a: str = "", b: str = "") -> Response:
    """Two versions' evaluations side by side."""
    ctx = ctx_of(request)
    arn = await call(projects.project_arn_of, ctx, name)
    found = await call(versions.describe_project_versions, ctx, arn)
    names = [
        v["ProjectVersionArn"].split("/version/", 1)[1].split("/", 1)[0]
        for v in found["ProjectVersionDescriptions"]
    ]
    chosen = [v for v in (a, b) if v]
    sides = []
    for v in chosen:
        varn = await call(versions.version_arn_of, ctx, name, v)
        sides.append({"version": v, "d": await call(version_view.version_details, ctx, varn)})
    return render(request, "compare.html", name=name, names=names, a=a, b=b, sides=sides)
