"""Binding rules of `customlabels serve`: loopback by default, --no-auth only on loopback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from customlabels.api.server import check_binding, is_loopback
from customlabels.cli.main import app
from customlabels.errors import ConfigError
from customlabels.service import ServiceSettings


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("::", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        (ServiceSettings(host="0.0.0.0", auth=False), "only allowed when bound to loopback"),
        (ServiceSettings(host="127.0.0.1", auth=True), "no access key configured"),
        (ServiceSettings(host="127.0.0.1", auth=False), None),
        (ServiceSettings(host="0.0.0.0", access_key_id="k", secret_access_key="s"), None),
    ],
)
def test_check_binding(settings: ServiceSettings, error: str | None) -> None:
    if error is None:
        check_binding(settings)
    else:
        with pytest.raises(ConfigError, match=error):
            check_binding(settings)


def test_serve_refuses_no_auth_on_a_public_address(tmp_path: object) -> None:
    result = CliRunner().invoke(
        app, ["serve", "--host", "0.0.0.0", "--no-auth", "--home", str(tmp_path)]
    )
    assert isinstance(result.exception, ConfigError)
