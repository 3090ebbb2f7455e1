"""Model selection on validation accuracy only: a seeded random search.

The settings behind the paper's node-classification figures (Wang, Bao &
Shi, 2024) are chosen here, for COIN and for each baseline alike, without
reading a test label. A search space is a list of grids (dicts from a setting's name to its
candidate values); a trial picks one grid at random, then one value per
name. Grids let values depend on each other: COIN's explicit scheme needs
small steps (sigma2 * lambda_max <= 2; unstable candidates are skipped on the
graph at hand), its implicit scheme takes large ones. Every trial trains on
`num_splits` x `num_inits` runs with `evaluate_test=False`, so no test label
is ever read, and the setting with the highest mean validation accuracy
wins. A run whose loss or validation metric is not finite
(`RunFailedError`) is never averaged: its trial lists it in `failed`, its
accuracy is the mean over the finished runs, and a trial with failed runs
ranks after every trial without (fewer failures first). The search splits
are drawn from seeds of their own (`seed + 1000000 + s`), apart from the
protocol's.

What the search reads, exactly: the training labels (to fit) and the
validation labels (to score) of its own splits. Random splits of one graph
share nodes, so those nodes are also test nodes of the protocol's splits:
on Cora, 5 search splits read the labels of about half of each protocol
test set (`label_overlap` measures it; `benchmarks/node_classification.py`
prints it). This is how random-split protocols work; the test figure is
still computed once, for the chosen setting, and no test label of a split
is read while scoring that split.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np

from keras_cd import _validation

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from keras_cd.datasets.gnnbench import GraphData

_COMMON = {
    "hidden_units": [32, 64, 128],
    "dropout": [0.3, 0.5, 0.7],
    "weight_decay": [1e-4, 5e-4, 1e-3, 5e-3],
    "learning_rate": [0.005, 0.01, 0.02],
}

SPACES = {
    "coin": [
        {"scheme": ["explicit"], "num_steps": [5, 10, 20, 40], "sigma2": [0.1, 0.2, 0.3]} | _COMMON,
        {"scheme": ["implicit"], "num_steps": [1, 2, 4, 8], "sigma2": [0.5, 1.0, 2.0, 4.0]}
        | _COMMON,
    ],
    "appnp": [
        {"num_steps": [10], "teleport": [0.05, 0.1, 0.2], "readout_weight_decay": [0.0]} | _COMMON
    ],
    "sgc": [
        {
            "num_steps": [1, 2, 3],
            "weight_decay": [1e-6, 1e-5, 5e-5, 1e-4, 5e-4],
            "learning_rate": [0.05, 0.2],
        }
    ],
}
"""dict of method name -> its default search space, a list of grids for `search`.

A grid maps setting names to candidate values; a trial draws a grid, then
one value per name. COIN has one grid per scheme: the explicit one with
small steps (sigma2 * lambda_max <= 2), the implicit one with large ones.
"""

SPLIT_SEED_OFFSET = 1_000_000


@dataclasses.dataclass
class SearchResult:
    """The chosen setting and every trial, best first, as `search` returns it.

    Attributes:
        method: str, the method searched.
        settings: dict, the chosen setting (every hyperparameter).
        validation_accuracy: float, its mean validation accuracy over the
            search runs, in %.
        trials: list of dict, every trial best first: `settings`,
            `validation_accuracy`, `validation_std`, `failed`, `seconds`.
        config: dict, how the search ran (trials, splits, inits, seed, the
            search's `split_seeds`, early stopping, space).

    Example:
    >>> import os, tempfile, keras_cd
    >>> result = keras_cd.node_classification.SearchResult(
    ...     "sgc", {"num_steps": 2}, 81.5, trials=[], config={"split_seeds": [1000000]})
    >>> path = os.path.join(tempfile.mkdtemp(), "sgc.json")
    >>> result.save(path)
    >>> keras_cd.node_classification.load_setting(path)
    ('sgc', {'num_steps': 2})
    """

    method: str
    settings: dict
    validation_accuracy: float  # mean over the search runs, in %
    trials: list[dict]  # dicts: settings, validation_accuracy, validation_std, failed, seconds
    config: dict  # how the search ran

    def to_json(self) -> dict:
        """A JSON-ready dict: method, settings, validation_accuracy, search (the config), trials."""
        return {
            "method": self.method,
            "settings": self.settings,
            "validation_accuracy": self.validation_accuracy,
            "search": self.config,
            "trials": self.trials,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Writes the result as JSON (atomically); `load_setting` reads it back.

        Args:
            path: str or path-like, the `.json` file to write.
        """
        from keras_cd.files import atomic_path

        with atomic_path(path, suffix=".json") as temporary, open(temporary, "w") as file:
            json.dump(self.to_json(), file, indent=1)
            file.write("\n")


def label_overlap(
    labels: ArrayLike, search_split_seeds: Iterable[int], protocol_split_seeds: Iterable[int]
) -> np.ndarray:
    """Share of each protocol split's test nodes whose labels a search read.

    A search run on split seed s reads the training and validation labels of
    `keras_cd.datasets.random_split(labels, seed=s)`; this returns, for each
    protocol split, the fraction of its test nodes among those read.

    Args:
        labels: (N,) int array, the node labels the splits are drawn from.
        search_split_seeds: iterable of int, the search's split seeds (a
            saved setting lists them under `search.split_seeds`).
        protocol_split_seeds: iterable of int, the protocol's split seeds.

    Returns:
        A float64 array, one fraction in [0, 1] per protocol split.

    Example:
    >>> import numpy as np, keras_cd
    >>> labels = np.repeat(np.arange(2), 100)
    >>> shares = keras_cd.node_classification.label_overlap(labels, [1000000], [0, 1])
    >>> bool(0 < shares.min() <= shares.max() < 1)
    True
    """
    from keras_cd import datasets

    labels = np.asarray(labels)
    read = np.zeros(len(labels), bool)
    for seed in search_split_seeds:
        train, validation, _ = datasets.random_split(labels, seed=int(seed))
        read[train] = read[validation] = True
    shares = []
    for seed in protocol_split_seeds:
        test = datasets.random_split(labels, seed=int(seed))[2]
        shares.append(float(np.mean(read[test])) if len(test) else 0.0)
    return np.asarray(shares, dtype=np.float64)


def load_setting(path: str | os.PathLike) -> tuple[str, dict]:
    """Reads back the chosen setting of a file that `SearchResult.save` wrote.

    Args:
        path: str or path-like, the `.json` file.

    Returns:
        `(method, settings)`: str and dict, ready for
        `NodeClassificationTrainer(data, method, **settings)`.

    Raises:
        ValueError: if the file is not a JSON object with `method` and
            `settings`.

    Example:
    >>> import os, tempfile, keras_cd
    >>> path = os.path.join(tempfile.mkdtemp(), "coin.json")
    >>> keras_cd.node_classification.SearchResult(
    ...     "coin", {"sigma2": 0.3}, 80.0, trials=[], config={}).save(path)
    >>> keras_cd.node_classification.load_setting(path)
    ('coin', {'sigma2': 0.3})
    """
    with open(path) as file:
        saved = json.load(file)
    if not isinstance(saved, dict) or "method" not in saved or "settings" not in saved:
        raise ValueError(
            f"Invalid setting file {os.fspath(path)!r}: expected a JSON object with "
            f"'method' and 'settings' (as `search` saves it). Received: keys "
            f"{sorted(saved) if isinstance(saved, dict) else type(saved).__name__}."
        )
    return saved["method"], saved["settings"]


def _candidates(space, rng, num_trials, accept):
    """Up to `num_trials` distinct settings drawn from `space` that `accept` takes."""
    chosen, seen = [], set()
    for _ in range(100 * num_trials):
        if len(chosen) == num_trials:
            break
        grid = space[rng.integers(len(space))]
        setting = {name: values[rng.integers(len(values))] for name, values in grid.items()}
        key = json.dumps(setting, sort_keys=True)
        if key in seen or not accept(setting):
            continue
        seen.add(key)
        chosen.append(setting)
    return chosen


def search(
    data: GraphData,
    method: str = "coin",
    space: list[dict] | None = None,
    num_trials: int = 30,
    num_splits: int = 5,
    num_inits: int = 1,
    seed: int = 0,
    patience: int = 50,
    max_epochs: int = 1000,
    callback: Callable[[int, dict], object] | None = None,
    jit_compile: bool = True,
) -> SearchResult:
    """Chooses a method's setting by validation accuracy alone.

    Every trial draws a setting from `space` (skipping COIN's explicit
    settings that are unstable on this graph, sigma2 * lambda_max > 2),
    trains it on `num_splits` x `num_inits` runs of the search's own splits
    (split seeds `seed + 1000000 + s`) with `evaluate_test=False`, and
    scores it by its mean validation accuracy over the finished runs. The
    trials are ranked by failed runs (fewer first), then by that accuracy;
    no test label is ever read.

    Args:
        data: a `keras_cd.datasets.GraphData`.
        method: a name in `keras_cd.node_classification.METHODS`. Defaults
            to `"coin"`.
        space: list of grids (see the module docstring), or None for
            `SPACES[method]`. Defaults to `None`.
        num_trials: int >= 1, settings tried. Defaults to `30`.
        num_splits: int >= 1, the search's splits per trial. Defaults to `5`.
        num_inits: int >= 1, initializations per split. Defaults to `1`.
        seed: int, seeds the draws and the splits. Defaults to `0`.
        patience: int >= 1, early stopping, as in the trainer. Defaults to
            `50`.
        max_epochs: int >= 1, as in the trainer. Defaults to `1000`.
        callback: callable or None, called as `callback(index, trial)` after
            each trial. Defaults to `None`.
        jit_compile: bool, as in the trainer (TensorFlow: XLA or a plain
            graph). Defaults to `True`.

    Returns:
        A `SearchResult`.

    Raises:
        ValueError: for an invalid argument or space.
        RunFailedError: when every run of every setting failed.

    Example:
    >>> import numpy as np, scipy.sparse as sp, keras_cd
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 60)
    >>> edges = np.triu(rng.random((120, 120)) < np.where(labels[:, None] == labels, 0.1, 0.01), 1)
    >>> features = np.eye(2)[labels] + rng.normal(size=(120, 2))
    >>> adjacency = sp.csr_matrix(edges + edges.T, dtype="float32")
    >>> data = keras_cd.datasets.GraphData(
    ...     adjacency, sp.csr_matrix(features, dtype="float32"), labels, ["a", "b"], np.arange(120))
    >>> space = [{"num_steps": [1, 2], "learning_rate": [0.2]}]
    >>> result = keras_cd.node_classification.search(
    ...     data, "sgc", space, num_trials=2, num_splits=1, max_epochs=30, patience=10,
    ...     jit_compile=False)
    >>> len(result.trials), result.settings["num_steps"] in (1, 2)
    (2, True)
    """
    from keras_cd._protocol import RunFailedError, mean_std
    from keras_cd.graph.laplacian import laplacian, stability_lambda_max
    from keras_cd.node_classification.methods import settings_for
    from keras_cd.node_classification.trainer import NodeClassificationTrainer

    num_trials = _validation.positive_int("num_trials", num_trials, "Use e.g. 30.")
    num_splits = _validation.positive_int("num_splits", num_splits, "Use e.g. 5.")
    num_inits = _validation.positive_int("num_inits", num_inits, "Use e.g. 1.")
    seed = _validation.integer("seed", seed, "Use e.g. 0.")
    settings_for(method, {})  # validates the method's name
    space = SPACES[method] if space is None else space
    if not isinstance(space, list) or not space or not all(isinstance(g, dict) for g in space):
        raise ValueError(
            "Invalid value for `space`: expected a non-empty list of dicts from setting "
            f"names to lists of values. Received: {space!r}."
        )
    lambda_max = {}

    def stable(setting):
        full = settings_for(method, setting)
        if method != "coin" or full["scheme"] != "explicit" or not full["num_steps"]:
            return True
        if "value" not in lambda_max:
            matrix = laplacian(data.adjacency, "coin", format="scipy")
            lambda_max["value"] = stability_lambda_max(matrix, 1.0, exact=True)
        return full["sigma2"] * lambda_max["value"] <= 2

    rng = np.random.default_rng(seed)
    pairs = [
        (seed + SPLIT_SEED_OFFSET + s, seed * 1000 + s * num_inits + i)
        for s in range(num_splits)
        for i in range(num_inits)
    ]
    trials = []
    for index, setting in enumerate(_candidates(space, rng, num_trials, stable)):
        start = time.perf_counter()
        trainer = NodeClassificationTrainer(
            data,
            method,
            patience=patience,
            max_epochs=max_epochs,
            jit_compile=jit_compile,
            **setting,
        )
        scores, failed = [], []
        for split, init in pairs:
            try:
                run = trainer.run(split, init, evaluate_test=False)
            except RunFailedError as failure:
                failed.append(failure.record())
                continue
            scores.append(100 * run.validation_accuracy)
        mean, std = mean_std(scores)
        trials.append(
            {
                "settings": trainer.settings,
                "validation_accuracy": mean if scores else None,
                "validation_std": std if scores else None,
                "failed": failed,
                "seconds": time.perf_counter() - start,
            }
        )
        if callback is not None:
            callback(index, trials[-1])

    def rank(trial):  # stable: the first trial wins ties
        accuracy = trial["validation_accuracy"]
        return (len(trial["failed"]), -np.inf if accuracy is None else -accuracy)

    ranked = sorted(trials, key=rank)
    config = {
        "num_trials": num_trials,
        "num_splits": num_splits,
        "num_inits": num_inits,
        "seed": seed,
        "split_seeds": sorted({p[0] for p in pairs}),
        "patience": patience,
        "max_epochs": max_epochs,
        "space": space,
    }
    best = ranked[0]
    if best["validation_accuracy"] is None:
        raise RunFailedError(
            **{k: best["failed"][0][k] for k in ("split_seed", "init_seed", "epoch", "reason")},
            fix=f"Every run of all {len(ranked)} settings failed: lower the learning rates "
            "in `space`, or check the features for NaN or infinity.",
        )
    return SearchResult(method, best["settings"], best["validation_accuracy"], ranked, config)
