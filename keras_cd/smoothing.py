"""Gaussian smoothing and certified robustness (Cohen, Rosenfeld & Kolter, 2019).

Smoothing is diffusion: for a base classifier f, the smoothed classifier

    g(x) = argmax_c P(f(x + sigma * eps) = c),   eps ~ N(0, I),

is read off u(x, t) = E[f(x + sqrt(2 t) eps)], the solution of the heat
equation u_t = Laplacian u at time t = sigma^2 / 2 started from f. Because
the Gaussian convolution makes g Lipschitz, g provably cannot change its
answer within the L2 radius sigma * PhiInverse(p_A) around x, where p_A is a
lower confidence bound on the top class probability.
"""

import keras
import numpy as np
from keras import ops

from keras_cd import _validation
from keras_cd._sampling import mean_and_standard_error, reduce_copies
from keras_cd.layers.diffusion_noise import DiffusionNoise

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

    Reference:
        - [Cohen, Rosenfeld & Kolter, 2019, Certified Adversarial Robustness
          via Randomized Smoothing](https://arxiv.org/abs/1902.02918)

    Args:
        model: a Keras classifier from inputs to class scores (probabilities
            or logits; only the argmax matters for `predict` and `certify`).
        sigma: float > 0, noise level (L2, in input units).
        num_classes: int >= 2.
        batch_size: int >= 1, noisy copies per forward pass. Defaults to `1000`.
        from_logits: bool, whether `model` outputs logits (`predict_proba`
            applies a softmax then). Defaults to `False`.
        seed: int or None, seed of the noise. Defaults to `None`.

    Example:

    >>> import numpy as np, keras, keras_cd
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> model.layers[0].set_weights([np.array([[0., 1.], [0., 0.]]), np.zeros(2)])
    >>> smoothed = keras_cd.smoothing.SmoothedClassifier(model, 0.5, 2, seed=0)
    >>> classes, radii = smoothed.certify(np.array([[1.0, 0.0]]), n0=100, n=2000, alpha=0.001)
    >>> int(classes[0]), bool(0.6 < radii[0] < 1.0)  # true distance to the boundary: 1.0
    (1, True)
    """

    def __init__(self, model, sigma, num_classes, batch_size=1000, from_logits=False, seed=None):
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

    def sample_counts(self, x, num_samples):
        """Class counts of the base model over `num_samples` noisy copies: (m, C) ints."""
        x = self._inputs(x)
        num_samples = _validation.positive_int("num_samples", num_samples, "Use e.g. 1000.")

        def count(labels, owner, totals):
            totals = np.zeros((len(x), self.num_classes), np.int64) if totals is None else totals
            np.add.at(totals, (owner, labels.astype(np.int64)), 1)
            return totals

        return self._labels.evaluate(x, num_samples, count)

    def predict_proba(self, x, num_samples):
        """Monte-Carlo Gaussian smoothing of the softmax output: (m, C) floats."""
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

    def predict(self, x, num_samples, alpha):
        """Cohen's PREDICT: the top class, or `ABSTAIN` (-1) when the top two
        classes cannot be told apart by a two-sided binomial test at level `alpha`.

        Returns an (m,) int array.
        """
        alpha = _probability("alpha", alpha)
        return predict_from_counts(self.sample_counts(x, num_samples), alpha)

    def certify(self, x, n0, n, alpha):
        """Cohen's CERTIFY: guess the top class from `n0` samples, then lower-bound
        its probability from `n` fresh samples (one-sided Clopper-Pearson at
        level `alpha`).

        Returns `(classes, radii)`: (m,) ints (`ABSTAIN` = -1 where the bound is
        below 1/2) and (m,) certified L2 radii `sigma * PhiInverse(p_lower)`
        (0 where abstaining). With probability at least 1 - alpha per input,
        the smoothed classifier returns the same class everywhere within the radius.
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


def predict_from_counts(counts, alpha):
    """PREDICT's decision from class counts (m, C)."""
    from scipy.stats import binomtest

    order = np.argsort(-counts, axis=-1, kind="stable")
    result = np.full(len(counts), ABSTAIN, np.int64)
    for i, (first, second) in enumerate(order[:, :2]):
        n_a, n_b = int(counts[i, first]), int(counts[i, second])
        if n_a + n_b and binomtest(n_a, n_a + n_b, 0.5).pvalue <= alpha:
            result[i] = first
    return result


def certify_from_counts(guesses, top_counts, n, alpha, sigma):
    """CERTIFY's decision and radius from the top-class counts out of `n`."""
    from scipy.stats import beta, norm

    top_counts = np.asarray(top_counts)
    lower = np.where(
        top_counts > 0, beta.ppf(alpha, np.maximum(top_counts, 1), n - top_counts + 1), 0.0
    )
    certified = lower > 0.5
    classes = np.where(certified, guesses, ABSTAIN)
    radii = np.where(certified, sigma * norm.ppf(np.where(certified, lower, 0.75)), 0.0)
    return classes.astype(np.int64), radii


def gaussian_smoothing(model, x, sigma, num_samples, batch_size=1000, seed=None):
    """E[model(x + sigma * eps)], eps ~ N(0, I), by Monte Carlo, with its standard error.

    The mean is u(x, t) at t = sigma^2 / 2 for the heat equation u_t = Laplacian u
    with u(., 0) = model. Returns `(mean, standard_error)`, each shaped like
    `model(x)`; the standard error falls like 1 / sqrt(num_samples).
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
