"""Object stores: a local folder as a bucket, or any S3-compatible store through boto3."""

from customlabels.storage.base import ObjectInfo, ObjectStore, open_store
from customlabels.storage.local import LocalStore
from customlabels.storage.s3 import S3Fetch, S3Store

__all__ = ["LocalStore", "ObjectInfo", "ObjectStore", "S3Fetch", "S3Store", "open_store"]
