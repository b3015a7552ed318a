"""The web console at ``/console``: the whole Custom Labels flow in a browser, server-rendered
(FastAPI + Jinja2 + htmx), a client of the same service use cases as the APIs."""

from customlabels.console.app import install_console

__all__ = ["install_console"]
