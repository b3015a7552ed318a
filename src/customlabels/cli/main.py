"""``customlabels``: the console entry point.

Each area registers its commands from its own module; heavy libraries (torch, onnxruntime,
FastAPI) are imported inside the commands, so ``customlabels --help`` stays fast and ``detect``
never pulls in torch.
"""

from __future__ import annotations

import sys

import typer

from customlabels import __version__
from customlabels.cli import datasets_cmd, evaluate_cmd, pipeline_cmd, service_cmd, train_cmd
from customlabels.errors import CustomLabelsError

app = typer.Typer(
    name="customlabels",
    help=(
        "Self-hosted Rekognition Custom Labels: import and validate labelled images, train a "
        "detector or classifier on a CPU, evaluate it, serve it and run it on a bucket."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"customlabels {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Self-hosted Rekognition Custom Labels."""


for _module in (datasets_cmd, train_cmd, evaluate_cmd, service_cmd, pipeline_cmd):
    _module.register(app)


def main() -> None:
    """Run the CLI; a CustomLabelsError becomes one line on stderr and exit code 2."""
    try:
        # with standalone_mode=False click *returns* the code of a typer.Exit(n) raised by a
        # command instead of exiting: pass it on (validate's exit 1 = not usable)
        rc = app(standalone_mode=False)
    except CustomLabelsError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # click's usage errors
        # typer >= 0.16 vendors click (typer._click): its exceptions are not click's, so
        # recognise a usage error by its interface rather than by class
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        raise
    if isinstance(rc, int) and not isinstance(rc, bool) and rc:
        sys.exit(rc)


if __name__ == "__main__":
    main()
