"""The console's pages, one module each (sign-in, projects, datasets and images, labelling,
models)."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["routers"]


def routers() -> list[APIRouter]:
    """Every page router, in the order of a user's flow."""
    from customlabels.console.pages import (
        auth,
        datasets,
        evaluation,
        images,
        labelling,
        models,
        pipeline,
        projects,
    )

    return [
        auth.router,
        projects.router,
        datasets.router,
        images.router,
        labelling.router,
        models.router,
        evaluation.router,
        pipeline.router,
    ]
