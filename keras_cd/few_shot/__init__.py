"""Transductive few-shot classification with COIN, on the features of any backbone.

The paper's third experiment (Wang, Bao & Shi, section on few-shot
learning): a frozen backbone's features of a few-shot dataset
(`load_features`, an `.npz` of `features`, `labels`, `split`; or the
reference code's pickles with `load_reference_features(...,
allow_pickle=True)`), tasks of N classes with K labelled and Q = 15 query
images per class (`sample_tasks`), the reference preprocessing
(`preprocess`: CL2N, then the query shift), and on each task COIN: a
residual classifier whose class probabilities diffuse over the Gaussian
kNN graph of the task's support and query features
(`TransductiveCOIN`, `reference_laplacian`), trained on the support labels
only. Baselines run in the same harness on the same tasks
(`NearestClassMean`, SimpleShot; `LogisticRegression`; COIN without
diffusion) and `evaluate` scores them all, `paired_comparison` task by
task. `extract_features` makes a features file from a Keras backbone.

Example:

>>> import numpy as np
>>> from keras_cd import few_shot
>>> rng = np.random.default_rng(0)
>>> labels = np.repeat(np.arange(8), 20)
>>> features = rng.normal(size=(8, 16))[labels] + 0.5 * rng.normal(size=(160, 16))
>>> data = few_shot.FeatureSet(features, labels, np.where(labels < 3, "base", "novel"))
>>> tasks, query_labels = few_shot.sample_tasks(data, way=5, shot=1, queries=5, num_tasks=20)
>>> results = few_shot.evaluate({"SimpleShot": few_shot.NearestClassMean()}, tasks, query_labels)
>>> results["SimpleShot"].mean > 60  # chance: 20%
True
"""

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
