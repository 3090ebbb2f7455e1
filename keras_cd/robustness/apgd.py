"""APGD-CE and APGD-DLR of the adversarial-robustness-toolbox, through a defence's noise.

Croce & Hein's (2020) Auto-PGD is the gradient half of AutoAttack: PGD with
momentum and a step size that halves at checkpoints when the loss stops
rising, on the cross-entropy (APGD-CE) or on the difference of logits ratio
(APGD-DLR), DLR = -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3) with z_pi1 >=
z_pi2 >= z_pi3 the sorted logits, which does not change when the logits are
shifted or scaled. For randomized defences AutoAttack runs both with
expectation over transformation (its version "rand").

Here the attack is the toolbox's `AutoProjectedGradientDescent`, code not
written in this package, with its cross-entropy; the DLR loss it is given
is `DifferenceOfLogitsRatio`, the same formula as the toolbox's (the tests
compare the two) without its Python loop over the batch. What the attack
sees is the defence's Monte-Carlo mean probability over `eot_samples` noisy
passes, the same function `pgd` climbs,
as logits z = log(mean probability) (softmax(z) is that mean, so the
cross-entropy is -log of the mean probability of the true class, exactly
`pgd`'s loss). Every call runs inside `keras_cd.monte_carlo()`, as
`Defence` does, so every pass draws fresh noise.

Optional: `pip install "keras-cd[attacks]"`. TensorFlow backend.
"""

import contextlib
import warnings

import numpy as np

from keras_cd import _validation
from keras_cd.robustness.attacks import check_clip

LOSSES = ("ce", "dlr")
INSTALL = 'pip install "keras-cd[attacks]"'


def _toolbox():
    try:
        with warnings.catch_warnings():  # "PyTorch not found": not needed here
            warnings.simplefilter("ignore")
            from art.attacks.evasion import AutoProjectedGradientDescent
            from art.estimators.classification import TensorFlowV2Classifier
    except ImportError as error:
        raise ImportError(
            "APGD comes from the adversarial-robustness-toolbox, which is not installed. "
            f"Install it with: {INSTALL}"
        ) from error
    return AutoProjectedGradientDescent, TensorFlowV2Classifier


def available():
    """Whether the adversarial-robustness-toolbox (the `attacks` extra) is importable."""
    import importlib.util

    return importlib.util.find_spec("art") is not None


class DifferenceOfLogitsRatio:
    """Croce & Hein's DLR loss, batched: -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3).

    A loss object as the toolbox's TensorFlow classifier calls it:
    `loss(y_one_hot, logits)`, reduced by its `reduction` attribute
    ("none", "sum" or "sum_over_batch_size", which the toolbox sets).
    1e-12 in the denominator as in AutoAttack.
    """

    def __init__(self):
        self.reduction = "sum_over_batch_size"

    def __call__(self, y_true, y_pred, *args, **kwargs):
        import tensorflow as tf

        y_pred = tf.convert_to_tensor(y_pred)
        is_true = tf.cast(y_true, "float32") > 0.5
        true = tf.reduce_sum(tf.where(is_true, y_pred, tf.zeros_like(y_pred)), axis=1)
        other = tf.reduce_max(tf.where(is_true, tf.fill(tf.shape(y_pred), -1e30), y_pred), axis=1)
        ranked = tf.sort(y_pred, axis=1, direction="DESCENDING")
        loss = -(true - other) / (ranked[:, 0] - ranked[:, 2] + 1e-12)
        if self.reduction == "none":
            return loss
        return tf.reduce_sum(loss) if self.reduction == "sum" else tf.reduce_mean(loss)


def art_classifier(defence, eot_samples, clip=(0.0, 1.0), loss_object=None):
    """The defence as a toolbox classifier: logits log(mean probability over passes).

    Args:
        defence: `keras_cd.robustness.Defence`.
        eot_samples: int >= 0, noisy passes averaged per forward pass (0:
            the deterministic network, noise off).
        clip: `(low, high)`, the box of valid inputs. Defaults to `(0.0, 1.0)`.
        loss_object: the loss its `loss_gradient` and `compute_loss` use
            (e.g. `DifferenceOfLogitsRatio()`). Defaults to `None`.

    Returns:
        an `art.estimators.classification.TensorFlowV2Classifier`; call its
        methods inside `keras_cd.monte_carlo()` when `eot_samples > 0`.

    Raises:
        ImportError: without the toolbox (`pip install "keras-cd[attacks]"`).
    """
    import tensorflow as tf

    _, TensorFlowV2Classifier = _toolbox()
    eot_samples = _validation.non_negative_int("eot_samples", eot_samples, "Use e.g. 16.")
    low, high = check_clip(clip, np.zeros(0))
    model = defence.model

    @tf.function(reduce_retracing=True)
    def mean_log_probabilities(x):
        probabilities = defence._mean_probabilities(tf.cast(x, "float32"), eot_samples)
        return tf.math.log(tf.maximum(probabilities, 1e-30))

    def logits(x, training=False):  # the toolbox passes training=; scoring never trains
        return mean_log_probabilities(x)

    return TensorFlowV2Classifier(
        logits,
        nb_classes=int(model.output_shape[-1]),
        input_shape=tuple(model.input_shape[1:]),
        loss_object=loss_object,
        clip_values=(low, high),
    )


def apgd(
    defence,
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
    """L-infinity APGD-CE or APGD-DLR (the toolbox's) on the defence's mean probability.

    Args:
        defence: `keras_cd.robustness.Defence`, the attacked model.
        x: (N, ...) inputs, inside `clip`.
        y: (N,) integer labels.
        eps: float > 0, the L-infinity radius.
        loss: `"ce"` (cross-entropy) or `"dlr"` (difference of logits
            ratio; needs >= 3 classes). Defaults to `"ce"`.
        steps: int >= 1, iterations per restart (AutoAttack: 100). The first
            step size is 2 * eps, as in AutoAttack. Defaults to `100`.
        eot_samples: int >= 0, noisy passes averaged per gradient and per
            loss (0 for a deterministic defence). Defaults to `16`.
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
    """
    from keras_cd.inference import monte_carlo

    AutoProjectedGradientDescent, _ = _toolbox()
    eps = _validation.positive_float("eps", eps, "Use e.g. 0.05 (pixels in [0, 1]).")
    _validation.one_of("loss", loss, LOSSES, "Use 'ce' or 'dlr'.")
    steps = _validation.positive_int("steps", steps, "Use e.g. 100.")
    restarts = _validation.positive_int("restarts", restarts, "Use e.g. 1.")
    x, y = np.asarray(x, "float32"), np.asarray(y)
    clip = check_clip(clip, x)
    dlr = DifferenceOfLogitsRatio() if loss == "dlr" else None
    classifier = art_classifier(defence, eot_samples, clip, loss_object=dlr)
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
                loss_type=None if dlr else "cross_entropy",  # None: the classifier's
                verbose=False,
            )
            adversarial = attack.generate(x, y)
    finally:
        np.random.set_state(state)
    adversarial = np.clip(np.clip(adversarial, x - eps, x + eps), *clip)
    return adversarial.astype("float32")
