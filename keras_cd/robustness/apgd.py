"""APGD-CE and APGD-DLR of the adversarial-robustness-toolbox, through a defense's noise.

The strongest standard gradient attacks, run against what the paper's
stochastic networks predict (Wang, Bao & Shi, 2024: the mean over the
diffusion noise). Croce & Hein's (2020) Auto-PGD is the gradient half of
AutoAttack: PGD with momentum and a step size that halves at checkpoints
when the loss stops rising, on the cross-entropy (APGD-CE) or on the
difference of logits ratio (APGD-DLR), DLR = -(z_y - max_{i != y} z_i) /
(z_pi1 - z_pi3) with z_pi1 >= z_pi2 >= z_pi3 the sorted logits, which does
not change when the logits are shifted or scaled. For randomized defenses
AutoAttack runs both with expectation over transformation (its version
"rand").

Here the attack is the toolbox's `AutoProjectedGradientDescent`, code not
written in this package. What it attacks is `art_classifier`, a toolbox
estimator (`ClassifierMixin`, `LossGradientsMixin`, `BaseEstimator`)
written with `keras.ops` on top of `keras_cd._backend`, so it runs on every
Keras backend (TensorFlow, JAX, PyTorch): its logits are z = log(mean
probability) over `eot_samples` noisy passes of the defense, the same
function `pgd` climbs (softmax(z) is that mean, so the cross-entropy is
-log of the mean probability of the true class, exactly `pgd`'s loss), and
its loss is that cross-entropy or `difference_of_logits_ratio`, the
toolbox's DLR formula (the tests compare the two) without its Python loop
over the batch. Every pass draws fresh noise (`Defense` runs the passes
inside `keras_cd.monte_carlo()`).

- `apgd`: the attack; `art_classifier`: the toolbox estimator it attacks;
- `difference_of_logits_ratio`: the DLR loss, batched;
- `available`: whether the toolbox is installed.

Optional: `pip install "keras-cd[attacks]"`.
"""

import contextlib
import functools
import warnings

import numpy as np
from keras import losses, ops

from keras_cd import _backend, _validation
from keras_cd._deprecation import renamed_keyword, warn
from keras_cd.robustness.attacks import (
    _compiled,
    _input_gradient,
    _mean_probabilities,
    check_clip,
)

LOSSES = ("ce", "dlr")
INSTALL = 'pip install "keras-cd[attacks]"'


def _toolbox():
    """The toolbox's attack and the estimator class around a `Defense`.

    Returns:
        `(AutoProjectedGradientDescent, MeanProbabilityClassifier)`.

    Raises:
        ImportError: without the toolbox, with the `pip install` to run.
    """
    try:
        with warnings.catch_warnings():  # "PyTorch not found": not needed here
            warnings.simplefilter("ignore")
            from art.attacks.evasion import AutoProjectedGradientDescent
            from art.estimators.classification.classifier import ClassifierMixin
            from art.estimators.estimator import BaseEstimator, LossGradientsMixin
    except ImportError as error:
        raise ImportError(
            "APGD comes from the adversarial-robustness-toolbox, which is not installed. "
            f"Install it with: {INSTALL}"
        ) from error
    classifier = _classifier_class(BaseEstimator, ClassifierMixin, LossGradientsMixin)
    return AutoProjectedGradientDescent, classifier


def available():
    """Whether the adversarial-robustness-toolbox (the `attacks` extra) is importable.

    Returns:
        bool, True when `import art` would succeed (nothing is imported).

    Example:
    >>> from keras_cd.robustness import apgd
    >>> isinstance(apgd.available(), bool)
    True
    """
    import importlib.util

    return importlib.util.find_spec("art") is not None


def difference_of_logits_ratio(y_true, logits):
    """Croce & Hein's difference of logits ratio (DLR) loss, batched.

        DLR(z, y) = -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12),

    with z_pi1 >= z_pi2 >= z_pi3 the three largest logits (1e-12 as in
    AutoAttack). It does not change when the logits are shifted or scaled,
    so a network cannot mask it by saturating its softmax. Written with
    `keras.ops` (every backend, differentiable).

    Reference:
        - [Croce & Hein, 2020](https://arxiv.org/abs/2003.01690)

    Args:
        y_true: (N, C) one-hot labels.
        logits: (N, C) logits, C >= 3.

    Returns:
        (N,) tensor, the loss of each example.

    Example:
    >>> import numpy as np
    >>> from keras_cd.robustness.apgd import difference_of_logits_ratio
    >>> loss = difference_of_logits_ratio(np.eye(3)[[0]], np.array([[3.0, 1.0, -1.0]]))
    >>> round(float(np.asarray(loss)[0]), 6)  # -(3 - 1) / (3 - (-1))
    -0.5
    """
    logits = ops.convert_to_tensor(logits)
    is_true = ops.cast(y_true, "float32") > 0.5
    true = ops.sum(ops.where(is_true, logits, ops.zeros_like(logits)), axis=1)
    other = ops.max(ops.where(is_true, ops.full_like(logits, -1e30), logits), axis=1)
    top, _ = ops.top_k(logits, 3)
    return -(true - other) / (top[:, 0] - top[:, 2] + 1e-12)


def _cross_entropy(y_true, logits):
    """Cross-entropy of softmax(logits) against (N, C) one-hot labels, per example."""
    return losses.categorical_crossentropy(y_true, logits, from_logits=True)


LOSS_FUNCTIONS = {"ce": _cross_entropy, "dlr": difference_of_logits_ratio}


def _logits(model, samples):
    """`logits(trainable, non_trainable, x) -> (log mean probability, state)`."""

    def logits(trainable, non_trainable, x):
        p, non_trainable = _mean_probabilities(model(), trainable, non_trainable, x, samples)
        return ops.log(ops.maximum(p, 1e-30)), non_trainable

    return logits


def _loss(model, samples, loss):
    """`loss(trainable, non_trainable, x, y_one_hot) -> ((N,) losses, state)`."""
    logits = _logits(model, samples)

    def per_example(trainable, non_trainable, x, y):
        z, non_trainable = logits(trainable, non_trainable, x)
        return LOSS_FUNCTIONS[loss](y, z), non_trainable

    return per_example


@functools.cache
def _classifier_class(BaseEstimator, ClassifierMixin, LossGradientsMixin):
    """The estimator class, made once the toolbox's base classes are imported."""

    class MeanProbabilityClassifier(ClassifierMixin, LossGradientsMixin, BaseEstimator):
        """A `Defense` as the toolbox's classifier: logits log(mean probability).

        What `AutoProjectedGradientDescent` (with `loss_type=None`) calls:
        `predict`, `loss_gradient`, `compute_loss`, `nb_classes`,
        `input_shape` and `clip_values`; each forward pass averages
        `eot_samples` noisy passes of the defense (0: its deterministic
        network), compiled by `keras_cd._backend` for the backend in use.

        Args:
            defense: `keras_cd.robustness.Defense`, the attacked model.
            eot_samples: int >= 0, noisy passes per forward pass.
            clip_values: `(low, high)`, the box of valid inputs.
            loss: `"ce"` or `"dlr"`.

        Attributes:
            defense: the `Defense`.
            eot_samples: int.
            loss: str.
            nb_classes: int, the model's classes.
        """

        estimator_params = BaseEstimator.estimator_params + ClassifierMixin.estimator_params

        def __init__(self, defense, eot_samples, clip_values, loss):
            super().__init__(model=defense.model, clip_values=clip_values, preprocessing=None)
            self.defense, self.eot_samples, self.loss = defense, eot_samples, loss
            self.nb_classes = int(defense.model.output_shape[-1])
            self._input_shape = tuple(defense.model.input_shape[1:])

        @property
        def defence(self):
            """Deprecated: `defense` (removed in keras_cd 0.3)."""
            warn("MeanProbabilityClassifier.defence", "MeanProbabilityClassifier.defense")
            return self.defense

        @property
        def input_shape(self):
            """The shape of one input, without the batch axis."""
            return self._input_shape

        def predict(self, x, batch_size=128, **kwargs):
            """(N, C) logits: log of the mean probability over `eot_samples` passes.

            The mean probabilities are the defense's own (`Defense.probabilities`,
            the function its scoring and `pgd` compile); the log is taken in
            NumPy, as `_logits` takes it, floored at 1e-30.

            Args:
                x: (N, ...) inputs.
                batch_size: ignored: the defense's `batch_size` is used.
                **kwargs: ignored, as the toolbox's own classifiers do.

            Returns:
                (N, C) float32 NumPy logits.
            """
            probabilities = self.defense.probabilities(x, self.eot_samples)
            return np.log(np.maximum(probabilities, np.float32(1e-30)))

        def compute_loss(self, x, y, reduction="none", **kwargs):
            """The loss of each example (cross-entropy or DLR of the logits).

            The logits come from `predict` (the defense's compiled
            probabilities); the loss of these (N, C) numbers is evaluated
            eagerly, with the `keras.ops` of `loss_gradient` (no function of
            its own to compile).

            Args:
                x: (N, ...) inputs.
                y: (N, C) one-hot labels.
                reduction: `"none"` ((N,) losses), `"sum"` or `"mean"`.
                **kwargs: ignored.

            Returns:
                the losses as NumPy, reduced as asked.

            Raises:
                ValueError: for another `reduction`.
            """
            if reduction not in ("none", "sum", "mean"):
                _validation.invalid(
                    "reduction", "'none', 'sum' or 'mean'", reduction, "Use 'none'."
                )
            logits = self.predict(x)
            values = _backend.numpy(LOSS_FUNCTIONS[self.loss](_labels(y), logits))
            return values if reduction == "none" else getattr(np, reduction)(values)

        def loss_gradient(self, x, y, **kwargs):
            """The gradient d(sum of the examples' losses) / dx, one per example.

            Args:
                x: (N, ...) inputs.
                y: (N, C) one-hot labels.
                **kwargs: ignored.

            Returns:
                (N, ...) float32 NumPy gradients.
            """

            def make(model):
                return _input_gradient(_loss(model, self.eot_samples, self.loss))

            key = ("apgd-gradient", self.loss, self.eot_samples)
            function = _compiled(self.defense.model, key, make)
            arrays = np.asarray(x, "float32"), _labels(y)
            return self.defense._run(function, self.eot_samples, *arrays)

        def fit(self, x, y, **kwargs):
            """Not supported: the defense is trained with Keras, the toolbox only attacks it.

            Raises:
                NotImplementedError: always.
            """
            raise NotImplementedError(
                "This classifier wraps a trained keras_cd Defense for attacks; train the "
                "model with Keras (model.fit or keras_cd.robustness.train_defenses)."
            )

    return MeanProbabilityClassifier


def _labels(y):
    """The toolbox's (N, C) one-hot labels as float32."""
    return np.asarray(y, "float32")


@renamed_keyword("keras_cd.robustness.apgd.art_classifier")
def art_classifier(defense, eot_samples, clip=(0.0, 1.0), loss="ce"):
    """The defense as a toolbox classifier: logits log(mean probability over passes).

    The logits are z = log p, p the mean probability over `eot_samples`
    noisy passes of the defense, so softmax(z) = p and the toolbox's
    attacks climb the loss of exactly what the defense predicts.

    Args:
        defense: `keras_cd.robustness.Defense`.
        eot_samples: int >= 0, noisy passes averaged per forward pass (0:
            the deterministic network, noise off).
        clip: `(low, high)`, the box of valid inputs. Defaults to `(0.0, 1.0)`.
        loss: `"ce"` (cross-entropy of the logits) or `"dlr"`
            (`difference_of_logits_ratio`), what its `loss_gradient` and
            `compute_loss` compute. Defaults to `"ce"`.

    Returns:
        an estimator of the toolbox (`ClassifierMixin`, `LossGradientsMixin`,
        `BaseEstimator`) for its `AutoProjectedGradientDescent` with
        `loss_type=None`; its methods run the noisy passes inside
        `keras_cd.monte_carlo()` themselves, on every Keras backend.

    Raises:
        ValueError: for an invalid argument.
        ImportError: without the toolbox (`pip install "keras-cd[attacks]"`).

    Example:
    ```python
    classifier = keras_cd.robustness.apgd.art_classifier(defense, eot_samples=16)
    logits = classifier.predict(x)  # log of the mean probability over 16 passes
    ```
    """
    _, classifier = _toolbox()
    eot_samples = _validation.non_negative_int("eot_samples", eot_samples, "Use e.g. 16.")
    _validation.one_of("loss", loss, LOSSES, "Use 'ce' or 'dlr'.")
    low, high = check_clip(clip, np.zeros(0))
    return classifier(defense, eot_samples, (low, high), loss)


@renamed_keyword("keras_cd.robustness.apgd.apgd")
def apgd(
    defense,
    x,
    y,
    eps,
    loss="ce",
    steps=100,
    eot_samples=16,
    restarts=1,
    seed=0,
    clip=(0.0, 1.0),
):
    """L-infinity APGD-CE or APGD-DLR (the toolbox's) on the defense's mean probability.

    Auto-PGD (Croce & Hein, 2020): PGD with momentum whose step size starts
    at 2 * eps and halves at checkpoints when the loss stopped rising, on
    the cross-entropy of the mean probability p (APGD-CE) or on
    `difference_of_logits_ratio` of log p (APGD-DLR); with `eot_samples` >
    0, every loss and gradient averages that many noisy passes (AutoAttack's
    version "rand" for randomized defenses).

    Reference:
        - [Croce & Hein, 2020](https://arxiv.org/abs/2003.01690)

    Args:
        defense: `keras_cd.robustness.Defense`, the attacked model.
        x: (N, ...) inputs, inside `clip`.
        y: (N,) integer labels.
        eps: float > 0, the L-infinity radius.
        loss: `"ce"` (cross-entropy) or `"dlr"` (difference of logits
            ratio; needs >= 3 classes). Defaults to `"ce"`.
        steps: int >= 1, iterations per restart (AutoAttack: 100). The first
            step size is 2 * eps, as in AutoAttack. Defaults to `100`.
        eot_samples: int >= 0, noisy passes averaged per gradient and per
            loss (0 for a deterministic defense). Defaults to `16`.
        restarts: int >= 1, random starts (an example stays broken once
            broken). Defaults to `1`.
        seed: int, seed of NumPy's global generator during the attack (the
            toolbox draws its random starts there); restored afterwards.
            Defaults to `0`.
        clip: `(low, high)`, the box of valid inputs. Defaults to `(0.0, 1.0)`.

    Returns:
        (N, ...) float32 adversarial inputs, within eps of `x` and in `clip`.

    Raises:
        ValueError: for an invalid argument, `x` outside `clip`, or DLR with
            fewer than 3 classes.
        ImportError: without the toolbox (`pip install "keras-cd[attacks]"`).

    Example:
    ```python
    from keras_cd.robustness import Defense, apgd

    defense = Defense(model, samples=16)
    adversarial = apgd.apgd(defense, x, y, eps=0.05, loss="dlr", eot_samples=16)
    robust = defense.correct(adversarial, y).mean()
    ```
    """
    from keras_cd.inference import monte_carlo

    AutoProjectedGradientDescent, _ = _toolbox()
    eps = _validation.positive_float("eps", eps, "Use e.g. 0.05 (pixels in [0, 1]).")
    _validation.one_of("loss", loss, LOSSES, "Use 'ce' or 'dlr'.")
    steps = _validation.positive_int("steps", steps, "Use e.g. 100.")
    restarts = _validation.positive_int("restarts", restarts, "Use e.g. 1.")
    x, y = np.asarray(x, "float32"), np.asarray(y)
    clip = check_clip(clip, x)
    classifier = art_classifier(defense, eot_samples, clip, loss)
    if loss == "dlr" and classifier.nb_classes < 3:
        _validation.invalid(
            "loss",
            "'ce' for a model with fewer than 3 classes (DLR divides by z_pi1 - z_pi3)",
            loss,
            f"Use loss='ce'; the model has {classifier.nb_classes} classes.",
        )
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with monte_carlo() if eot_samples else contextlib.nullcontext():
            attack = AutoProjectedGradientDescent(
                classifier,
                norm=np.inf,
                eps=eps,
                eps_step=2 * eps,
                max_iter=steps,
                nb_random_init=restarts,
                batch_size=max(len(x), 1),
                loss_type=None,  # the classifier's own: cross-entropy or DLR
                verbose=False,
            )
            adversarial = attack.generate(x, y)
    finally:
        np.random.set_state(state)
    adversarial = np.clip(np.clip(adversarial, x - eps, x + eps), *clip)
    return adversarial.astype("float32")
