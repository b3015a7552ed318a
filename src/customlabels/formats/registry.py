"""The format registry: every dataset format is a named ``load``/``save`` pair.

Formats register themselves on import (``customlabels.formats`` imports them all); callers use
:func:`load` and :func:`save` with the format's name, never an if/elif over formats.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from customlabels.core.dataset import Dataset
from customlabels.errors import InvalidParameterError

__all__ = [
    "DatasetFormat",
    "available_formats",
    "get_format",
    "load",
    "option_names",
    "register_format",
    "save",
    "unsupported_options",
]

Loader = Callable[..., Dataset]
Saver = Callable[..., None]


@dataclass(frozen=True)
class DatasetFormat:
    """A registered format.

    Attributes:
        name: registry key (``groundtruth``, ``coco``, ...).
        load: ``load(path, **options) -> Dataset``.
        save: ``save(dataset, path, **options)``, or ``None`` when the format is read-only.
        description: one line for ``--help``.
        suffixes: file suffixes that suggest the format (for guessing), empty for folders.
    """

    name: str
    load: Loader
    save: Saver | None
    description: str
    suffixes: tuple[str, ...] = ()


_FORMATS: dict[str, DatasetFormat] = {}


def register_format(
    name: str,
    load: Loader,
    save: Saver | None,
    description: str,
    suffixes: tuple[str, ...] = (),
) -> None:
    """Add a format under ``name`` (re-registering a name replaces it)."""
    _FORMATS[name] = DatasetFormat(name, load, save, description, suffixes)


def available_formats(writable: bool = False) -> list[str]:
    """Registered names, sorted; only those with a writer when ``writable``."""
    return sorted(n for n, f in _FORMATS.items() if not writable or f.save is not None)


def get_format(name: str) -> DatasetFormat:
    try:
        return _FORMATS[name]
    except KeyError:
        raise InvalidParameterError(
            f"unknown dataset format {name!r}; expected one of {available_formats()}"
        ) from None


def option_names(fmt: str, verb: str) -> list[str]:
    """The options format ``fmt``'s ``load`` or ``save`` (``verb``) takes."""
    spec = get_format(fmt)
    func = spec.load if verb == "load" else spec.save
    if func is None:
        return []
    return sorted(k for k in inspect.signature(func).parameters if k not in ("path", "dataset"))


def unsupported_options(fmt: str, verb: str, options: dict[str, Any]) -> list[str]:
    """The options given (not ``None``) that format ``fmt``'s ``verb`` does not take."""
    takes = option_names(fmt, verb)
    return sorted(k for k, v in options.items() if v is not None and k not in takes)


def _options(fmt: str, verb: str, options: dict[str, Any]) -> dict[str, Any]:
    """Drop ``None`` options; refuse one the format's function does not take."""
    unknown = unsupported_options(fmt, verb, options)
    if unknown:
        raise InvalidParameterError(
            f"format {fmt!r} does not {verb} with {unknown}; it takes {option_names(fmt, verb)}"
        )
    return {k: v for k, v in options.items() if v is not None}


def load(fmt: str, path: Path | str, **options: Any) -> Dataset:
    """Load the dataset at ``path`` written in format ``fmt``.

    Options set to ``None`` are ignored, so callers may pass every option they have.
    """
    spec = get_format(fmt)
    return spec.load(Path(path), **_options(fmt, "load", options))


def save(fmt: str, dataset: Dataset, path: Path | str, **options: Any) -> None:
    """Write ``dataset`` at ``path`` in format ``fmt`` (``None`` options are ignored)."""
    spec = get_format(fmt)
    if spec.save is None:
        raise InvalidParameterError(
            f"format {fmt!r} can be read but not written; expected one of "
            f"{available_formats(writable=True)}"
        )
    spec.save(dataset, Path(path), **_options(fmt, "save", options))
