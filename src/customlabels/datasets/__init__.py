"""Dataset use cases over the formats: validation, statistics, splits and a synthetic sample.

Import the modules you need (``customlabels.datasets.split`` etc.); this package keeps its
``__init__`` light so that importing one does not pull in the others.
"""
