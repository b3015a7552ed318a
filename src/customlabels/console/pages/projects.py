"""Projects: the list (datasets, newest version and its status, created), create, and delete
after a confirmation page that names what goes with the project."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from customlabels.console.app import guard
from customlabels.console.web import PREFIX, call, ctx_of, done, render
from customlabels.service import datasets, projects, versions
from customlabels.service.context import Context

__all__ = ["project_view", "router"]

router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(guard)])


def project_view(ctx: Context, name: str) -> dict[str, Any]:
    """A project with its datasets (and their stats) and versions, newest first."""
    arn = projects.project_arn_of(ctx, name)
    desc = projects.describe_projects(ctx, [name])["ProjectDescriptions"][0]
    sets = {}
    for d in desc["Datasets"]:
        stats = datasets.describe_dataset(ctx, d["DatasetArn"])["DatasetDescription"]
        sets[d["DatasetType"]] = {**d, "Stats": stats["DatasetStats"]}
    found = versions.describe_project_versions(ctx, arn)["ProjectVersionDescriptions"]
    for v in found:
        v["Name"] = v["ProjectVersionArn"].split("/version/", 1)[1].split("/", 1)[0]
    return {"name": name, "arn": arn, "project": desc, "datasets": sets, "versions": found}


def _projects(ctx: Context) -> list[dict[str, Any]]:
    out = []
    for p in projects.describe_projects(ctx, max_results=100)["ProjectDescriptions"]:
        name = p["ProjectArn"].split(":project/", 1)[1].split("/", 1)[0]
        newest = versions.describe_project_versions(ctx, p["ProjectArn"], max_results=1)
        out.append(
            {**p, "Name": name, "Newest": (newest["ProjectVersionDescriptions"] or [None])[0]}
        )
    return out


@router.get("")
async def project_list(request: Request) -> Response:
    rows = await call(_projects, ctx_of(request))
    return render(request, "projects.html", projects=rows)


@router.post("/projects")
async def create_project(request: Request, name: Annotated[str, Form(max_length=300)]) -> Response:
    await call(projects.create_project, ctx_of(request), name.strip())
    return done(request, f"{PREFIX}/projects/{name.strip()}", f"Project {name.strip()} created.")


@router.get("/projects/{name}")
async def project_page(request: Request, name: str) -> Response:
    ctx = ctx_of(request)
    view = await call(project_view, ctx, name)
    return render(request, "project.html", budget_s=ctx.settings.train_time_budget_s, **view)


@router.get("/projects/{name}/delete")
async def confirm_delete(request: Request, name: str) -> Response:
    view = await call(project_view, ctx_of(request), name)
    return render(request, "project_delete.html", **view)


@router.post("/projects/{name}/delete")
async def delete_project(
    request: Request, name: str, confirm: Annotated[str, Form(max_length=300)] = ""
) -> Response:
    if confirm != name:
        return done(
            request,
            f"{PREFIX}/projects/{name}/delete",
            f"Type the project's name ({name}) to delete it.",
            "error",
        )
    ctx = ctx_of(request)
    arn = await call(projects.project_arn_of, ctx, name)
    await call(projects.delete_project, ctx, arn)
    return done(request, PREFIX, f"Project {name} deleted.")
