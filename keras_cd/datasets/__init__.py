"""Datasets in the layouts the paper's experiments use."""

from keras_cd.datasets.digits import load_digits
from keras_cd.datasets.epochs import resumable_epochs
from keras_cd.datasets.gnnbench import GraphData, load_gnnbench, random_split

__all__ = ["GraphData", "load_digits", "load_gnnbench", "random_split", "resumable_epochs"]
