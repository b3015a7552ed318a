"""Resolving user-given references under a root without ever leaving it."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from customlabels.errors import UnsafePathError

__all__ = ["safe_join"]


def safe_join(root: Path, key: str) -> Path:
    """Return ``root / key`` if it stays inside ``root``; raise UnsafePathError otherwise.

    Refuses absolute keys, ``..`` parts, NUL bytes and symlinks that point out of ``root``
    (checked on the resolved path, so it holds for links anywhere along the way).
    """
    if "\x00" in key:
        raise UnsafePathError(f"{key!r}: NUL byte in reference")
    pure = PurePosixPath(key.replace("\\", "/"))
    if pure.is_absolute() or key.startswith(("/", "\\")) or (len(key) > 1 and key[1] == ":"):
        raise UnsafePathError(f"{key!r}: absolute path refused; expected a key under {root}")
    if ".." in pure.parts:
        raise UnsafePathError(f"{key!r}: '..' refused; a reference may not leave {root}")
    root_resolved = root.resolve()
    candidate = (root_resolved / Path(*pure.parts)) if pure.parts else root_resolved
    resolved = candidate.resolve()
    if resolved != root_resolved and root_resolved not in resolved.parents:
        raise UnsafePathError(f"{key!r}: resolves to {resolved}, outside {root_resolved}")
    return candidate
