"""Feature files for few-shot evaluation: the `.npz` layout, and the reference code's pickles.

The paper's few-shot experiment (Wang, Bao & Shi, 2024) runs on features
that a backbone computed once. A features file holds what a frozen
backbone computed for every image of a few-shot dataset: `features` (M, F),
the class `labels` (M,) and the `split` (M,) of each row, one of `"base"`
(the classes the backbone was trained on), `"val"` and `"novel"` (the
classes tasks are drawn from). The reference preprocessing subtracts the
mean feature of the base classes: it is computed from the base rows, or
stored as an optional `base_mean` (F,) array when the file holds no base
rows. `FeatureSet` holds one in memory; `save_features` and `load_features`
write and read the `.npz` layout; `load_reference_features` reads the
reference code's pickles.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

SPLITS = ("base", "val", "novel")
"""The splits of a features file: the backbone's classes, validation and novel classes."""
PICKLE_SUFFIXES = (".pkl", ".plk", ".pickle")
LAYOUT = (
    "Expected arrays `features` (M, F) float, `labels` (M,) int and `split` (M,) str with "
    f"values in {list(SPLITS)}, optionally `base_mean` (F,)"
)


def _invalid_file(source, problem, fix):
    raise ValueError(f"Invalid features file {source}: {problem} {fix}")


@dataclasses.dataclass(frozen=True)
class FeatureSet:
    """Backbone features of a few-shot dataset, checked on construction.

    What `load_features` reads and `sample_tasks` draws tasks from. The
    arrays are stored converted: features and base mean as float32, labels
    as int64, split as str.

    Attributes:
        features: (M, F) float array, finite.
        labels: (M,) int array, the class of each row.
        split: (M,) str array, each `"base"`, `"val"` or `"novel"`; a class
            belongs to one split only.
        base_mean: (F,) float array or None, the mean base-class feature;
            None computes it from the rows of split `"base"`. Defaults to
            `None`.
        source: str, where the features came from (for error messages).
            Defaults to `"in memory"`.

    Raises:
        ValueError: naming the array at fault, for a wrong shape or dtype,
            a non-finite feature, an unknown split, a class in two splits,
            or no base mean.

    Example:
    >>> import numpy as np, keras_cd
    >>> data = keras_cd.few_shot.FeatureSet(
    ...     np.eye(4), [0, 0, 1, 1], ["base", "base", "novel", "novel"])
    >>> data.base_mean.tolist(), data.classes("novel").tolist(), data.num_features
    ([0.5, 0.5, 0.0, 0.0], [1], 4)
    """

    features: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    base_mean: np.ndarray | None = None
    source: str = "in memory"

    def __post_init__(self) -> None:
        source = self.source
        features = np.asarray(self.features)
        if features.ndim != 2 or not np.issubdtype(features.dtype, np.number):
            _invalid_file(
                source,
                f"`features` must be a 2-D (M, F) numeric array. Received: shape "
                f"{features.shape}, dtype {features.dtype}.",
                "Store one feature vector per row.",
            )
        features = features.astype(np.float32)
        bad = ~np.isfinite(features).all(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)
            _invalid_file(
                source,
                f"`features` has {len(rows)} rows with NaN or infinite values (first rows: "
                f"{rows[:5].tolist()}).",
                "Recompute those features, or drop the rows.",
            )
        labels = np.asarray(self.labels)
        if labels.shape != (len(features),) or not np.issubdtype(labels.dtype, np.integer):
            _invalid_file(
                source,
                f"`labels` must be a 1-D integer array with one label per row of `features` "
                f"({len(features)}). Received: shape {labels.shape}, dtype {labels.dtype}.",
                "Store the class index of each row.",
            )
        split = np.asarray(self.split)
        if split.shape != (len(features),) or split.dtype.kind not in "US":
            _invalid_file(
                source,
                f"`split` must be a 1-D string array with one entry per row of `features` "
                f"({len(features)}). Received: shape {split.shape}, dtype {split.dtype}.",
                f"Store np.array([...], dtype=str) with values in {list(SPLITS)}.",
            )
        split = split.astype(str)
        unknown = sorted({str(s) for s in np.unique(split)} - set(SPLITS))
        if unknown:
            _invalid_file(
                source,
                f"`split` has values {unknown}; expected only {list(SPLITS)}.",
                "Rename the splits (e.g. train -> base, test -> novel).",
            )
        for label in np.unique(labels):
            where = np.unique(split[labels == label])
            if len(where) > 1:
                _invalid_file(
                    source,
                    f"class {int(label)} has rows in splits {where.tolist()}; a class belongs "
                    "to one split.",
                    "Give the classes of each split their own labels.",
                )
        base_mean = self.base_mean
        if base_mean is None:
            if not (split == "base").any():
                _invalid_file(
                    source,
                    "no row has split 'base' and no `base_mean` is given, but the reference "
                    "preprocessing subtracts the mean base-class feature.",
                    "Add the base-class features, or a `base_mean` (F,) array.",
                )
            base_mean = features[split == "base"].astype(np.float64).mean(axis=0)
        base_mean = np.asarray(base_mean, dtype=np.float32)
        if base_mean.shape != (features.shape[1],) or not np.isfinite(base_mean).all():
            _invalid_file(
                source,
                f"`base_mean` must be a finite ({features.shape[1]},) array. Received: shape "
                f"{base_mean.shape}.",
                "Store the mean feature of the base classes.",
            )
        for name, value in (
            ("features", features),
            ("labels", labels.astype(np.int64)),
            ("split", split),
            ("base_mean", base_mean),
        ):
            object.__setattr__(self, name, value)

    @property
    def num_features(self) -> int:
        """F, the width of a feature vector."""
        return self.features.shape[1]

    def classes(self, split: str = "novel") -> np.ndarray:
        """The sorted class labels of `split`.

        Args:
            split: `"base"`, `"val"` or `"novel"`. Defaults to `"novel"`.

        Returns:
            int64 array of the classes with rows in `split`.
        """
        return np.unique(self.labels[self.split == split])


def save_features(
    path: str | os.PathLike,
    features: np.ndarray,
    labels: np.ndarray,
    split: np.ndarray,
    base_mean: np.ndarray | None = None,
) -> FeatureSet:
    """Writes a features file (`.npz`) that `load_features` reads without unpickling.

    Args:
        path: str or path-like, the file to write (written atomically).
        features: (M, F) float array, as `FeatureSet`.
        labels: (M,) int array, as `FeatureSet`.
        split: (M,) str array, as `FeatureSet`.
        base_mean: (F,) float array or None, stored only when given (else
            `load_features` computes it from the base rows). Defaults to
            `None`.

    Returns:
        The `FeatureSet` written (checked first: an invalid set raises and
        writes nothing).

    Raises:
        ValueError: for an invalid set (see `FeatureSet`).

    Example:
    >>> import numpy as np, os, tempfile, keras_cd
    >>> path = os.path.join(tempfile.mkdtemp(), "features.npz")
    >>> written = keras_cd.few_shot.save_features(
    ...     path, np.eye(4), [0, 0, 1, 1], ["base"] * 2 + ["novel"] * 2)
    >>> sorted(np.load(path).files)
    ['features', 'labels', 'split']
    """
    from keras_cd._atomic import atomic_path

    checked = FeatureSet(features, labels, split, base_mean, source=str(path))
    arrays = {"features": checked.features, "labels": checked.labels, "split": checked.split}
    if base_mean is not None:
        arrays["base_mean"] = checked.base_mean
    with atomic_path(path, suffix=".npz") as temporary:
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)
    return checked


def load_features(path: str | os.PathLike) -> FeatureSet:
    """Reads a features file written by `save_features` (or any `.npz` of that layout).

    The arrays are read with `allow_pickle=False`: a file whose `split` is a
    Python-object array is refused rather than unpickled. The reference
    code's pickles are read by `load_reference_features`, behind an opt-in.

    Args:
        path: str or path-like, a `.npz` file with arrays `features` (M, F), `labels`
            (M,), `split` (M,) and optionally `base_mean` (F,).

    Returns:
        A `FeatureSet`.

    Raises:
        FileNotFoundError: when `path` does not exist.
        ValueError: naming the missing or malformed array.

    Example:
    >>> import numpy as np, os, tempfile, keras_cd
    >>> path = os.path.join(tempfile.mkdtemp(), "features.npz")
    >>> _ = keras_cd.few_shot.save_features(
    ...     path, np.eye(4), [0, 0, 1, 1], ["base"] * 2 + ["novel"] * 2)
    >>> keras_cd.few_shot.load_features(path).base_mean.tolist()
    [0.5, 0.5, 0.0, 0.0]
    """
    path = os.fspath(path)
    if path.endswith(PICKLE_SUFFIXES):
        raise ValueError(
            f"Invalid features file {path}: a pickle, and unpickling runs code. Use "
            "keras_cd.few_shot.load_reference_features(features_path, base_mean_path, "
            "allow_pickle=True) for the reference code's pickles you trust, or save the "
            "features as .npz with keras_cd.few_shot.save_features."
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"Features file not found: {path}") from None
    except (ValueError, OSError) as error:
        _invalid_file(path, f"not a readable .npz archive ({error}).", f"{LAYOUT}.")
    with archive:
        names = list(archive.files)
        for key in ("features", "labels", "split"):
            if key not in names:
                _invalid_file(path, f"missing array `{key}`. Received arrays: {names}.", LAYOUT)
        try:
            arrays = {key: archive[key] for key in ("features", "labels", "split")}
            base_mean = archive["base_mean"] if "base_mean" in names else None
        except ValueError as error:  # an object array needs unpickling
            _invalid_file(
                path,
                f"an array is stored as Python objects ({error}).",
                "Store `split` as np.array([...], dtype=str).",
            )
    return FeatureSet(base_mean=base_mean, source=path, **arrays)


def load_reference_features(
    features_path: str | os.PathLike,
    base_mean_path: str | os.PathLike,
    allow_pickle: bool = False,
) -> FeatureSet:
    """Reads the reference code's pickles: novel-class features per class and the base mean.

    The COIN reference code stores `{label: [feature, ...]}` of the novel
    classes in `*_embedded_feature.plk` and the mean base-class feature in
    `*_base_mean.plk`. Unpickling runs whatever code the file names, so
    this reads them only with `allow_pickle=True`, for files you trust.

    Args:
        features_path: str or path-like, the pickled dict of class -> list of (F,) features.
        base_mean_path: str or path-like, the pickled (F,) base mean.
        allow_pickle: bool, must be True. Defaults to `False`.

    Returns:
        A `FeatureSet` whose rows are all of split `"novel"`.

    Raises:
        ValueError: without `allow_pickle=True`, or for a file of another
            layout.

    Example:
    >>> import os, pickle, tempfile, numpy as np, keras_cd
    >>> directory = tempfile.mkdtemp()
    >>> features_path = os.path.join(directory, "novel_embedded_feature.plk")
    >>> base_mean_path = os.path.join(directory, "novel_base_mean.plk")
    >>> with open(features_path, "wb") as handle:
    ...     pickle.dump({3: [np.ones(2), np.zeros(2)], 5: [np.full(2, 2.0)]}, handle)
    >>> with open(base_mean_path, "wb") as handle:
    ...     pickle.dump(np.zeros(2), handle)
    >>> data = keras_cd.few_shot.load_reference_features(
    ...     features_path, base_mean_path, allow_pickle=True)
    >>> data.labels.tolist(), data.split.tolist()
    ([3, 3, 5], ['novel', 'novel', 'novel'])
    """
    if allow_pickle is not True:
        raise ValueError(
            "Invalid value for `allow_pickle`: reading the reference pickles runs the code "
            f"they contain, so it needs allow_pickle=True. Received: allow_pickle={allow_pickle!r}"
            ". Pass allow_pickle=True for files you trust, or convert them once to .npz with "
            "keras_cd.few_shot.save_features."
        )
    import pickle

    with open(features_path, "rb") as handle:
        per_class = pickle.load(handle)
    with open(base_mean_path, "rb") as handle:
        base_mean = pickle.load(handle)
    if not hasattr(per_class, "items") or not per_class:
        _invalid_file(
            features_path,
            f"expected a non-empty dict of class -> list of features. Received: "
            f"{type(per_class).__name__}.",
            "Pass the *_embedded_feature.plk file.",
        )
    features, labels = [], []
    for label, rows in per_class.items():
        rows = np.asarray(rows)
        features.append(rows.reshape(len(rows), -1) if rows.ndim else rows)
        labels.append(np.full(len(rows), int(label)))
    widths = {f.shape[1] for f in features if f.ndim == 2}
    if len(widths) != 1 or any(f.ndim != 2 for f in features):
        _invalid_file(
            features_path,
            f"the classes' features differ in width: {sorted(widths)}.",
            "Every feature needs the same length.",
        )
    features, labels = np.concatenate(features), np.concatenate(labels)
    return FeatureSet(
        features, labels, np.full(len(labels), "novel"), base_mean, source=str(features_path)
    )
