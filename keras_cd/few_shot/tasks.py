"""Few-shot tasks: N classes of a split, K labeled support and Q query rows per class.

The episodes of the paper's few-shot experiment (Wang, Bao & Shi, 2024), as
the reference code draws them: `sample_tasks` draws a batch of `Tasks`
from a `keras_cd.few_shot.FeatureSet`, and keeps the query labels apart so
that no method can read them before scoring.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from keras_cd import _validation
from keras_cd.few_shot.features import SPLITS, FeatureSet


@dataclasses.dataclass(frozen=True)
class Tasks:
    """A batch of few-shot tasks as row indices into a feature matrix, without query labels.

    What a method sees: the features (no labels), the base mean, and per
    task the support rows with their labels 0..way-1 and the query rows.
    The query labels are kept apart (`sample_tasks` returns them next to
    this object), so no method can read them before scoring.

    Attributes:
        features: (M, F) float32, the feature matrix the indices point into.
        base_mean: (F,) float32, the mean base-class feature.
        support: (T, way * shot) int, class-major (shot rows of label 0, ...).
        support_labels: (T, way * shot) int in [0, way).
        query: (T, way * queries) int, in random order.
        classes: (T, way) int, the dataset class behind label 0, 1, ...
        seeds: (T,) uint64, a seed per task for methods with random
            initial weights (the same task gets the same seed).
        way: int, classes per task.
        shot: int, support rows per class.
        queries: int, query rows per class.

    Example:
    >>> import numpy as np, keras_cd
    >>> labels = np.repeat(np.arange(6), 10)
    >>> data = keras_cd.few_shot.FeatureSet(
    ...     np.random.default_rng(0).normal(size=(60, 3)), labels, np.repeat(["base", "novel"], 30))
    >>> tasks, _ = keras_cd.few_shot.sample_tasks(data, way=3, shot=2, queries=5, num_tasks=4)
    >>> len(tasks), len(tasks[1:3]), tasks.support_features().shape
    (4, 2, (4, 6, 3))
    """

    features: np.ndarray
    base_mean: np.ndarray
    support: np.ndarray
    support_labels: np.ndarray
    query: np.ndarray
    classes: np.ndarray
    seeds: np.ndarray
    way: int
    shot: int
    queries: int

    def __len__(self) -> int:
        return len(self.support)

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> Tasks:
        """The tasks `index` (an int, a slice or an index array) as a `Tasks`."""
        index = np.arange(len(self))[index]
        index = np.atleast_1d(index)
        return dataclasses.replace(
            self,
            support=self.support[index],
            support_labels=self.support_labels[index],
            query=self.query[index],
            classes=self.classes[index],
            seeds=self.seeds[index],
        )

    def support_features(self) -> np.ndarray:
        """(T, way * shot, F) float32, the raw support features."""
        return self.features[self.support]

    def query_features(self) -> np.ndarray:
        """(T, way * queries, F) float32, the raw query features."""
        return self.features[self.query]


def sample_tasks(
    feature_set: FeatureSet,
    way: int = 5,
    shot: int = 1,
    queries: int = 15,
    num_tasks: int = 1000,
    seed: int = 0,
    split: str = "novel",
) -> tuple[Tasks, np.ndarray]:
    """Draws `num_tasks` few-shot tasks from the classes of one split, seeded per task.

    Each task, as in the reference code: `way` distinct classes of `split`
    in random order (the i-th is labeled i), then for each class
    `shot + queries` distinct rows without replacement, the first `shot`
    the support and the rest the queries. The queries are then shuffled
    (the reference keeps them class by class; the order says nothing here).
    Task i draws from its own stream, `np.random.SeedSequence(seed)`'s
    i-th child, so the first 100 tasks of a 10,000-task run are the tasks
    of a 100-task run with the same seed.

    Args:
        feature_set: a `FeatureSet`.
        way: int >= 2, classes per task. Defaults to `5`.
        shot: int >= 1, labeled rows per class. Defaults to `1`.
        queries: int >= 1, query rows per class. Defaults to `15`.
        num_tasks: int >= 1. Defaults to `1000`.
        seed: int >= 0. Defaults to `0`.
        split: `"novel"`, `"val"` or `"base"`. Defaults to `"novel"`.

    Returns:
        `(tasks, query_labels)`: a `Tasks` and the (T, way * queries) int
        labels of its query rows, to be read only for scoring.

    Raises:
        ValueError: for an invalid argument, or when the split has fewer
            than `way` classes or a class has fewer than `shot + queries`
            rows.

    Example:
    >>> import numpy as np, keras_cd
    >>> data = keras_cd.few_shot.FeatureSet(
    ...     np.random.default_rng(0).normal(size=(60, 3)), np.repeat(np.arange(6), 10),
    ...     np.repeat(["base", "novel"], 30))
    >>> tasks, query_labels = keras_cd.few_shot.sample_tasks(
    ...     data, way=3, shot=2, queries=5, num_tasks=4)
    >>> tasks.support.shape, query_labels.shape
    ((4, 6), (4, 15))
    """
    if not isinstance(feature_set, FeatureSet):
        _validation.invalid(
            "feature_set",
            "a keras_cd.few_shot.FeatureSet",
            type(feature_set).__name__,
            "Load one with keras_cd.few_shot.load_features(path).",
        )
    way = _validation.integer("way", way, "Use e.g. way=5.", minimum=2)
    shot = _validation.positive_int("shot", shot, "Use e.g. shot=1 or shot=5.")
    queries = _validation.positive_int("queries", queries, "Use e.g. queries=15.")
    num_tasks = _validation.positive_int("num_tasks", num_tasks, "Use e.g. num_tasks=10000.")
    seed = _validation.non_negative_int("seed", seed, "Use e.g. seed=0.")
    _validation.one_of("split", split, SPLITS, 'Use split="novel".')
    classes = feature_set.classes(split)
    if len(classes) < way:
        raise ValueError(
            f"Invalid value for `way`: split {split!r} of {feature_set.source} has "
            f"{len(classes)} classes. Received: way={way}. Use way <= {len(classes)}."
        )
    in_split = feature_set.split == split
    rows = [np.flatnonzero((feature_set.labels == c) & in_split) for c in classes]
    counts = np.array([len(r) for r in rows])
    short = counts < shot + queries
    if short.any():
        listed = ", ".join(f"{int(c)} ({n})" for c, n in zip(classes[short], counts[short]))
        raise ValueError(
            f"Invalid features file {feature_set.source}: a task needs shot + queries = "
            f"{shot + queries} rows of each class, but classes of split {split!r} have fewer "
            f"(class (rows)): {listed}. Use smaller `shot`/`queries`, or drop those classes."
        )
    support = np.empty((num_tasks, way * shot), np.int64)
    query = np.empty((num_tasks, way * queries), np.int64)
    query_labels = np.empty((num_tasks, way * queries), np.int64)
    chosen = np.empty((num_tasks, way), np.int64)
    seeds = np.empty(num_tasks, np.uint64)
    labels_in_order = np.repeat(np.arange(way), queries)
    for task, child in enumerate(np.random.SeedSequence(seed).spawn(num_tasks)):
        rng = np.random.default_rng(child)
        picked = rng.choice(len(classes), way, replace=False)
        drawn = [rng.choice(rows[c], shot + queries, replace=False) for c in picked]
        support[task] = np.concatenate([d[:shot] for d in drawn])
        order = rng.permutation(way * queries)
        query[task] = np.concatenate([d[shot:] for d in drawn])[order]
        query_labels[task] = labels_in_order[order]
        chosen[task] = classes[picked]
        seeds[task] = rng.integers(0, 2**63, dtype=np.uint64)
    tasks = Tasks(
        features=feature_set.features,
        base_mean=feature_set.base_mean,
        support=support,
        support_labels=np.repeat(np.arange(way), shot)[None].repeat(num_tasks, 0),
        query=query,
        classes=chosen,
        seeds=seeds,
        way=way,
        shot=shot,
        queries=queries,
    )
    return tasks, query_labels
