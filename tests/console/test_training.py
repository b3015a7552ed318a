"""Training from the console: a failed training shows its reason and log; a training can be
cancelled. Both run the real ``customlabels train`` child process of the service's trainer."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import BUCKET, Console, Server, wait_for


def _status(console: Console, project: str, version: str) -> str:
    page = console.get(f"/console/projects/{project}/versions/{version}/status").text
    return re.search(r'id="status-text">([A-Z_]+)<', page).group(1)  # type: ignore[union-attr]


def test_a_failed_training_shows_its_reason_and_log(
    console: Console, server: Server, datasets_dir: Path
) -> None:
    """Two unlabelled images are a valid dataset but nothing to learn from: training fails."""
    from customlabels.service import uploads

    console.post("/console/projects", {"name": "unlabelled"})
    for path in sorted((datasets_dir / "bee-crops" / "images" / "queen").glob("*.jpg"))[:2]:
        uploads.upload_image(
            server.ctx, "unlabelled", "TRAIN", BUCKET, path.name, path.read_bytes()
        )
    page = console.post(
        "/console/projects/unlabelled/versions", {"version": "v1", "budget_s": "30"}
    )
    assert "Training of v1 queued." in page.text
    wait_for(lambda: _status(console, "unlabelled", "v1") == "TRAINING_FAILED", 300)
    failed = console.get("/console/projects/unlabelled/versions/v1").text
    assert "<details open><summary>Training log (last lines)</summary>" in failed
    reason = re.search(r'id="status-message">([^<]*)<', failed).group(1)  # type: ignore[union-attr]
    assert "exit" in reason.lower() or "error" in reason.lower(), reason
    assert "Start the model</button>" not in failed and "Use it from code" not in failed


def test_cancel_a_training(console: Console, bee_project: str) -> None:
    page = console.post(
        f"/console/projects/{bee_project}/versions", {"version": "c1", "budget_s": "600"}
    )
    assert "Cancel training" in page.text
    cancelled = console.post(f"/console/projects/{bee_project}/versions/c1/cancel")
    assert "Cancelling the training of c1." in cancelled.text
    wait_for(lambda: _status(console, bee_project, "c1") == "TRAINING_FAILED", 120)
    after = console.get(f"/console/projects/{bee_project}/versions/c1").text
    assert "cancelled by the user" in after and "Cancel training" not in after
    again = console.post(f"/console/projects/{bee_project}/versions/c1/cancel")
    assert "not training: nothing to cancel" in again.text
