"""The one duration grammar, shared by ``--time-budget``, ``--train-time-budget`` and the
service's ``customlabels:time-budget`` tag."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from customlabels.core.durations import parse_duration
from customlabels.errors import ConfigError

SRC = Path(__file__).resolve().parents[2] / "src" / "customlabels"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("900", 900.0),
        ("900s", 900.0),
        ("15m", 900.0),
        ("1.5h", 5400.0),
        (" 2 M ", 120.0),
        (30, 30.0),
    ],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15 minutes", "1h30m", "-5", "0", "0s", "nan", "1e3", True])
def test_bad_durations_name_the_option(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^--time-budget: expected a"):
        parse_duration(text, "--time-budget")


def test_the_cli_and_the_service_share_it() -> None:
    from customlabels.cli import train_cmd
    from customlabels.service import versions

    assert train_cmd.parse_duration is parse_duration is versions.parse_duration
    # serve and models train import it inside their commands (the CLI starts fast)
    text = (SRC / "cli" / "service_cmd.py").read_text()
    assert text.count("from customlabels.core.durations import parse_duration") == 2
    # no second grammar anywhere in the package
    units = re.compile(r"""["']m["']\s*:\s*60""")
    found = [p.name for p in SRC.rglob("*.py") if units.search(p.read_text())]
    assert found == ["durations.py"]
