"""The exception tree, drawn once.

Every error the package raises on purpose is a :class:`CustomLabelsError`. Each class carries the
name of the Rekognition exception it maps to (``aws_type``) and an HTTP status, so the API layer
maps errors in one place and the pipeline writes the same names into ``<key>.error.json``.
"""

from __future__ import annotations

__all__ = [
    "IMAGE_FAULTS",
    "AccessDeniedError",
    "ConfigError",
    "CustomLabelsError",
    "DatasetError",
    "ImageTooLargeError",
    "InternalServerError",
    "InvalidImageError",
    "InvalidParameterError",
    "InvalidS3ObjectError",
    "LimitExceededError",
    "ManifestError",
    "RequestTimeoutError",
    "ResourceAlreadyExistsError",
    "ResourceInUseError",
    "ResourceNotFoundError",
    "ResourceNotReadyError",
    "StoreAccessError",
    "StoreUnavailableError",
    "UnsafePathError",
    "error_class_for",
]


class CustomLabelsError(Exception):
    """Base of every error raised on purpose by customlabels.

    Attributes:
        aws_type: the Rekognition exception name (``__type`` in an AWS JSON error body).
        http_status: the HTTP status the API answers with.
    """

    aws_type = "InvalidParameterException"
    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        """The AWS JSON 1.1 error body: ``{"__type": ..., "message": ...}``."""
        return {"__type": self.aws_type, "message": self.message}


class InvalidParameterError(CustomLabelsError):
    """A request or command-line parameter is wrong."""

    aws_type = "InvalidParameterException"


class ConfigError(InvalidParameterError):
    """A configuration file or value is invalid (names the field at fault)."""


class InvalidImageError(CustomLabelsError):
    """Not a PNG or JPEG, truncated, or unreadable."""

    aws_type = "InvalidImageFormatException"


class ImageTooLargeError(CustomLabelsError):
    """Too many bytes, too many pixels or a side over the limit."""

    aws_type = "ImageTooLargeException"


class InvalidS3ObjectError(CustomLabelsError):
    """An S3 object (or bucket-mapped file) that cannot be read."""

    aws_type = "InvalidS3ObjectException"


class UnsafePathError(InvalidS3ObjectError):
    """A reference that escapes its root (``..``, absolute path, symlink out): never read."""


class DatasetError(InvalidParameterError):
    """A dataset that cannot be used as a whole (e.g. too many invalid lines)."""


class ManifestError(DatasetError):
    """A manifest that cannot be read at all (missing file, not JSON Lines)."""


class ResourceNotFoundError(CustomLabelsError):
    aws_type = "ResourceNotFoundException"


class ResourceNotReadyError(CustomLabelsError):
    """A model version that is not RUNNING."""

    aws_type = "ResourceNotReadyException"


class ResourceInUseError(CustomLabelsError):
    aws_type = "ResourceInUseException"


class ResourceAlreadyExistsError(CustomLabelsError):
    aws_type = "ResourceAlreadyExistsException"


class AccessDeniedError(CustomLabelsError):
    aws_type = "AccessDeniedException"
    http_status = 400


class LimitExceededError(CustomLabelsError):
    aws_type = "LimitExceededException"


class RequestTimeoutError(CustomLabelsError):
    """A client that did not send its whole request in time (the server stopped waiting)."""

    aws_type = "RequestTimeoutException"
    http_status = 408


class InternalServerError(CustomLabelsError):
    aws_type = "InternalServerError"
    http_status = 500


class StoreUnavailableError(InternalServerError):
    """The object store could not answer: connection refused or reset, timeout, 5xx, throttling.

    Transient and never the object's fault: callers retry with backoff (a pipeline never writes
    it as an image error); the API answers 500, which AWS SDKs retry.
    """


class StoreAccessError(AccessDeniedError):
    """The store refused the request (credentials, permissions, KMS key): not the object's fault.

    Not transient either: a pipeline leaves the job to its dead-letter queue rather than writing
    an image error, so it is redone once the configuration is fixed.
    """


IMAGE_FAULTS: tuple[type[CustomLabelsError], ...] = (
    InvalidImageError,
    ImageTooLargeError,
    InvalidS3ObjectError,
)
"""The image's own faults (not an image, truncated, too large, unsupported, missing object).

The one rule of what a pipeline writes as ``<key>.error.json``: these and nothing else. Any
other error (a store outage, a refused write, a model crash) is retried and ends, if it keeps
failing, in the queue's dead letters.
"""


def error_class_for(aws_type: str) -> type[CustomLabelsError] | None:
    """The most general class of this tree that answers with ``aws_type``, or None.

    The inverse of ``aws_type`` (e.g. for a client turning a server's ``__type`` back into an
    exception): classes are visited breadth first, so ``InvalidParameterException`` gives
    :class:`InvalidParameterError`, not one of its subclasses.
    """
    queue = list(CustomLabelsError.__subclasses__())
    while queue:
        cls = queue.pop(0)
        if cls.aws_type == aws_type:
            return cls
        queue.extend(cls.__subclasses__())
    return None
