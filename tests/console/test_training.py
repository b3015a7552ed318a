"""Training from the console: a failed training shows its reason and log; a training can be
cancelled; an expert config is checked, recorded and handed to the child. All but the last run
the real ``customlabels train`` child process of the service's trainer."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from .conftest import BUCKET, KEY, SECRET, Console, Server, wait_for


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


def test_the_version_form_offers_the_server_default_budget(
    console: Console, bee_project: str
) -> None:
    """The form's budget is the server's ``--train-time-budget`` (60 s in these tests)."""
    page = console.get(f"/console/projects/{bee_project}").text
    assert re.search(r'<input id="v-budget" name="budget_s"[^>]* value="60">', page), page


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


def test_an_expert_config_that_is_not_a_mapping_is_refused_before_training(
    console: Console, bee_project: str
) -> None:
    for text, says in (
        ("- optim\n- steps\n", "expected a mapping of training fields"),
        ("optim: {steps: [1\n", "not valid YAML"),
        ("a: " + "x" * 70_000, "expected at most 65536 bytes"),
    ):
        page = console.post(
            f"/console/projects/{bee_project}/versions",
            {"version": "x1", "budget_s": "30", "expert_config": text},
        )
        assert says in page.text, page.text[-2000:]
    listing = console.get(f"/console/projects/{bee_project}").text
    assert "/versions/x1" not in listing  # no version was created


def test_an_expert_config_field_the_trainer_rejects_fails_the_training_naming_it(
    console: Console, bee_project: str
) -> None:
    """The real ``customlabels train`` child validates the fields (the service does not)."""
    page = console.post(
        f"/console/projects/{bee_project}/versions",
        {"version": "x2", "budget_s": "30", "expert_config": "optim:\n  stepz: 5\n"},
    )
    assert "Training of x2 queued." in page.text
    wait_for(lambda: _status(console, bee_project, "x2") == "TRAINING_FAILED", 300)
    failed = console.get(f"/console/projects/{bee_project}/versions/x2").text
    reason = re.search(r'id="status-message">([^<]*)<', failed).group(1)  # type: ignore[union-attr]
    assert "stepz" in reason, reason
    assert '<pre class="log" id="expert-config">optim:\n  stepz: 5\n</pre>' in failed


def test_an_expert_config_reaches_the_training_child(tmp_path: Path, bee_buckets: Path) -> None:
    """A child that records its command line: ``--config`` names the version's recorded
    ``expert-config.yaml``, holding the text typed on the Train form."""
    from customlabels.api import create_app
    from customlabels.api.server import serve_in_thread
    from customlabels.service import ServiceSettings, open_context

    record = "import json, sys; open('argv.json', 'w').write(json.dumps(sys.argv)); sys.exit(3)"
    settings = ServiceSettings(
        home=tmp_path / "home",
        buckets_dir=bee_buckets,
        access_key_id=KEY,
        secret_access_key=SECRET,
        train_command=[sys.executable, "-c", record],
    )
    ctx = open_context(settings)
    text = "optim:\n  steps: 7   # a person's comment\n"
    try:
        with serve_in_thread(create_app(settings, ctx)) as url, Console(url) as c:
            c.sign_in()
            c.post("/console/projects", {"name": "cfg"})
            c.post(
                "/console/projects/cfg/datasets",
                {"dataset_type": "TRAIN", "bucket": BUCKET, "key": "output.manifest"},
            )
            page = c.post(
                "/console/projects/cfg/versions",
                {"version": "v1", "budget_s": "30", "expert_config": text},
            )
            assert "Training of v1 queued." in page.text
            wait_for(lambda: _status(c, "cfg", "v1") == "TRAINING_FAILED", 120)
    finally:
        ctx.close()
    version_dir = settings.models_dir / "cfg" / "v1"
    argv = json.loads((version_dir / "argv.json").read_text())
    config = Path(argv[argv.index("--config") + 1])
    assert config == version_dir / "expert-config.yaml"
    assert config.read_text() == text
