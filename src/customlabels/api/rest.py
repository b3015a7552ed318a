"""A plain REST API under ``/v1`` for clients without boto3 (OpenAPI docs at ``/docs``).

Resources are named by project and version name instead of ARNs; each route calls the same use
case as the AWS JSON endpoint and returns its response unchanged.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile as StarletteUploadFile

from customlabels.api.auth import authenticate
from customlabels.errors import ImageTooLargeError, InvalidParameterError
from customlabels.service import projects, versions
from customlabels.service.context import Context
from customlabels.service.threads import in_thread

__all__ = ["router"]


async def _auth(request: Request) -> None:
    settings = request.app.state.settings
    # the body (read within limits by RequestLimits, and cached for the route) so SigV4 can
    # hash it
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
    return await in_thread(projects.describe_projects, _ctx(request))


@router.post("/projects", summary="Create a project (CreateProject)")
async def create_project(request: Request, body: NewProject) -> dict[str, Any]:
    return await in_thread(projects.create_project, _ctx(request), body.name)


@router.delete("/projects/{project}", summary="Delete a project (DeleteProject)")
async def delete_project(request: Request, project: str) -> dict[str, Any]:
    ctx = _ctx(request)
    return await in_thread(projects.delete_project, ctx, projects.project_arn_of(ctx, project))


@router.get("/projects/{project}/versions", summary="List model versions")
async def list_versions(request: Request, project: str) -> dict[str, Any]:
    ctx = _ctx(request)
    arn = projects.project_arn_of(ctx, project)
    return await in_thread(versions.describe_project_versions, ctx, arn)


@router.post("/projects/{project}/versions/{version}/start", summary="StartProjectVersion")
async def start_version(
    request: Request, project: str, version: str, units: Annotated[int, Query(ge=1)] = 1
) -> dict[str, Any]:
    ctx = _ctx(request)
    arn = versions.version_arn_of(ctx, project, version)
    return await in_thread(versions.start_project_version, ctx, arn, units)


@router.post("/projects/{project}/versions/{version}/stop", summary="StopProjectVersion")
async def stop_version(request: Request, project: str, version: str) -> dict[str, Any]:
    ctx = _ctx(request)
    arn = versions.version_arn_of(ctx, project, version)
    return await in_thread(versions.stop_project_version, ctx, arn)


_DETECT_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "min_confidence": {"type": "number", "minimum": 0, "maximum": 100},
                        "max_results": {"type": "integer", "minimum": 0},
                    },
                }
            }
        },
    }
}


@router.post(
    "/projects/{project}/versions/{version}/detect",
    summary="DetectCustomLabels on an uploaded image (multipart field 'image')",
    openapi_extra=_DETECT_FORM,
)
async def detect(request: Request, project: str, version: str) -> dict[str, Any]:
    """Form fields: ``image`` (JPEG/PNG), optional ``min_confidence`` (0–100), ``max_results``.

    The form is parsed here, after the router's auth has read (and signed-checked) the body.
    """
    ctx = _ctx(request)
    limit = ctx.settings.request_limits.max_bytes
    async with request.form() as form:  # closes the spooled upload when done
        upload = form.get("image")
        if not isinstance(upload, StarletteUploadFile):
            raise InvalidParameterError("image: expected a file in the multipart field 'image'")
        data = await upload.read(limit + 1)
        min_confidence = _number(form.get("min_confidence"), float, "min_confidence")
        max_results = _number(form.get("max_results"), int, "max_results")
    if len(data) > limit:
        raise ImageTooLargeError(f"{upload.filename}: over the limit of {limit} bytes")
    arn = versions.version_arn_of(ctx, project, version)
    return await in_thread(
        versions.detect_custom_labels, ctx, arn, {"Bytes": data}, max_results, min_confidence
    )


def _number(value: Any, kind: type, field: str) -> Any:
    if value is None or value == "":
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{field}: expected a {kind.__name__}, got {value!r}") from None
