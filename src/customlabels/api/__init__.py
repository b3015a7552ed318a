"""The HTTP service: AWS JSON 1.1 for boto3, a REST API under ``/v1``, errors mapped once."""

from customlabels.api.app import create_app

__all__ = ["create_app"]
