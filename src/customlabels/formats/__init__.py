"""Dataset formats: named ``load``/``save`` pairs over pure converters.

``load(fmt, path, **options) -> Dataset`` and ``save(fmt, dataset, path, **options)`` with
``fmt`` one of :func:`available_formats` (``groundtruth``, ``coco``, ``voc``, ``yolo``,
``folders``). Importers never raise for a bad line or box: they skip it and record it in a
:class:`ValidationReport` (pass ``report=`` to read it).
"""

from customlabels.formats import coco, folders, groundtruth, voc, yolo
from customlabels.formats.registry import (
    DatasetFormat,
    available_formats,
    get_format,
    load,
    register_format,
    save,
)
from customlabels.formats.report import Issue, Severity, ValidationReport

__all__ = [
    "DatasetFormat",
    "Issue",
    "Severity",
    "ValidationReport",
    "available_formats",
    "coco",
    "folders",
    "get_format",
    "groundtruth",
    "load",
    "register_format",
    "save",
    "voc",
    "yolo",
]
