"""``s3://bucket/key`` URIs: the one parser and formatter of the package.

Manifests, the service's requests, the pipeline's ``--store`` and the CLI all name objects this
way; every part of the package splits and builds such URIs here, never by slicing strings.
"""

from __future__ import annotations

from customlabels.errors import InvalidParameterError

__all__ = ["S3_SCHEME", "format_s3_uri", "is_s3_uri", "parse_s3_uri", "s3_bucket_of", "s3_key_of"]

S3_SCHEME = "s3://"


def is_s3_uri(text: str) -> bool:
    """Whether ``text`` is written with the ``s3://`` scheme (well formed or not)."""
    return text.startswith(S3_SCHEME)


def parse_s3_uri(uri: str, key_required: bool = True, what: str = "") -> tuple[str, str]:
    """``s3://bucket/key`` → ``(bucket, key)``.

    Args:
        uri: the URI.
        key_required: refuse a URI without an object key (``s3://bucket`` or
            ``s3://bucket/prefix/``); with False, ``s3://bucket[/prefix]`` gives
            ``(bucket, prefix)`` (``prefix`` may be empty).
        what: names the parameter or field in the message (e.g. ``--store``).

    Raises:
        InvalidParameterError: not of that form.
    """
    where = f"{what}: " if what else ""
    shape = "s3://BUCKET/KEY" if key_required else "s3://BUCKET[/PREFIX]"
    if not isinstance(uri, str) or not is_s3_uri(uri):
        raise InvalidParameterError(f"{where}expected {shape}, got {uri!r}")
    bucket, sep, key = uri[len(S3_SCHEME) :].partition("/")
    if not bucket or (key_required and (not sep or not key or key.endswith("/"))):
        raise InvalidParameterError(
            f"{where}expected {shape} with a bucket{' and an object key' * key_required}, "
            f"got {uri!r}"
        )
    return bucket, key


def format_s3_uri(bucket: str, key: str = "") -> str:
    """``(bucket, key)`` → ``s3://bucket/key`` (``s3://bucket`` without a key)."""
    return f"{S3_SCHEME}{bucket}/{key}" if key else f"{S3_SCHEME}{bucket}"


def s3_bucket_of(ref: str) -> str | None:
    """The bucket of an ``s3://`` ref; None for any other ref (a relative path)."""
    if not is_s3_uri(ref):
        return None
    return parse_s3_uri(ref, key_required=False)[0]


def s3_key_of(ref: str) -> str:
    """The object key of an ``s3://`` ref, or the ref itself when it is a relative path."""
    if not is_s3_uri(ref):
        return ref
    return parse_s3_uri(ref, key_required=False)[1]
