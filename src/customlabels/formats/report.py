"""Problems found while reading a dataset, named with the service's error codes.

Every importer writes what it finds into a :class:`ValidationReport` instead of raising, so one
bad line never hides the others: a line-level error makes the line invalid (it is skipped), a
box-level error drops that box and keeps the line, a warning keeps everything.

Line numbers are 1-based (as an editor shows them); the service-shaped summary's
``error_json_line_indices`` are 0-based, as the service writes them.
"""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from customlabels.core.dataset import Task

__all__ = ["MAX_INVALID_FRACTION", "Issue", "Severity", "ValidationReport", "annotate_line"]

# Over this fraction of invalid lines the service fails the import (blank lines count).
MAX_INVALID_FRACTION = 0.20


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Issue:
    """One problem.

    Attributes:
        code: the service's code (``ERROR_INVALID_BOUNDING_BOX``, ...) or one of ours
            (documented in ``docs/datasets.md``).
        message: plain English, naming what was expected and what was found.
        line: 1-based line (or record) number in the source; ``None`` for the whole manifest.
        field: the field at fault, e.g. ``bee-labels.annotations[3].width``.
        severity: an error drops what it is about (line, box or dataset); a warning keeps it.
        source: the file the problem is in.
    """

    code: str
    message: str
    line: int | None = None
    field: str | None = None
    severity: Severity = Severity.ERROR
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.line is not None:
            out["line"] = self.line
        if self.field is not None:
            out["field"] = self.field
        out["severity"] = str(self.severity)
        return out

    def detail(self) -> dict[str, Any]:
        """:meth:`to_dict` without the line: what a line carries about itself."""
        return {k: v for k, v in self.to_dict().items() if k != "line"}

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        fld = f"{self.field}: " if self.field else ""
        return f"{where}{fld}{self.code}: {self.message}"


@dataclass
class ValidationReport:
    """What an importer or the validator found in one source.

    Attributes:
        source: the manifest (or annotation file/folder) it is about.
        use_case: detection or classification, once known.
        total_lines: lines read, blank lines included.
        invalid_lines: 1-based numbers of lines skipped because of an error.
        ignored_lines: 1-based numbers of lines the service would ignore (no annotations).
        issues: every problem in the order found.
        labels: per label ``{"images": ..., "boxes": ...}`` of what was kept (set by the
            validator).
        test: the test manifest's report, when one was validated alongside.
        refs: the ``source-ref`` of each 1-based line that has one, valid line or not.
    """

    source: str = ""
    use_case: Task | None = None
    total_lines: int = 0
    invalid_lines: set[int] = field(default_factory=set)
    ignored_lines: set[int] = field(default_factory=set)
    issues: list[Issue] = field(default_factory=list)
    labels: dict[str, dict[str, int]] = field(default_factory=dict)
    test: ValidationReport | None = None
    refs: dict[int, str] = field(default_factory=dict)

    # -- recording -------------------------------------------------------------------------
    def line_error(self, line: int, code: str, message: str, field: str | None = None) -> None:
        """An error that makes ``line`` invalid: the whole line is skipped."""
        self.invalid_lines.add(line)
        self.issues.append(Issue(code, message, line, field, Severity.ERROR, self.source))

    def item_error(
        self, line: int | None, code: str, message: str, field: str | None = None
    ) -> None:
        """An error about one box or label: that item is dropped, the line stays."""
        self.issues.append(Issue(code, message, line, field, Severity.ERROR, self.source))

    def warning(self, line: int | None, code: str, message: str, field: str | None = None) -> None:
        """Reported, nothing dropped."""
        self.issues.append(Issue(code, message, line, field, Severity.WARNING, self.source))

    def manifest_error(self, code: str, message: str) -> None:
        """An error about the whole manifest: the dataset is not usable."""
        self.issues.append(Issue(code, message, None, None, Severity.ERROR, self.source))

    def mark_invalid(self, line: int) -> None:
        """Make ``line`` invalid after its errors were recorded as item errors."""
        self.invalid_lines.add(line)

    def ignore_line(self, line: int) -> None:
        self.ignored_lines.add(line)

    def check_invalid_fraction(self, max_fraction: float = MAX_INVALID_FRACTION) -> bool:
        """The service's rule on a whole manifest: over ``max_fraction`` of its lines invalid
        (blank lines count) is ``ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST``, a manifest error.

        Returns:
            True when the manifest passes.
        """
        if self.invalid_fraction <= max_fraction:
            return True
        self.manifest_error(
            "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST",
            f"{len(self.invalid_lines)} of {self.total_lines} lines are invalid "
            f"({self.invalid_fraction:.0%}); expected at most {max_fraction:.0%}",
        )
        return False

    def issues_by_line(self) -> dict[int, list[Issue]]:
        """Every problem about one line, by 1-based line number, in the order found."""
        out: dict[int, list[Issue]] = {}
        for issue in self.issues:
            if issue.line is not None:
                out.setdefault(issue.line, []).append(issue)
        return out

    def merge(self, other: ValidationReport) -> None:
        """Append ``other``'s issues (e.g. a test manifest's) to this report."""
        self.issues.extend(other.issues)

    # -- reading ---------------------------------------------------------------------------
    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == Severity.ERROR]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == Severity.WARNING]

    @property
    def manifest_errors(self) -> list[Issue]:
        return [i for i in self.errors if i.line is None]

    @property
    def valid_lines(self) -> int:
        return self.total_lines - len(self.invalid_lines)

    @property
    def invalid_fraction(self) -> float:
        return len(self.invalid_lines) / self.total_lines if self.total_lines else 0.0

    @property
    def usable(self) -> bool:
        """True when training may go on: no manifest-level error (here or in the test report)."""
        return not self.manifest_errors and (self.test is None or self.test.usable)

    def codes(self, severity: Severity | None = None) -> Counter[str]:
        """How many times each code occurs (optionally of one severity)."""
        return Counter(i.code for i in self.issues if severity is None or i.severity == severity)

    def summary(self, with_issues: bool = True) -> dict[str, Any]:
        """The service's manifest summary shape, plus our additions.

        ``version``, ``statistics`` and ``errors`` (manifest-level ``{code, message}``) are as
        the service writes them; ``usable``, ``labels`` (per label image and box counts),
        ``issues`` (every per-line problem with ``line``, ``field``, ``severity``) and ``test``
        (the test manifest's summary) are ours.
        """
        out: dict[str, Any] = {
            "version": 1,
            "statistics": {
                "use_case": str(self.use_case) if self.use_case else None,
                "total_json_lines": self.total_lines,
                "valid_json_lines": self.valid_lines,
                "invalid_json_lines": len(self.invalid_lines),
                "ignored_json_lines": len(self.ignored_lines),
                "error_json_line_indices": sorted(n - 1 for n in self.invalid_lines),
            },
            "errors": [{"code": i.code, "message": i.message} for i in self.manifest_errors],
            "usable": self.usable,
            "labels": self.labels,
        }
        if with_issues:
            out["issues"] = [
                i.to_dict()
                for i in self.issues
                if i.line is not None or i.severity == Severity.WARNING
            ]
        if self.test is not None:
            out["test"] = self.test.summary(with_issues)
        return out


def annotate_line(text: str, details: Iterable[Mapping[str, Any]]) -> str:
    """``text`` (one manifest line) with its problems attached, as the service's validation
    manifest attaches them: an ``"errors"`` list of ``{code, message, field, severity}``
    (:meth:`Issue.detail`); a line that is not a JSON object becomes
    ``{"line": "<text>", "errors": [...]}``. A line without problems is returned unchanged.
    """
    errors = [dict(d) for d in details]
    if not errors:
        return text
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        obj = None
    if not isinstance(obj, dict):
        obj = {"line": text}
    obj["errors"] = errors
    return json.dumps(obj, ensure_ascii=False)
