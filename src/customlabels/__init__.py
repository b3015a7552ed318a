"""customlabels: a self-hosted Rekognition Custom Labels.

Import labelled images, train a detector or classifier on a CPU, evaluate it honestly, serve it
through a Rekognition-compatible API and run it on every image dropped into a bucket.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
