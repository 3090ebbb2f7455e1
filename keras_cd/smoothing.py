"""Gaussian smoothing and certified robustness (Cohen, Rosenfeld & Kolter, 2019).

Smoothing is diffusion: for a base classifier f, the smoothed classifier

    g(x) = argmax_c P(f(x + sigma * eps) = c),   eps ~ N(0, I),

is read off u(x, t) = E[f(x + sqrt(2 t) eps)], the solution of the heat
equation u_t = Laplacian u at time t = sigma^2 / 2 started from f. Because
the Gaussian convolution makes g Lipschitz, g provably cannot change its
answer within the L2 radius sigma * PhiInverse(p_A) around x, where p_A is a
lower confidence bound on the top class probability.

This is the diffusion half of the convection-diffusion view of Wang, Bao &
Shi (arXiv 2403.15726) applied to the input alone. The module holds
[`SmoothedClassifier`][keras_cd.smoothing.SmoothedClassifier] (Cohen et al.'s
PREDICT and CERTIFY for any Keras classifier), their decisions from class
counts ([`predict_from_counts`][keras_cd.smoothing.predict_from_counts],
[`certify_from_counts`][keras_cd.smoothing.certify_from_counts]), the
Monte-Carlo estimate of u(x, t) itself
([`gaussian_smoothing`][keras_cd.smoothing.gaussian_smoothing]), and
`ABSTAIN` (-1), the class returned where the smoothed classifier abstains.
"""

from __future__ import annotations

# First: a missing backend package gets an error that says how to fix it.
from keras_cd import _keras  # noqa: F401

# isort: split
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops

from keras_cd import _validation
from keras_cd._sampling import mean_and_standard_error, reduce_copies
from keras_cd.layers.diffusion_noise import DiffusionNoise

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

# The class PREDICT and CERTIFY return where they abstain.
ABSTAIN = -1


def _probability(name, value):
    return _validation.probability(name, value)


class _Smoother:
    """A compiled `model(x + sigma * eps)`, the noise drawn on the device."""

    def __init__(self, model, sigma, seed, batch_size, output):
        inputs = keras.Input(model.inputs[0].shape[1:], dtype=model.inputs[0].dtype)
        # Noise on the input only: the base model stays in inference mode.
        noisy = DiffusionNoise(sigma, seed=seed, name="input_smoothing")(inputs, monte_carlo=True)
        outputs = model(noisy, training=False)
        if output == "labels":
            outputs = ops.argmax(outputs, axis=-1)
        self.network = keras.Model(inputs, outputs)
        self.batch_size = batch_size

    def evaluate(self, x, num_samples, reduce):
        return reduce_copies(self.network.predict_on_batch, x, num_samples, self.batch_size, reduce)


class SmoothedClassifier:
    """Randomized smoothing of any Keras classifier, with certified L2 radii.

    Wraps a base classifier f as the smoothed classifier

        g(x) = argmax_c P(f(x + sigma * eps) = c),   eps ~ N(0, I),

    evaluated by Monte Carlo: the noisy copies are drawn on the device (a
    `DiffusionNoise` layer in front of `model`, with `model` in inference
    mode) and run `batch_size` at a time. `predict` and `certify` are Cohen
    et al.'s PREDICT and CERTIFY; `predict_proba` estimates the smoothed
    class probabilities, u(x, sigma^2 / 2) for the heat equation
    u_t = Laplacian u started from the softmax output.

    Reference:
        - [Cohen, Rosenfeld & Kolter, 2019, Certified Adversarial Robustness
          via Randomized Smoothing](https://arxiv.org/abs/1902.02918)

    Args:
        model: a `keras.Model` classifier from inputs to class scores
            (probabilities or logits; only the argmax matters for `predict`
            and `certify`). Its first input is the one smoothed.
        sigma: float > 0, noise level (L2, in input units).
        num_classes: int >= 2, number of classes of `model`.
        batch_size: int >= 1, noisy copies per forward pass. Defaults to `1000`.
        from_logits: bool, whether `model` outputs logits (`predict_proba`
            applies a softmax then). Defaults to `False`.
        seed: int or None, seed of the noise. Defaults to `None`.

    Raises:
        ValueError: if `model` is not a `keras.Model`, `sigma` is not a
            finite number > 0, `num_classes` is not an int >= 2, `batch_size`
            is not an int >= 1, or `seed` is neither None nor an int.

    Example:
        >>> import numpy as np, keras, keras_cd
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
        >>> model.layers[0].set_weights([np.array([[0., 1.], [0., 0.]]), np.zeros(2)])
        >>> smoothed = keras_cd.smoothing.SmoothedClassifier(model, 0.5, 2, seed=0)
        >>> classes, radii = smoothed.certify(np.array([[1.0, 0.0]]), n0=100, n=2000, alpha=0.001)
        >>> int(classes[0]), bool(0.6 < radii[0] < 1.0)  # true distance to the boundary: 1.0
        (1, True)
    """

    def __init__(
        self,
        model: keras.Model,
        sigma: float,
        num_classes: int,
        batch_size: int = 1000,
        from_logits: bool = False,
        seed: int | None = None,
    ) -> None:
        if not isinstance(model, keras.Model):
            raise ValueError(
                "Invalid value for `model`: expected a keras.Model classifier. "
                f"Received: {type(model).__name__}. Wrap your network in keras.Model."
            )
        self.model = model
        self.sigma = _validation.positive_float(
            "sigma", sigma, "Use the noise level the model was trained with, e.g. sigma=0.25."
        )
        self.num_classes = _validation.integer(
            "num_classes", num_classes, "Use e.g. 10.", minimum=2
        )
        self.batch_size = _validation.positive_int("batch_size", batch_size, "Use e.g. 1000.")
        self.from_logits = bool(from_logits)
        self.seed = _validation.optional_seed("seed", seed)
        self._labels = _Smoother(model, self.sigma, self.seed, self.batch_size, "labels")
        self._scores = None

    def _inputs(self, x):
        x = np.asarray(ops.convert_to_numpy(x), dtype=self.model.inputs[0].dtype)
        expected = tuple(self.model.inputs[0].shape[1:])
        if x.ndim != len(expected) + 1 or any(
            e is not None and e != g for e, g in zip(expected, x.shape[1:])
        ):
            raise ValueError(
                f"Invalid value for `x`: expected a batch of inputs of shape "
                f"(m,) + {expected}. Received: shape {x.shape}. Add a batch axis "
                "for a single input, e.g. x[None]."
            )
        return x

    def sample_counts(self, x: Any, num_samples: int) -> np.ndarray:
        """Counts the base model's classes over `num_samples` noisy copies of each input.

        Args:
            x: array or tensor, a batch of inputs `(m, ...)` of the model's
                input shape.
            num_samples: int >= 1, noisy copies per input.

        Returns:
            An (m, num_classes) int64 array: how often f(x + sigma * eps)
            was each class.

        Raises:
            ValueError: if `x` is not a batch of the model's input shape, or
                `num_samples` is not an int >= 1.
        """
        x = self._inputs(x)
        num_samples = _validation.positive_int("num_samples", num_samples, "Use e.g. 1000.")

        def count(labels, owner, totals):
            totals = np.zeros((len(x), self.num_classes), np.int64) if totals is None else totals
            np.add.at(totals, (owner, labels.astype(np.int64)), 1)
            return totals

        return self._labels.evaluate(x, num_samples, count)

    def predict_proba(self, x: Any, num_samples: int) -> np.ndarray:
        """Estimates the smoothed class probabilities E[softmax(f(x + sigma * eps))].

        Probabilities are averaged as the model outputs them (after a softmax
        when `from_logits=True`): u(x, sigma^2 / 2) of the heat equation
        started from the class probabilities.

        Args:
            x: array or tensor, a batch of inputs `(m, ...)`.
            num_samples: int >= 1, noisy copies per input.

        Returns:
            An (m, C) float64 array, C the width of the model's output.

        Raises:
            ValueError: if `x` is not a batch of the model's input shape, or
                `num_samples` is not an int >= 1.
        """
        x = self._inputs(x)
        num_samples = _validation.positive_int("num_samples", num_samples, "Use e.g. 1000.")
        if self._scores is None:
            self._scores = _Smoother(self.model, self.sigma, self.seed, self.batch_size, "scores")

        def accumulate(scores, owner, totals):
            if self.from_logits:
                scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
                scores /= scores.sum(axis=-1, keepdims=True)
            totals = np.zeros((len(x), scores.shape[-1])) if totals is None else totals
            np.add.at(totals, owner, scores)
            return totals

        return self._scores.evaluate(x, num_samples, accumulate) / num_samples

    def predict(self, x: Any, num_samples: int, alpha: float) -> np.ndarray:
        """Cohen's PREDICT: the smoothed classifier's class, or `ABSTAIN`.

        Counts the classes of `num_samples` noisy copies and returns the top
        one, or `ABSTAIN` (-1) when the top two classes cannot be told apart
        by a two-sided binomial test at level `alpha`; a returned class
        differs from g(x) with probability at most `alpha`.

        Args:
            x: array or tensor, a batch of inputs `(m, ...)`.
            num_samples: int >= 1, noisy copies per input.
            alpha: float in (0, 1), the test's level.

        Returns:
            An (m,) int64 array of classes, `ABSTAIN` where abstaining.

        Raises:
            ValueError: if `alpha` is not in (0, 1), `x` is not a batch of the
                model's input shape, or `num_samples` is not an int >= 1.
        """
        alpha = _probability("alpha", alpha)
        return predict_from_counts(self.sample_counts(x, num_samples), alpha)

    def certify(self, x: Any, n0: int, n: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """Cohen's CERTIFY: the smoothed classifier's class and a certified L2 radius.

        Guesses the top class from `n0` noisy copies, then lower-bounds its
        probability p_lower from `n` fresh copies (one-sided Clopper-Pearson
        at level `alpha`). With probability at least 1 - alpha per input,
        the smoothed classifier returns the same class everywhere within the
        radius sigma * PhiInverse(p_lower).

        Args:
            x: array or tensor, a batch of inputs `(m, ...)`.
            n0: int >= 1, copies for the guess.
            n: int >= n0, copies for the bound.
            alpha: float in (0, 1), the bound's level.

        Returns:
            `(classes, radii)`: an (m,) int64 array of classes (`ABSTAIN`
            = -1 where p_lower <= 1/2) and an (m,) float array of certified
            L2 radii (0 where abstaining).

        Raises:
            ValueError: if `n0` or `n` is not an int >= 1, `n0 > n`, `alpha`
                is not in (0, 1), or `x` is not a batch of the model's input
                shape.
        """
        n0 = _validation.positive_int("n0", n0, "Use e.g. n0=100.")
        n = _validation.positive_int("n", n, "Use e.g. n=100000.")
        if n0 > n:
            raise ValueError(
                f"Invalid values for `n0` and `n`: expected n0 <= n (a few "
                f"selection samples, many estimation samples). Received: n0={n0}, "
                f"n={n}. Use e.g. n0=100, n=100000."
            )
        alpha = _probability("alpha", alpha)
        guesses = np.argmax(self.sample_counts(x, n0), axis=-1)
        counts = self.sample_counts(x, n)
        top = counts[np.arange(len(counts)), guesses]
        return certify_from_counts(guesses, top, n, alpha, self.sigma)


def predict_from_counts(counts: np.ndarray, alpha: float) -> np.ndarray:
    """Returns PREDICT's decision from class counts.

    For each row, the class with the most counts, provided a two-sided
    binomial test of its count against the runner-up's rejects equality at
    level `alpha`; otherwise `ABSTAIN`. Ties go to the lower class index.
    Needs scipy.

    Args:
        counts: (m, C) int array, class counts of noisy copies (as
            `SmoothedClassifier.sample_counts` returns them).
        alpha: float in (0, 1), the test's level.

    Returns:
        An (m,) int64 array of classes, `ABSTAIN` (-1) where abstaining.

    Example:
        >>> import numpy as np, keras_cd
        >>> counts = np.array([[90, 10], [52, 48]])
        >>> keras_cd.smoothing.predict_from_counts(counts, alpha=0.001).tolist()
        [0, -1]
    """
    from scipy.stats import binomtest

    order = np.argsort(-counts, axis=-1, kind="stable")
    result = np.full(len(counts), ABSTAIN, np.int64)
    for i, (first, second) in enumerate(order[:, :2]):
        n_a, n_b = int(counts[i, first]), int(counts[i, second])
        if n_a + n_b and binomtest(n_a, n_a + n_b, 0.5).pvalue <= alpha:
            result[i] = first
    return result


def certify_from_counts(
    guesses: ArrayLike, top_counts: ArrayLike, n: int, alpha: float, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Returns CERTIFY's decision and radius from the top-class counts out of `n`.

    p_lower is the one-sided Clopper-Pearson lower bound at level `alpha` of
    the guessed class's probability, from `top_counts` successes in `n`
    draws. Where p_lower > 1/2 the guess is certified with radius
    sigma * PhiInverse(p_lower); elsewhere the result is `ABSTAIN` with
    radius 0. Needs scipy.

    Args:
        guesses: (m,) int array, the guessed classes.
        top_counts: (m,) int array, how often the guessed class came up in
            the `n` fresh draws.
        n: int, the number of fresh draws per input.
        alpha: float in (0, 1), the bound's level.
        sigma: float > 0, the noise level of the draws.

    Returns:
        `(classes, radii)`: an (m,) int64 array (`ABSTAIN` where not
        certified) and an (m,) float64 array of L2 radii.

    Example:
        >>> import numpy as np, keras_cd
        >>> classes, radii = keras_cd.smoothing.certify_from_counts(
        ...     np.array([1, 0]), np.array([990, 400]), n=1000, alpha=0.001, sigma=0.5
        ... )
        >>> classes.tolist(), np.round(radii, 3).tolist()  # 400 of 1000: not certified
        ([1, -1], [0.989, 0.0])
    """
    from scipy.stats import beta, norm

    top_counts = np.asarray(top_counts)
    lower = np.where(
        top_counts > 0, beta.ppf(alpha, np.maximum(top_counts, 1), n - top_counts + 1), 0.0
    )
    certified = lower > 0.5
    classes = np.where(certified, guesses, ABSTAIN)
    radii = np.where(certified, sigma * norm.ppf(np.where(certified, lower, 0.75)), 0.0)
    return classes.astype(np.int64), radii


def gaussian_smoothing(
    model: keras.Model,
    x: Any,
    sigma: float,
    num_samples: int,
    batch_size: int = 1000,
    seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Estimates E[model(x + sigma * eps)], eps ~ N(0, I), by Monte Carlo.

    The mean is u(x, t) at t = sigma^2 / 2 for the heat equation

        u_t = Laplacian u,   u(., 0) = model,

    the diffusion step of the convection-diffusion equation applied to the
    input. The noise is drawn on the device and `model` runs in inference
    mode; the standard error falls like 1 / sqrt(num_samples).

    Args:
        model: a `keras.Model`; its first input is the one smoothed.
        x: array or tensor, a batch of inputs `(m, ...)`.
        sigma: float > 0, the noise level.
        num_samples: int >= 1, noisy copies per input.
        batch_size: int >= 1, copies per forward pass. Defaults to `1000`.
        seed: int or None, seed of the noise. Defaults to `None`.

    Returns:
        `(mean, standard_error)`: two float64 NumPy arrays, each shaped like
        `model(x)`.

    Raises:
        ValueError: if `sigma` is not a finite number > 0, `num_samples` or
            `batch_size` is not an int >= 1, or `seed` is neither None nor an
            int.

    Example:
        >>> import numpy as np, keras, keras_cd
        >>> inputs = keras.Input((1,))
        >>> square = keras.Model(inputs, keras.ops.square(inputs))  # u(x, 0) = x^2
        >>> mean, error = keras_cd.smoothing.gaussian_smoothing(
        ...     square, np.array([[1.0]]), sigma=0.5, num_samples=4000, seed=0
        ... )
        >>> bool(abs(mean[0, 0] - 1.25) < 5 * error[0, 0])  # u(x, t) = x^2 + 2t, t = sigma^2 / 2
        True
    """
    sigma = _validation.positive_float("sigma", sigma, "Use e.g. sigma=0.25.")
    num_samples = _validation.positive_int("num_samples", num_samples, "Use e.g. 1000.")
    batch_size = _validation.positive_int("batch_size", batch_size, "Use e.g. 1000.")
    x = np.asarray(ops.convert_to_numpy(x), dtype=model.inputs[0].dtype)
    smoother = _Smoother(
        model, sigma, _validation.optional_seed("seed", seed), batch_size, "scores"
    )
    return mean_and_standard_error(smoother.network.predict_on_batch, x, num_samples, batch_size)


__all__ = [
    "ABSTAIN",
    "SmoothedClassifier",
    "certify_from_counts",
    "gaussian_smoothing",
    "predict_from_counts",
]
