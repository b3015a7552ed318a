"""A plain REST API under ``/v1`` for clients without boto3 (OpenAPI docs at ``/docs``).

Resources are named by project and version name instead of ARNs; each route calls the same use
case as the AWS JSON endpoint and returns its response unchanged.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from customlabels.api.auth import authenticate, check_body_size
from customlabels.errors import ImageTooLargeError
from customlabels.service import projects, versions
from customlabels.service.context import Context

__all__ = ["router"]

_FORM_OVERHEAD = 64 * 1024  # multipart boundaries and form fields around the image


async def _auth(request: Request) -> None:
    settings = request.app.state.settings
    check_body_size(request, settings.request_limits.max_bytes + _FORM_OVERHEAD)
    body = await request.body() if settings.auth else b""
    authenticate(request, body, settings, basic=True)


router = APIRouter(prefix="/v1", dependencies=[Depends(_auth)])


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


class NewProject(BaseModel):
    name: str = Field(description="project name: 1–255 characters of [a-zA-Z0-9_.-]")


@router.get("/projects", summary="List projects (DescribeProjects)")
async def list_projects(request: Request) -> dict[str, Any]:
    return await run_in_threadpool(projects.describe_projects, _ctx(request))


@router.post("/projects", summary="Create a project (CreateProject)")
async def create_project(request: Request, body: NewProject) -> dict[str, Any]:
    return await run_in_threadpool(projects.create_project, _ctx(request), body.name)


@router.delete("/projects/{project}", summary="Delete a project (DeleteProject)")
async def delete_project(request: Request, project: str) -> dict[str, Any]:
    ctx = _ctx(request)
    return await run_in_threadpool(
        projects.delete_project, ctx, projects.project_arn_of(ctx, project)
    )


@router.get("/projects/{project}/versions", summary="List model versions")
async def list_versions(request: Request, project: str) -> dict[str, Any]:
    ctx = _ctx(request)
    arn = projects.project_arn_of(ctx, project)
    return await run_in_threadpool(versions.describe_project_versions, ctx, arn)


@router.post("/projects/{project}/versions/{version}/start", summary="StartProjectVersion")
async def start_version(
    request: Request, project: str, version: str, units: Annotated[int, Query(ge=1)] = 1
) -> dict[str, Any]:
    ctx = _ctx(request)
    arn = versions.version_arn_of(ctx, project, version)
    return await run_in_threadpool(versions.start_project_version, ctx, arn, units)


@router.post("/projects/{project}/versions/{version}/stop", summary="StopProjectVersion")
async def stop_version(request: Request, project: str, version: str) -> dict[str, Any]:
    ctx = _ctx(request)
    arn = versions.version_arn_of(ctx, project, version)
    return await run_in_threadpool(versions.stop_project_version, ctx, arn)


@router.post(
    "/projects/{project}/versions/{version}/detect",
    summary="DetectCustomLabels on an uploaded image (multipart field 'image')",
)
async def detect(
    request: Request,
    project: str,
    version: str,
    image: Annotated[UploadFile, File(description="a JPEG or PNG image")],
    min_confidence: Annotated[float | None, Form(ge=0, le=100)] = None,
    max_results: Annotated[int | None, Form(ge=0)] = None,
) -> dict[str, Any]:
    ctx = _ctx(request)
    limit = ctx.settings.request_limits.max_bytes
    data = await image.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLargeError(f"{image.filename}: over the limit of {limit} bytes")
    arn = versions.version_arn_of(ctx, project, version)
    return await run_in_threadpool(
        versions.detect_custom_labels,
        ctx,
        arn,
        {"Bytes": data},
        max_results,
        min_confidence,
    )
