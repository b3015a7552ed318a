"""Models: train a version with a time budget, follow it live (phase, step, ETA, validation
score, the loss curve, the log), its evaluation, start/stop with inference units, try an image,
and code snippets filled with the version's real ARN and the server's endpoint."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import Response

from customlabels.console.app import guard
from customlabels.console.snippets import snippets
from customlabels.console.web import PREFIX, call, ctx_of, done, render
from customlabels.errors import ImageTooLargeError
from customlabels.service import projects, version_view, versions
from customlabels.service.versions import TIME_BUDGET_TAG

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(guard)])
_BASE = "/projects/{name}/versions/{version}"


@router.post("/projects/{name}/versions")
async def train(
    request: Request,
    name: str,
    version: Annotated[str, Form(max_length=255)],
    budget_s: Annotated[float | None, Form(gt=0, le=7 * 24 * 3600)] = None,
    expert_config: Annotated[str, Form()] = "",
) -> Response:
    """CreateProjectVersion with the budget (none: the server's default) as the
    ``customlabels:time-budget`` tag and the optional expert config (YAML; its shape checked by
    the service, its fields by the child)."""
    ctx = ctx_of(request)
    arn = await call(projects.project_arn_of, ctx, name)
    await call(
        versions.create_project_version,
        ctx,
        arn,
        version.strip(),
        testing_data={"AutoCreate": True} if not await call(_has_test, ctx, name) else None,
        tags={TIME_BUDGET_TAG: f"{budget_s:g}"} if budget_s is not None else None,
        expert_config=expert_config,
    )
    return done(
        request,
        f"{PREFIX}/projects/{name}/versions/{version.strip()}",
        f"Training of {version.strip()} queued.",
    )


def _has_test(ctx: object, name: str) -> bool:
    from customlabels.console.pages.projects import project_view

    return "TEST" in project_view(ctx, name)["datasets"]  # type: ignore[arg-type]


async def _details(request: Request, name: str, version: str) -> dict[str, Any]:
    ctx = ctx_of(request)
    arn = await call(versions.version_arn_of, ctx, name, version)
    details = await call(version_view.version_details, ctx, arn)
    return {"name": name, "version": version, "arn": arn, "d": details}


@router.get(_BASE)
async def version_page(request: Request, name: str, version: str) -> Response:
    view = await _details(request, name, version)
    endpoint = str(request.base_url).rstrip("/")
    return render(
        request,
        "version.html",
        **view,
        snippets=snippets(endpoint, name, version, str(view["arn"])),
    )


@router.get(_BASE + "/status")
async def version_status(request: Request, name: str, version: str) -> Response:
    """The live part of the version page (htmx polls it while something is in progress)."""
    return render(request, "_version_status.html", **await _details(request, name, version))


@router.post(_BASE + "/cancel")
async def cancel(request: Request, name: str, version: str) -> Response:
    ctx = ctx_of(request)
    arn = await call(versions.version_arn_of, ctx, name, version)
    await call(version_view.cancel_training, ctx, arn)
    return done(
        request,
        f"{PREFIX}/projects/{name}/versions/{version}",
        f"Cancelling the training of {version}.",
    )


@router.post(_BASE + "/start")
async def start(
    request: Request, name: str, version: str, units: Annotated[int, Form(ge=1, le=64)] = 1
) -> Response:
    ctx = ctx_of(request)
    arn = await call(versions.version_arn_of, ctx, name, version)
    await call(versions.start_project_version, ctx, arn, units)
    return done(
        request,
        f"{PREFIX}/projects/{name}/versions/{version}",
        f"Starting {version} with {units} inference unit(s).",
    )


@router.post(_BASE + "/stop")
async def stop(request: Request, name: str, version: str) -> Response:
    ctx = ctx_of(request)
    arn = await call(versions.version_arn_of, ctx, name, version)
    await call(versions.stop_project_version, ctx, arn)
    return done(request, f"{PREFIX}/projects/{name}/versions/{version}", f"Stopping {version}.")


@router.post(_BASE + "/try")
async def try_image(request: Request, name: str, version: str, image: UploadFile) -> Response:
    """DetectCustomLabels on an uploaded image with every label above 0 (the page's slider
    filters them by confidence without another request)."""
    ctx = ctx_of(request)
    limit = ctx.settings.request_limits.max_bytes
    data = await image.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLargeError(f"{image.filename}: over the limit of {limit} bytes")
    arn = await call(versions.version_arn_of, ctx, name, version)
    result = await call(versions.detect_custom_labels, ctx, arn, {"Bytes": data}, None, 0.0)
    from customlabels.io.images import read_size_wh, sniff_format

    kind = sniff_format(data, image.filename or "image").lower()
    size = read_size_wh(data, image.filename or "image", ctx.settings.request_limits)
    url = f"data:image/{kind};base64,{base64.b64encode(data).decode()}"
    return render(
        request,
        "_try_result.html",
        labels=result["CustomLabels"],
        url=url,
        size_wh=size,
        filename=image.filename or "image",
    )
