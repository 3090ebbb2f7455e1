"""Model selection on validation accuracy only: a seeded random search.

A search space is a list of grids (dicts from a setting's name to its
candidate values); a trial picks one grid at random, then one value per
name. Grids let values depend on each other: COIN's explicit scheme needs
small steps (sigma2 * lambda_max <= 2; unstable candidates are skipped on the
graph at hand), its implicit scheme takes large ones. Every trial trains on
`num_splits` x `num_inits` runs with `evaluate_test=False`, so no test label
is ever read, and the setting with the highest mean validation accuracy
wins. The search splits are drawn from seeds of their own (`seed + 1000000 +
s`), apart from the protocol's.
"""

import dataclasses
import json
import os
import time

import numpy as np

from keras_cd import _validation

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

SPLIT_SEED_OFFSET = 1_000_000


@dataclasses.dataclass
class SearchResult:
    """The chosen setting and every trial, best first."""

    method: str
    settings: dict
    validation_accuracy: float  # mean over the search runs, in %
    trials: list  # dicts: settings, validation_accuracy, validation_std, seconds
    config: dict  # how the search ran

    def to_json(self):
        return {
            "method": self.method,
            "settings": self.settings,
            "validation_accuracy": self.validation_accuracy,
            "search": self.config,
            "trials": self.trials,
        }

    def save(self, path):
        """Writes the result as JSON (atomically); `load_setting` reads it back."""
        from keras_cd._atomic import atomic_path

        with atomic_path(path, suffix=".json") as temporary, open(temporary, "w") as file:
            json.dump(self.to_json(), file, indent=1)
            file.write("\n")


def load_setting(path):
    """`(method, settings)` from a file that `SearchResult.save` wrote."""
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
    data,
    method="coin",
    space=None,
    num_trials=30,
    num_splits=5,
    num_inits=1,
    seed=0,
    patience=50,
    max_epochs=1000,
    callback=None,
):
    """Chooses a method's setting by validation accuracy alone; a `SearchResult`.

    Args:
        data: a `keras_cd.datasets.GraphData`.
        method: a name in `keras_cd.node_classification.METHODS`.
        space: list of grids (see the module docstring); defaults to
            `SPACES[method]`.
        num_trials: int >= 1, settings tried.
        num_splits, num_inits: int >= 1, runs per trial (on the search's own splits).
        seed: int, seeds the draws and the splits.
        patience, max_epochs: early stopping, as in the trainer.
        callback: called as `callback(index, trial)` after each trial.
    """
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
            data, method, patience=patience, max_epochs=max_epochs, **setting
        )
        scores = [
            100 * trainer.run(split, init, evaluate_test=False).validation_accuracy
            for split, init in pairs
        ]
        trials.append(
            {
                "settings": trainer.settings,
                "validation_accuracy": float(np.mean(scores)),
                "validation_std": float(np.std(scores)),
                "seconds": time.perf_counter() - start,
            }
        )
        if callback is not None:
            callback(index, trials[-1])
    ranked = sorted(trials, key=lambda t: -t["validation_accuracy"])  # stable: first wins ties
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
    return SearchResult(method, best["settings"], best["validation_accuracy"], ranked, config)
