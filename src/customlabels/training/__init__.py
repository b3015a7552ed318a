"""Training (the only package that imports torch): ``train()`` writes a model version folder."""

from customlabels.training.config import TrainConfig
from customlabels.training.run import train, train_dataset

__all__ = ["TrainConfig", "train", "train_dataset"]
