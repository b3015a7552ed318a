"""Which keys are pipeline inputs, and where their outputs go.

Outputs sit beside the image: ``<key>.json`` (the result) and ``<key>.error.json`` (a bad
image). Every key ending in ``.json`` is an output and never an input, so results can never
trigger new jobs; hidden names (a path part starting with ``.``) are temporary files and state.
"""

from __future__ import annotations

__all__ = [
    "ERROR_SUFFIX",
    "RESULT_SUFFIX",
    "error_key",
    "is_input",
    "normalize_prefix",
    "result_key",
]

RESULT_SUFFIX = ".json"
ERROR_SUFFIX = ".error.json"


def result_key(key: str) -> str:
    """``test_images/a.jpg`` -> ``test_images/a.jpg.json``."""
    return key + RESULT_SUFFIX


def error_key(key: str) -> str:
    """``test_images/a.jpg`` -> ``test_images/a.jpg.error.json``."""
    return key + ERROR_SUFFIX


def normalize_prefix(prefix: str) -> str:
    """``test_images`` and ``/test_images/`` -> ``test_images/``; ``""`` stays the whole bucket."""
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def is_input(key: str, prefix: str) -> bool:
    """True for a key the pipeline should run the model on.

    Args:
        key: object key, ``/``-separated, already URL-decoded.
        prefix: normalized prefix (see :func:`normalize_prefix`); nested folders below it count.
    """
    if not key.startswith(prefix) or key.endswith("/") or key.endswith(RESULT_SUFFIX):
        return False
    return not any(part.startswith(".") for part in key[len(prefix) :].split("/"))
