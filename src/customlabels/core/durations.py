"""Durations written by people: ``900``, ``900s``, ``15m``, ``1.5h``: the one grammar.

``customlabels train --time-budget``, ``customlabels serve --train-time-budget``, ``customlabels
models train --time-budget`` and the service's ``customlabels:time-budget`` tag all read it here,
and the default they all fall back to is :data:`DEFAULT_TIME_BUDGET_S`.
"""

from __future__ import annotations

import math
import re

from customlabels.errors import ConfigError

__all__ = ["DEFAULT_TIME_BUDGET_S", "parse_duration"]

#: The training budget when none is given (``train --time-budget``, ``serve
#: --train-time-budget``, the console's form, CreateProjectVersion without the tag). 30 minutes:
#: on the 2-core development machine the bee frames' held-out bee F1 goes 0.659 / 0.742 / 0.763 /
#: 0.775 at 5 / 15 / 30 / 60 minutes (bench/results/training.md), validation still rising at 30
#: and flat after it; on a slower 2-core machine 15 → 30 minutes lifted it 0.668 → 0.731.
DEFAULT_TIME_BUDGET_S = 30 * 60.0

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
