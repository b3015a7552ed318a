"""The image browser: a paged thumbnail grid with boxes in label colours, filters (label,
unlabelled, has errors, file name), one image large with its boxes, and moving an image
between the TRAIN and TEST datasets. Images are served by entry id, from their own bucket."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from customlabels.console.app import ConsoleState, guard
from customlabels.console.images import make_thumbnail
from customlabels.console.web import PREFIX, call, ctx_of, done, render
from customlabels.io.images import sniff_format
from customlabels.service import browse, projects

__all__ = ["PER_PAGE", "browse_context", "dataset_arn_of", "image_response", "router"]

PER_PAGE = 48
router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(guard)])
_BASE = "/projects/{name}/datasets/{kind}"


def _filter(request: Request) -> tuple[browse.EntryFilter, int]:
    q = request.query_params
    errors = {"yes": True, "no": False}.get(q.get("errors", ""))
    where = browse.EntryFilter(
        label=q.get("label", "")[:255],
        unlabelled=q.get("unlabelled") == "on",
        errors=errors,
        name=q.get("q", "")[:255],
    )
    try:
        page = max(0, int(q.get("page", "0")))
    except ValueError:
        page = 0
    return where, page


async def browse_context(request: Request, name: str, kind: str, arn: str) -> dict[str, Any]:
    """What the grid template needs: the page of entries, the filters and the paging."""
    where, page = _filter(request)
    entries, total = await call(browse.browse_entries, ctx_of(request), arn, where, page, PER_PAGE)
    pages = max(1, -(-total // PER_PAGE))
    query = {k: v for k, v in request.query_params.items() if k != "page" and v}
    return {
        "entries": entries,
        "total": total,
        "page": page,
        "pages": pages,
        "where": where,
        "query": query,
        "base": f"{PREFIX}/projects/{name}/datasets/{kind.lower()}",
    }


async def dataset_arn_of(request: Request, name: str, kind: str) -> str:
    """The ARN of project ``name``'s ``kind`` (train/test) dataset."""
    from customlabels.console.pages.datasets import dataset_arn

    return await call(dataset_arn, ctx_of(request), name, kind)


@router.get(_BASE + "/grid")
async def grid(request: Request, name: str, kind: str) -> Response:
    arn = await dataset_arn_of(request, name, kind)
    return render(
        request,
        "_grid.html",
        name=name,
        kind=kind.upper(),
        **await browse_context(request, name, kind, arn),
    )


@router.get(_BASE + "/entries/{entry_id}")
async def entry_page(request: Request, name: str, kind: str, entry_id: int) -> Response:
    arn = await dataset_arn_of(request, name, kind)
    entry = await call(browse.get_entry, ctx_of(request), arn, entry_id)
    return render(
        request,
        "entry.html",
        name=name,
        kind=kind.upper(),
        entry=entry,
        base=f"{PREFIX}/projects/{name}/datasets/{kind.lower()}",
    )


def image_response(data: bytes, name: str) -> Response:
    """JPEG or PNG bytes (by content) as a response the browser may cache briefly."""
    media = "image/png" if sniff_format(data, name) == "PNG" else "image/jpeg"
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=300"})


@router.get(_BASE + "/entries/{entry_id}/image")
async def entry_image(request: Request, name: str, kind: str, entry_id: int) -> Response:
    arn = await dataset_arn_of(request, name, kind)
    data = await call(browse.entry_image, ctx_of(request), arn, entry_id)
    return image_response(data, f"entry {entry_id}")


@router.get(_BASE + "/entries/{entry_id}/thumb")
async def entry_thumb(request: Request, name: str, kind: str, entry_id: int) -> Response:
    ctx = ctx_of(request)
    arn = await dataset_arn_of(request, name, kind)
    entry = await call(browse.get_entry, ctx, arn, entry_id)
    cache: ConsoleState = request.app.state.console
    key = (arn, entry_id, entry.source_ref, 320)
    thumb = cache.thumbs.get(key)
    if thumb is None:
        data = await call(browse.entry_image, ctx, arn, entry_id)
        thumb = await call(make_thumbnail, data, entry.name)
        cache.thumbs.put(key, thumb)
    return image_response(thumb, entry.name)


@router.post(_BASE + "/entries/{entry_id}/move")
async def move(
    request: Request,
    name: str,
    kind: str,
    entry_id: int,
    to: Annotated[str, Form()] = "TEST",
) -> Response:
    ctx = ctx_of(request)
    arn = await call(projects.project_arn_of, ctx, name)
    await call(browse.move_entries, ctx, arn, [entry_id], to.upper())
    return done(
        request,
        f"{PREFIX}/projects/{name}/datasets/{kind.lower()}",
        f"Image moved to {to.upper()}.",
    )
