"""Datasets in the layouts the paper's experiments use.

The experiments of Wang, Bao & Shi (arXiv 2403.15726) classify images with
convection-diffusion ResNets and classify nodes or forecast cases with COIN,
whose diffusion half is the graph heat equation u_t = -L u on the data graph.
The loaders:

- [`load_digits`][keras_cd.datasets.load_digits]: small real images that need
  no download, for `keras_cd.models.cd_resnet`;
- [`load_gnnbench`][keras_cd.datasets.load_gnnbench] (a
  [`GraphData`][keras_cd.datasets.GraphData]) and
  [`random_split`][keras_cd.datasets.random_split]: Cora, CiteSeer and PubMed
  for node classification;
- [`load_england_covid`][keras_cd.datasets.load_england_covid] (a
  [`CovidData`][keras_cd.datasets.CovidData]): daily COVID-19 cases on daily
  mobility graphs, for forecasting;
- the forecasting protocol's pieces, from the training period only where
  they are statistics: [`missing_mask`][keras_cd.datasets.missing_mask],
  [`region_statistics`][keras_cd.datasets.region_statistics],
  [`standardize`][keras_cd.datasets.standardize],
  [`forecasting_windows`][keras_cd.datasets.forecasting_windows] (a
  [`Windows`][keras_cd.datasets.Windows]),
  [`temporal_split`][keras_cd.datasets.temporal_split] and
  [`mobility_laplacian`][keras_cd.datasets.mobility_laplacian];
- [`resumable_epochs`][keras_cd.datasets.resumable_epochs]: a tf.data stream
  whose every epoch is a function of (seed, epoch), so that a resumed run
  sees the batches the uninterrupted run would have.
"""

from keras_cd.datasets.digits import load_digits
from keras_cd.datasets.england_covid import (
    CovidData,
    Windows,
    forecasting_windows,
    load_england_covid,
    missing_mask,
    mobility_laplacian,
    region_statistics,
    standardize,
    temporal_split,
)
from keras_cd.datasets.epochs import resumable_epochs
from keras_cd.datasets.gnnbench import GraphData, load_gnnbench, random_split

__all__ = [
    "CovidData",
    "GraphData",
    "Windows",
    "forecasting_windows",
    "load_digits",
    "load_england_covid",
    "load_gnnbench",
    "missing_mask",
    "mobility_laplacian",
    "random_split",
    "region_statistics",
    "resumable_epochs",
    "standardize",
    "temporal_split",
]
