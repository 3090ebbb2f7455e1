"""Transductive few-shot classification with COIN, on the features of any backbone.

The paper's third experiment (Wang, Bao & Shi, 2024, the few-shot
section): a frozen backbone's features of a few-shot dataset
([`load_features`][keras_cd.few_shot.load_features], an `.npz` of
`features`, `labels`, `split`, as a [`FeatureSet`][keras_cd.few_shot.FeatureSet];
or the reference code's pickles with
[`load_reference_features(..., allow_pickle=True)`][keras_cd.few_shot.load_reference_features]),
tasks of N classes with K labeled and Q = 15 query images per class
([`sample_tasks`][keras_cd.few_shot.sample_tasks], a
[`Tasks`][keras_cd.few_shot.Tasks]), the reference preprocessing
([`preprocess`][keras_cd.few_shot.preprocess]: CL2N,
[`center_normalize`][keras_cd.few_shot.center_normalize], then the query
shift, [`shift_queries`][keras_cd.few_shot.shift_queries]), and on each task
COIN: a residual classifier whose class probabilities diffuse over the
Gaussian kNN graph of the task's support and query features
([`TransductiveCOIN`][keras_cd.few_shot.TransductiveCOIN],
[`reference_laplacian`][keras_cd.few_shot.reference_laplacian]), trained on
the support labels only. Baselines run in the same harness on the same
tasks ([`NearestClassMean`][keras_cd.few_shot.NearestClassMean],
SimpleShot; [`LogisticRegression`][keras_cd.few_shot.LogisticRegression];
COIN without diffusion; [`standard_methods`][keras_cd.few_shot.standard_methods])
and [`evaluate`][keras_cd.few_shot.evaluate] scores them all,
[`paired_comparison`][keras_cd.few_shot.paired_comparison] task by task.
[`extract_features`][keras_cd.few_shot.extract_features] makes a features
file from a Keras backbone.

Example:
>>> import numpy as np, keras_cd
>>> rng = np.random.default_rng(0)
>>> labels = np.repeat(np.arange(8), 20)
>>> features = rng.normal(size=(8, 16))[labels] + 0.5 * rng.normal(size=(160, 16))
>>> data = keras_cd.few_shot.FeatureSet(features, labels, np.where(labels < 3, "base", "novel"))
>>> tasks, query_labels = keras_cd.few_shot.sample_tasks(
...     data, way=5, shot=1, queries=5, num_tasks=20)
>>> methods = {"SimpleShot": keras_cd.few_shot.NearestClassMean()}
>>> results = keras_cd.few_shot.evaluate(methods, tasks, query_labels)
>>> results["SimpleShot"].mean > 60  # chance: 20%
True
"""

# First: a missing backend package gets an error that says how to fix it.
from keras_cd import _keras  # noqa: F401

# isort: split
from keras_cd.few_shot.baselines import LogisticRegression, NearestClassMean
from keras_cd.few_shot.coin import TransductiveCOIN, initial_weights
from keras_cd.few_shot.evaluation import (
    COIN,
    MethodResult,
    confidence_interval,
    evaluate,
    format_comparisons,
    format_table,
    paired_comparison,
    standard_methods,
)
from keras_cd.few_shot.extraction import (
    extract_features,
    feature_extractor,
    image_folder,
    tfds_images,
)
from keras_cd.few_shot.features import (
    SPLITS,
    FeatureSet,
    load_features,
    load_reference_features,
    save_features,
)
from keras_cd.few_shot.graph import GRAPHS, package_laplacian, reference_laplacian
from keras_cd.few_shot.preprocessing import center_normalize, preprocess, shift_queries
from keras_cd.few_shot.tasks import Tasks, sample_tasks

__all__ = [
    "COIN",
    "GRAPHS",
    "SPLITS",
    "FeatureSet",
    "LogisticRegression",
    "MethodResult",
    "NearestClassMean",
    "Tasks",
    "TransductiveCOIN",
    "center_normalize",
    "confidence_interval",
    "evaluate",
    "extract_features",
    "feature_extractor",
    "format_comparisons",
    "format_table",
    "image_folder",
    "initial_weights",
    "load_features",
    "load_reference_features",
    "package_laplacian",
    "paired_comparison",
    "preprocess",
    "reference_laplacian",
    "sample_tasks",
    "save_features",
    "shift_queries",
    "standard_methods",
    "tfds_images",
]
