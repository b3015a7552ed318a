"""Durations written by people: ``900``, ``900s``, ``15m``, ``1.5h``: the one grammar.

``customlabels train --time-budget``, ``customlabels serve --train-time-budget``, ``customlabels
models train --time-budget`` and the service's ``customlabels:time-budget`` tag all read it here.
"""

from __future__ import annotations

import math
import re

from customlabels.errors import ConfigError

__all__ = ["parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([smh]?)\s*$", re.IGNORECASE)
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | float | int, what: str = "duration") -> float:
    """Seconds from ``"90"``, ``"90s"``, ``"15m"``, ``"1.5h"`` (or a number of seconds).

    Args:
        text: the duration.
        what: names the option or field in the message (e.g. ``--time-budget``).

    Raises:
        ConfigError: not a positive, finite duration in that grammar.
    """
    if isinstance(text, bool):
        raise ConfigError(f"{what}: expected a duration like 900, 900s, 15m or 1h, got {text!r}")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        match = _DURATION.match(text) if isinstance(text, str) else None
        if not match:
            raise ConfigError(
                f"{what}: expected a duration like 900, 900s, 15m or 1h, got {text!r}"
            )
        seconds = float(match.group(1)) * _UNIT_S[match.group(2).lower()]
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ConfigError(f"{what}: expected a positive duration, got {text!r}")
    return seconds
