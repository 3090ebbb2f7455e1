"""Few-shot baselines in NumPy: nearest class mean (SimpleShot), logistic regression.

The inductive baselines of the paper's few-shot table (Wang, Bao & Shi,
2024), run in the same harness as COIN (`keras_cd.few_shot.evaluate`), on
the same CL2N features: each classifies a query from the support set alone,
without the graph over the task's points that COIN diffuses on. With
`shift=True` they see COIN's transductive query shift too, which tells its
share of COIN's gain from the diffusion's.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from keras_cd import _validation
from keras_cd.few_shot.preprocessing import preprocess

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from keras_cd.few_shot.tasks import Tasks


def _chunks(tasks, size):
    for start in range(0, len(tasks), size):
        yield tasks[start : start + size]


def _one_hot(labels, way):
    return np.eye(way, dtype=np.float64)[labels]


class NearestClassMean:
    """SimpleShot: a query takes the class whose mean support feature is nearest.

    With CL2N features (`keras_cd.few_shot.center_normalize`) and c_k the
    mean of class k's support features,

        y(q) = argmin_k ||q - c_k||_2,

    SimpleShot's CL2N nearest-centroid rule (Wang et al., 2019), inductive:
    each query alone. `shift=True` first applies COIN's transductive query
    shift, to tell its share of COIN's gain from the diffusion's.

    Reference:
        - [Wang et al., 2019, SimpleShot](https://arxiv.org/abs/1911.04623)

    Args:
        shift: bool, shift the queries (`keras_cd.few_shot.shift_queries`).
            Defaults to `False`.
        batch_size: int >= 1, tasks per NumPy batch. Defaults to `500`.

    Raises:
        ValueError: for an invalid argument.

    Example:
    >>> import numpy as np, keras_cd
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat(np.arange(8), 20)
    >>> features = rng.normal(size=(8, 16))[labels] + 0.5 * rng.normal(size=(160, 16))
    >>> data = keras_cd.few_shot.FeatureSet(features, labels, np.where(labels < 3, "base", "novel"))
    >>> tasks, query_labels = keras_cd.few_shot.sample_tasks(
    ...     data, way=5, shot=1, queries=5, num_tasks=10)
    >>> predictions = keras_cd.few_shot.NearestClassMean()(tasks)
    >>> predictions.shape, float((predictions == query_labels).mean()) > 0.6  # chance: 0.2
    ((10, 25), True)
    """

    def __init__(self, shift: bool = False, batch_size: int = 500) -> None:
        self.shift = _validation.boolean("shift", shift)
        self.batch_size = _validation.positive_int("batch_size", batch_size, "Use e.g. 500.")

    def predict(self, tasks: Tasks) -> np.ndarray:
        """Predicts the label of every query of every task.

        Args:
            tasks: a `keras_cd.few_shot.Tasks`.

        Returns:
            (T, way * queries) int array, labels in [0, way).
        """
        predictions = []
        for chunk in _chunks(tasks, self.batch_size):
            support, query = preprocess(chunk, self.shift)
            one_hot = _one_hot(chunk.support_labels, chunk.way).astype(np.float32)
            means = np.einsum("tsc,tsf->tcf", one_hot, support) / one_hot.sum(axis=1)[:, :, None]
            distances = np.einsum("tcf,tcf->tc", means, means)[:, None, :] - 2 * np.einsum(
                "tqf,tcf->tqc", query, means
            )  # ||q||^2 is the same for every class
            predictions.append(distances.argmin(axis=-1))
        return np.concatenate(predictions)

    __call__ = predict


class LogisticRegression:
    """Multinomial logistic regression with an L2 penalty, fit to each task's support set.

    Minimizes scikit-learn's objective (its `LogisticRegression(C=C)`, the
    intercept not penalized)

        J(W, b) = 1/2 ||W||_F^2 + C * sum_i -log softmax(W^T x_i + b)[y_i]

    over the support's CL2N features, for every task of a batch at once.
    The minimizer has W = X_s^T A (the gradient never leaves the span of
    the support rows), so the descent runs on A (S x way) through the Gram
    matrix X_s X_s^T: accelerated gradient descent (Nesterov, restarted
    when the gradient turns against the step) with step 1 / L, L = 1 +
    C/2 * lambda_max(X_s X_s^T + 1 1^T) a bound on the Hessian, until the
    gradient norm is below `tolerance` in every task.

    Args:
        C: float > 0, inverse penalty, as scikit-learn's. Defaults to `1.0`.
        shift: bool, shift the queries first. Defaults to `False`.
        tolerance: float > 0, on the gradient norm. Defaults to `1e-6`.
        max_iterations: int >= 1. Defaults to `5000`.
        batch_size: int >= 1, tasks per NumPy batch. Defaults to `500`.

    Raises:
        ValueError: for an invalid argument.

    Example:
    >>> import numpy as np, keras_cd
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat(np.arange(8), 20)
    >>> features = rng.normal(size=(8, 16))[labels] + 0.5 * rng.normal(size=(160, 16))
    >>> data = keras_cd.few_shot.FeatureSet(features, labels, np.where(labels < 3, "base", "novel"))
    >>> tasks, query_labels = keras_cd.few_shot.sample_tasks(
    ...     data, way=5, shot=1, queries=5, num_tasks=10)
    >>> probabilities = keras_cd.few_shot.LogisticRegression().predict_proba(tasks)
    >>> probabilities.shape, bool(np.allclose(probabilities.sum(axis=-1), 1.0))
    ((10, 25, 5), True)
    """

    def __init__(
        self,
        C: float = 1.0,
        shift: bool = False,
        tolerance: float = 1e-6,
        max_iterations: int = 5000,
        batch_size: int = 500,
    ) -> None:
        self.C = _validation.positive_float("C", C, "Use e.g. C=1.0 (scikit-learn's default).")
        self.shift = _validation.boolean("shift", shift)
        self.tolerance = _validation.positive_float("tolerance", tolerance, "Use e.g. 1e-6.")
        self.max_iterations = _validation.positive_int("max_iterations", max_iterations, "5000.")
        self.batch_size = _validation.positive_int("batch_size", batch_size, "Use e.g. 500.")

    def fit(
        self, support: ArrayLike, labels: ArrayLike, way: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The minimizer of each task's objective as `(A, b, gradient_norm)`.

        Args:
            support: (T, S, F) features.
            labels: (T, S) ints in [0, way).
            way: int, the number of classes.

        Returns:
            `A` (T, S, way) with W = X_s^T A, `b` (T, way), and the final
            gradient norms (T,).

        Warns:
            UserWarning: when some task's gradient norm is still above
                `tolerance` after `max_iterations`.
        """
        support = np.asarray(support, np.float32)
        targets = _one_hot(labels, way)
        gram = np.einsum("tsf,trf->tsr", support, support).astype(np.float64)
        ones = np.ones(gram.shape[1])
        lipschitz = 1 + 0.5 * self.C * np.linalg.eigvalsh(gram + np.outer(ones, ones))[:, -1]
        step = (1.0 / lipschitz)[:, None, None]
        coefficients = np.zeros(targets.shape)
        bias = np.zeros((len(support), way))
        ahead_coefficients, ahead_bias, momentum = coefficients, bias, np.ones(len(support))

        def gradient(coefficients, bias):
            scores = np.einsum("tsr,trc->tsc", gram, coefficients) + bias[:, None, :]
            scores -= scores.max(axis=-1, keepdims=True)
            probabilities = np.exp(scores)
            probabilities /= probabilities.sum(axis=-1, keepdims=True)
            residual = self.C * (probabilities - targets)
            return coefficients + residual, residual.sum(axis=1)

        def norm(grad_coefficients, grad_bias, mapped=None):  # of the (W, b) gradient
            if mapped is None:
                mapped = np.einsum("tsr,trc->tsc", gram, grad_coefficients)
            squared = (grad_coefficients * mapped).sum((1, 2)) + (grad_bias**2).sum(-1)
            return np.sqrt(np.maximum(squared, 0))

        for _ in range(self.max_iterations):
            grad_coefficients, grad_bias = gradient(ahead_coefficients, ahead_bias)
            mapped = np.einsum("tsr,trc->tsc", gram, grad_coefficients)  # W-space products
            if norm(grad_coefficients, grad_bias, mapped).max() < self.tolerance:
                coefficients, bias = ahead_coefficients, ahead_bias
                break
            new_coefficients = ahead_coefficients - step * grad_coefficients
            new_bias = ahead_bias - step[:, 0] * grad_bias
            against = (mapped * (new_coefficients - coefficients)).sum((1, 2))
            against += (grad_bias * (new_bias - bias)).sum(-1)
            new_momentum = np.where(against > 0, 1.0, (1 + np.sqrt(1 + 4 * momentum**2)) / 2)
            weight = np.where(against > 0, 0.0, (momentum - 1) / new_momentum)
            ahead_coefficients = new_coefficients + weight[:, None, None] * (
                new_coefficients - coefficients
            )
            ahead_bias = new_bias + weight[:, None] * (new_bias - bias)
            coefficients, bias, momentum = new_coefficients, new_bias, new_momentum
        norms = norm(*gradient(coefficients, bias))
        if norms.max() >= self.tolerance:
            warnings.warn(
                f"LogisticRegression stopped after max_iterations={self.max_iterations} with "
                f"gradient norm {norms.max():.2g} > tolerance={self.tolerance:g} in "
                f"{int((norms >= self.tolerance).sum())} of {len(norms)} tasks. Raise "
                "max_iterations.",
                stacklevel=3,
            )
        return coefficients, bias, norms

    def predict_proba(self, tasks: Tasks) -> np.ndarray:
        """The class probabilities of every query of every task.

        Args:
            tasks: a `keras_cd.few_shot.Tasks`.

        Returns:
            (T, way * queries, way) float64 array.
        """
        outputs = []
        for chunk in _chunks(tasks, self.batch_size):
            support, query = preprocess(chunk, self.shift)
            coefficients, bias, _ = self.fit(support, chunk.support_labels, chunk.way)
            cross = np.einsum("tqf,tsf->tqs", query, support).astype(np.float64)
            scores = np.einsum("tqs,tsc->tqc", cross, coefficients) + bias[:, None, :]
            scores -= scores.max(axis=-1, keepdims=True)
            probabilities = np.exp(scores)
            outputs.append(probabilities / probabilities.sum(axis=-1, keepdims=True))
        return np.concatenate(outputs)

    def predict(self, tasks: Tasks) -> np.ndarray:
        """Predicts the label of every query of every task (the most probable class).

        Args:
            tasks: a `keras_cd.few_shot.Tasks`.

        Returns:
            (T, way * queries) int array, labels in [0, way).
        """
        return self.predict_proba(tasks).argmax(axis=-1)

    __call__ = predict
