"""The expert training config a person can give with CreateProjectVersion (the console's Train
form): a YAML mapping of ``customlabels train`` knobs (``docs/training.md``), any subset.

The service checks only its shape — YAML, a mapping, at most :data:`MAX_BYTES` — so that a
mistyped paste is refused before a job is queued; the fields are validated by the training child
(``customlabels train --config``, whose pydantic models name the field at fault), and a config
it rejects ends the training as TRAINING_FAILED with its message. The service never imports the
training package.

The text is recorded with the version as ``<version folder>/expert-config.yaml`` (the child also
writes the resolved config to ``model/config.yaml``).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from customlabels.errors import InvalidParameterError

__all__ = ["EXPERT_CONFIG_NAME", "MAX_BYTES", "check_expert_config", "record_expert_config"]

EXPERT_CONFIG_NAME = "expert-config.yaml"
#: A full config.yaml is ≈3 KB; anything near this size is a wrong paste.
MAX_BYTES = 64 * 1024


def check_expert_config(text: str | None) -> str | None:
    """The config text if it is a non-empty YAML mapping; None when blank.

    Raises:
        InvalidParameterError: over :data:`MAX_BYTES`, not YAML, or not a mapping.
    """
    if text is None or not text.strip():
        return None
    size = len(text.encode("utf-8"))
    if size > MAX_BYTES:
        raise InvalidParameterError(
            f"expert config: expected at most {MAX_BYTES} bytes, got {size}"
        )
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidParameterError(f"expert config: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidParameterError(
            f"expert config: expected a mapping of training fields (e.g. 'optim: {{steps: 200}}'), "
            f"got {type(data).__name__}"
        )
    return text


def record_expert_config(version_dir: Path, text: str | None) -> Path | None:
    """Write ``text`` as the version's expert config (removing a stale one when None)."""
    path = Path(version_dir) / EXPERT_CONFIG_NAME
    if text is None:
        path.unlink(missing_ok=True)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
