"""``customlabels worker``: which queue it serves and what each queue needs (refused before any
broker is contacted). The workers themselves run in tests/pipeline/test_scaleout.py (detection)
and tests/service/test_train_celery.py (training)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from customlabels.cli.main import app
from customlabels.errors import InvalidParameterError


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--queues", "gpu", "--broker", "redis://x/0"], "expected one of customlabels, train"),
        (["--queues", "train"], "--queues train: needs --broker"),
        (["--broker", "redis://x/0"], "detection needs --store and --model"),
    ],
)
def test_a_worker_without_what_its_queue_needs_is_refused(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["worker", *args])
    assert isinstance(result.exception, InvalidParameterError)
    assert message in str(result.exception)
