"""The service's use cases: projects, datasets, model versions, training jobs and serving.

Functions take a :class:`Context` (see :func:`open_context`) and return responses in the shape
of the Rekognition Custom Labels API, so the HTTP layer and the CLI only parse and render.
"""

from customlabels.service.context import Context, open_context
from customlabels.service.resolve import export_model, resolve_model
from customlabels.service.settings import ServiceSettings

__all__ = ["Context", "ServiceSettings", "export_model", "open_context", "resolve_model"]
