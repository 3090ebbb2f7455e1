"""Scoring few-shot methods on the same tasks: accuracy with its 95% CI, paired comparisons.

The paper's few-shot table (Wang, Bao & Shi, 2024) reports each method's
mean accuracy over thousands of tasks with the reference code's 95%
confidence interval. Here every method runs on the same tasks, so COIN's
gain over a baseline is also measured task by task (`paired_comparison`),
a far tighter comparison than two overlapping intervals.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from keras_cd import _validation
from keras_cd.few_shot.tasks import Tasks

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

Z_95 = 1.96


def confidence_interval(values: ArrayLike) -> tuple[float, float]:
    """`(mean, half-width)` of the 95% confidence interval of the mean, as the reference code.

        mean +- 1.96 * std(values) / sqrt(n)    (std with ddof=0)

    Args:
        values: 1-D array-like of numbers, one per task.

    Returns:
        `(mean, half_width)`, two floats.

    Raises:
        ValueError: if `values` is not a non-empty 1-D array.

    Example:
    >>> import keras_cd
    >>> [round(v, 4) for v in keras_cd.few_shot.confidence_interval([50.0, 100.0, 50.0, 100.0])]
    [75.0, 24.5]
    """
    values = np.asarray(values, np.float64)
    if values.ndim != 1 or not len(values):
        _validation.invalid("values", "a non-empty 1-D array", values.shape, "Pass one per task.")
    return float(values.mean()), float(Z_95 * values.std() / np.sqrt(len(values)))


@dataclasses.dataclass
class MethodResult:
    """One method's predictions on a batch of tasks and their scores.

    Attributes:
        name: str, the method's name.
        predictions: (T, way * queries) int array.
        accuracies: (T,) float array, the percentage of each task's queries
            predicted right.
        seconds: float, wall-clock time of the predictions (compilation
            included).

    Example:
    >>> import numpy as np, keras_cd
    >>> result = keras_cd.few_shot.MethodResult(
    ...     "m", np.zeros((4, 2), int), np.array([50.0, 100.0, 50.0, 100.0]), 0.1)
    >>> result.summary()
    'accuracy: 75.00 ± 24.50 over 4 tasks'
    """

    name: str
    predictions: np.ndarray
    accuracies: np.ndarray
    seconds: float

    @property
    def mean(self) -> float:
        """Mean accuracy over the tasks, in %."""
        return confidence_interval(self.accuracies)[0]

    @property
    def ci95(self) -> float:
        """Half-width of the 95% confidence interval of `mean`, in %."""
        return confidence_interval(self.accuracies)[1]

    @property
    def tasks(self) -> int:
        """The number of tasks scored."""
        return len(self.accuracies)

    def summary(self) -> str:
        """`"accuracy: M ± CI over T tasks"`."""
        return f"accuracy: {self.mean:.2f} ± {self.ci95:.2f} over {self.tasks} tasks"


def evaluate(
    methods: Mapping[str, Callable[[Tasks], ArrayLike]],
    tasks: Tasks,
    query_labels: ArrayLike,
    log: Callable[[str], object] | None = None,
) -> dict[str, MethodResult]:
    """Runs every method on the same tasks, then scores them against the query labels.

    A method is a callable `method(tasks) -> (T, way * queries)` int
    predictions; it gets `tasks`, which holds no query labels. The labels
    are read once every method has predicted, only to score.

    Args:
        methods: dict of name -> method, run in order.
        tasks: a `keras_cd.few_shot.Tasks`.
        query_labels: (T, way * queries) ints, from `sample_tasks`.
        log: callable or None, taking a str (e.g. `print`), told each
            method's time as it finishes. Defaults to `None`.

    Returns:
        dict of name -> `MethodResult`, in the order of `methods`.

    Raises:
        ValueError: if `tasks` is not a `Tasks`, `query_labels` does not
            match them, or a method returns predictions of another shape.

    Example:
    >>> import numpy as np, keras_cd
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat(np.arange(8), 20)
    >>> features = rng.normal(size=(8, 16))[labels] + 0.5 * rng.normal(size=(160, 16))
    >>> data = keras_cd.few_shot.FeatureSet(features, labels, np.where(labels < 3, "base", "novel"))
    >>> tasks, query_labels = keras_cd.few_shot.sample_tasks(
    ...     data, way=5, shot=1, queries=5, num_tasks=10)
    >>> def first_class(tasks):  # any callable from tasks to predictions is a method
    ...     return np.zeros(tasks.query.shape, int)
    >>> results = keras_cd.few_shot.evaluate(
    ...     {"nearest mean": keras_cd.few_shot.NearestClassMean(), "constant": first_class},
    ...     tasks, query_labels)
    >>> results["constant"].mean  # every task's queries hold 5 of each of the 5 classes
    20.0
    >>> results["nearest mean"].mean > 60
    True
    """
    if not isinstance(tasks, Tasks):
        _validation.invalid("tasks", "a keras_cd.few_shot.Tasks", type(tasks).__name__, "")
    expected = tasks.query.shape
    query_labels = np.asarray(query_labels)
    if query_labels.shape != expected:
        _validation.invalid(
            "query_labels",
            f"an array of shape {expected}",
            query_labels.shape,
            "Pass the labels sample_tasks returned with these tasks.",
        )
    runs = {}
    for name, method in methods.items():
        start = time.perf_counter()
        predictions = np.asarray(method(tasks))
        seconds = time.perf_counter() - start
        if predictions.shape != expected:
            raise ValueError(
                f"Method {name!r} returned predictions of shape {predictions.shape}; expected "
                f"{expected} (one label per query of each task)."
            )
        runs[name] = (predictions, seconds)
        if log is not None:
            log(f"{name}: {len(tasks)} tasks in {seconds:.1f} s")
    return {
        name: MethodResult(
            name, predictions, 100.0 * (predictions == query_labels).mean(axis=1), seconds
        )
        for name, (predictions, seconds) in runs.items()
    }


def paired_comparison(result: MethodResult, baseline: MethodResult) -> dict:
    """`result` against `baseline` task by task (the same tasks, in the same order).

    With d_t = accuracy_t(result) - accuracy_t(baseline) on task t, the mean
    of d and its 95% confidence interval (`confidence_interval`): pairing
    removes the variation between tasks that both methods share.

    Args:
        result: `MethodResult`.
        baseline: `MethodResult` on the same tasks.

    Returns:
        dict: `mean` and `ci95` of the per-task difference result - baseline
        (accuracy points), `wins`, `ties` and `losses` of `result`, `tasks`.

    Raises:
        ValueError: if the two ran on different numbers of tasks.

    Example:
    >>> import numpy as np, keras_cd
    >>> ours = keras_cd.few_shot.MethodResult("ours", None, np.array([60.0, 80.0, 70.0]), 1.0)
    >>> base = keras_cd.few_shot.MethodResult("base", None, np.array([50.0, 80.0, 60.0]), 1.0)
    >>> comparison = keras_cd.few_shot.paired_comparison(ours, base)
    >>> comparison["wins"], comparison["ties"], comparison["losses"], round(comparison["mean"], 2)
    (2, 1, 0, 6.67)
    """
    if result.accuracies.shape != baseline.accuracies.shape:
        raise ValueError(
            f"Invalid comparison: {result.name!r} and {baseline.name!r} ran on different "
            f"numbers of tasks ({result.tasks} and {baseline.tasks}). Evaluate both on the "
            "same tasks with keras_cd.few_shot.evaluate."
        )
    difference = result.accuracies - baseline.accuracies
    mean, half_width = confidence_interval(difference)
    return {
        "mean": mean,
        "ci95": half_width,
        "wins": int((difference > 0).sum()),
        "ties": int((difference == 0).sum()),
        "losses": int((difference < 0).sum()),
        "tasks": len(difference),
    }


def format_table(results: Mapping[str, MethodResult], summarize: Iterable[str] = ()) -> list[str]:
    """The results as printed lines: method, accuracy, 95% CI, tasks, seconds.

    Args:
        results: dict of name -> `MethodResult` (as `evaluate` returns).
        summarize: iterable of names whose rows end with their
            `MethodResult.summary()`. Defaults to `()`.

    Returns:
        list of str, a header and one line per method.

    Example:
    >>> import numpy as np, keras_cd
    >>> result = keras_cd.few_shot.MethodResult("m", None, np.array([50.0, 100.0]), 0.25)
    >>> for line in keras_cd.few_shot.format_table({"m": result}):
    ...     print(line)
    method   accuracy   95% CI   tasks   seconds
    m           75.00    34.65       2       0.2
    """
    width = max([len("method")] + [len(name) for name in results]) + 2
    lines = [f"{'method':<{width}}{'accuracy':>9}{'95% CI':>9}{'tasks':>8}{'seconds':>10}"]
    for name, result in results.items():
        line = (
            f"{name:<{width}}{result.mean:>9.2f}{result.ci95:>9.2f}{result.tasks:>8d}"
            f"{result.seconds:>10.1f}"
        )
        lines.append(line + (f"   {result.summary()}" if name in summarize else ""))
    return lines


def format_comparisons(results: Mapping[str, MethodResult], reference: str) -> list[str]:
    """Lines comparing `results[reference]` with every other method, task by task.

    Args:
        results: dict of name -> `MethodResult` on the same tasks.
        reference: str, the name of the method compared with the others.

    Returns:
        list of str: a header, then one `paired_comparison` per other method.

    Example:
    >>> import numpy as np, keras_cd
    >>> results = {
    ...     "ours": keras_cd.few_shot.MethodResult("ours", None, np.array([60.0, 80.0]), 1.0),
    ...     "base": keras_cd.few_shot.MethodResult("base", None, np.array([50.0, 80.0]), 1.0)}
    >>> keras_cd.few_shot.format_comparisons(results, "ours")[1].split()[-8:]
    ['wins', '1,', 'ties', '1,', 'losses', '0', 'of', '2']
    """
    ours = results[reference]
    lines = [f"{reference} minus each method, paired over the same tasks (accuracy points):"]
    for name, result in results.items():
        if name == reference:
            continue
        c = paired_comparison(ours, result)
        lines.append(
            f"  vs {name:<34}{c['mean']:>+7.2f} ± {c['ci95']:<6.2f}"
            f"wins {c['wins']}, ties {c['ties']}, losses {c['losses']} of {c['tasks']}"
        )
    return lines


COIN = "COIN (10 steps x 0.5)"
"""str, the name of COIN with the reference settings in `standard_methods`."""


def standard_methods(
    batch_size: int = 8, graph: str = "reference"
) -> dict[str, Callable[[Tasks], np.ndarray]]:
    """The methods of the paper's few-shot table, in one harness.

    - `COIN (10 steps x 0.5)`: `TransductiveCOIN()`, the reference settings;
    - `COIN without diffusion`: the same network and training, 0 steps;
    - `SimpleShot (CL2N)`: `NearestClassMean()`, inductive;
    - `SimpleShot + query shift`: the same on COIN's shifted queries;
    - `logistic regression (CL2N)`: `LogisticRegression()`, inductive;
    - `logistic regression + query shift`.

    Args:
        batch_size: int, tasks per compiled COIN call. Defaults to `8`.
        graph: COIN's graph, `"reference"` or `"package"`. Defaults to
            `"reference"`.

    Returns:
        dict of name -> method, for `evaluate`.

    Example:
    >>> import keras_cd
    >>> methods = keras_cd.few_shot.standard_methods()
    >>> list(methods)[:3]
    ['COIN (10 steps x 0.5)', 'COIN without diffusion', 'SimpleShot (CL2N)']
    """
    from keras_cd.few_shot.baselines import LogisticRegression, NearestClassMean
    from keras_cd.few_shot.coin import TransductiveCOIN

    return {
        COIN: TransductiveCOIN(batch_size=batch_size, graph=graph),
        "COIN without diffusion": TransductiveCOIN(num_steps=0, batch_size=batch_size),
        "SimpleShot (CL2N)": NearestClassMean(),
        "SimpleShot + query shift": NearestClassMean(shift=True),
        "logistic regression (CL2N)": LogisticRegression(),
        "logistic regression + query shift": LogisticRegression(shift=True),
    }
