"""Datasets in the layouts the paper's experiments use."""

from keras_cd.datasets.digits import load_digits
from keras_cd.datasets.england_covid import CovidData, load_england_covid
from keras_cd.datasets.epochs import resumable_epochs
from keras_cd.datasets.gnnbench import GraphData, load_gnnbench, random_split

__all__ = [
    "CovidData",
    "GraphData",
    "load_digits",
    "load_england_covid",
    "load_gnnbench",
    "random_split",
    "resumable_epochs",
]
