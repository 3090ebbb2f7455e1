"""L-infinity attacks on (possibly stochastic) classifiers, and how they are scored.

The convection-diffusion view of a network (Wang, Bao & Shi, 2024) predicts
with the mean class probability over its diffusion noise, the Feynman-Kac
solution of the convection-diffusion equation; the paper's robustness claim
is about that mean. This module holds the tools that attack and score a
network exactly that way, on every Keras backend (TensorFlow, JAX, PyTorch):
written with `keras.ops`, input gradients from `keras_cd._backend`.

A stochastic defense (a CD network with Monte-Carlo inference, or any model
scored through input smoothing) must be attacked through what it returns:
the mean class probability over its noise. The attacks here estimate that
mean with `eot_samples` noisy passes per step (expectation over
transformation, EOT; Athalye et al., 2018) and the defense is scored with
its own `samples`; an attack with fewer EOT samples than the scoring leaves
gradient noise that a stronger attacker averages away.

- [`Defense`][keras_cd.robustness.Defense]: a model and its scoring
  (deterministic, or the mean over Monte-Carlo passes of its own noise).
- [`pgd`][keras_cd.robustness.pgd]: projected gradient ascent on the
  cross-entropy of the mean probability, random start, `restarts` (an
  example counts as broken if any restart breaks it), step-size schedules
  `"constant"` (eps / 4) or `"cosine"` (from eps / 2 down to 0).
- [`square`][keras_cd.robustness.square]: Andriushchenko et al.'s (2020)
  Square Attack, score-based random search on the margin of the mean
  probabilities, no gradients: it exposes a defense whose gradients are
  masked (noisy, flat or wrong). [`square_fraction`][keras_cd.robustness.square_fraction]
  is its schedule of the square's size.
- Transfer: `pgd` adversarials crafted on another (e.g. the plain) network.
- `keras_cd.robustness.apgd`: APGD-CE and APGD-DLR (Croce & Hein, 2020) of
  the adversarial-robustness-toolbox, through the same mean probabilities.
- [`robust_accuracy`][keras_cd.robustness.robust_accuracy] scores
  adversarials; [`rescoring_agreement`][keras_cd.robustness.rescoring_agreement]
  tells whether a stochastic defense's scoring is repeatable enough to count
  single examples; [`check_clip`][keras_cd.robustness.check_clip] checks the
  box `clip=(low, high)` the inputs live in (the attacks refuse inputs
  outside it and keep the adversarials inside it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from keras import losses, ops

from keras_cd import _backend, _validation
from keras_cd._deprecation import deprecated_aliases, renamed_keyword

if TYPE_CHECKING:
    import keras
    from numpy.typing import ArrayLike

SCHEDULES = ("constant", "cosine")
SCORING_Z = 3.0  # sequential scoring: standard errors from the boundary to stop
PASS_CHUNK = 8192  # sequential scoring: images (examples x passes) per forward pass
SMALLEST_PADDED = 8  # JAX: batches padded to a power of two, at least this (or batch_size)


def _input_gradient(loss):
    """The gradient with respect to the inputs of a summed per-example loss.

    Args:
        loss: `loss(trainable, non_trainable, x, y) -> (losses, non_trainable)`,
            a pure function in `keras.ops` of the model's state, the inputs
            and the labels: (N,) per-example losses and the model's new
            non-trainable state (seed states advance with every noisy pass).

    Returns:
        `gradient(trainable, non_trainable, x, y) -> (d sum(losses) / d x,
        non_trainable)`, differentiated by the backend in use
        (`keras_cd._backend.value_and_grad`); a `Defense` runs it like its
        own functions (`Defense._run`).
    """

    def objective(x, trainable, non_trainable, y):
        values, non_trainable = loss(trainable, non_trainable, x, y)
        return ops.sum(values), non_trainable

    value_and_grad = _backend.value_and_grad(objective)

    def gradient(trainable, non_trainable, x, y):
        (_, non_trainable), grads = value_and_grad(x, trainable, non_trainable, y)
        return grads, non_trainable

    return gradient


def _padded(array, size):
    """`array` with its last row repeated up to `size` rows."""
    extra = size - len(array)
    if extra <= 0:
        return array
    return np.concatenate([array, np.repeat(array[-1:], extra, axis=0)])


def _passes(model, trainable, non_trainable, x, samples):
    """Every pass's probabilities, (max(samples, 1), batch, C), and the new state.

    A pure function of the model's state (`model.stateless_call`, in
    inference mode): the batch is tiled `samples` times and goes through the
    network at once (0 samples: one pass of `x` itself). Noisy when run
    inside `keras_cd.monte_carlo()` (the switch is part of the state).

    Args:
        model: the Keras model, inputs to class probabilities.
        trainable: its trainable variables' values.
        non_trainable: its non-trainable variables' values (seed states).
        x: a batch of inputs, a backend tensor.
        samples: int >= 0.

    Returns:
        `(probabilities, non_trainable)`, the second to assign back to the
        model's non-trainable variables.
    """
    if samples:
        x = ops.tile(x, [samples] + [1] * (len(x.shape) - 1))
    probabilities, non_trainable = model.stateless_call(trainable, non_trainable, x, training=False)
    shape = (max(samples, 1), -1, probabilities.shape[-1])
    return ops.reshape(probabilities, shape), non_trainable


def _mean_probabilities(model, trainable, non_trainable, x, samples):
    """Mean probabilities over `samples` passes of a batch, and the new state (`_passes`)."""
    probabilities, non_trainable = _passes(model, trainable, non_trainable, x, samples)
    return ops.mean(probabilities, axis=0), non_trainable


_COMPILED = weakref.WeakKeyDictionary()  # model -> {key: function}, shared by its Defenses


def _compiled(model, key, make):
    """The function `make` builds for `model`, compiled once per model and `key`.

    Args:
        model: the Keras model the function calls.
        key: hashable, what the function computes (e.g. `("p", samples)`).
        make: `make(model_ref) -> function(trainable, non_trainable, *arrays)
            -> (output, non_trainable)`, a pure function as `Defense._run`
            runs it; `model_ref()` gives the model (a weak reference, so
            the cache does not keep the model alive).

    Returns:
        the function compiled with `keras_cd._backend.compile` (without XLA
        on TensorFlow), shared by every `Defense` of the model.
    """
    functions = _COMPILED.setdefault(model, {})
    if key not in functions:
        functions[key] = _backend.compile(make(weakref.ref(model)), jit=False)
    return functions[key]


@dataclasses.dataclass
class Defense:
    """A classifier as the attacker and the scorer see it: a model and its scoring.

    In the convection-diffusion view the prediction of a noisy network is
    the mean class probability over its noise; a `Defense` scores a model
    that way and gives the attacks the same function to climb:

        p(x) = (1 / S) * sum_{s=1..S} softmax(f(x; xi_s)),    prediction argmax_c p_c(x),

    with S = `samples` passes of the model's own keras_cd noise layers
    (fresh noise xi_s for each pass; S = 0: the deterministic network,
    noise off). With `max_samples`, examples whose margin is too close to 0
    to call get more passes (sequential scoring, `correct`).

    Runs on every Keras backend: the model is called through
    `model.stateless_call`, its non-trainable state (the noise layers' seed
    states) passed in and assigned back after every batch, so consecutive
    noisy passes draw fresh noise also under `jax.jit`. The functions are
    compiled once per model (shared by its `Defense`s) with
    `keras_cd._backend.compile`: TensorFlow, one `tf.function` for every
    batch size; JAX, `jax.jit`, given batches padded to a power of two (8,
    16, 32, ...), so a handful of shapes; PyTorch, eager.

    Reference:
        - [Wang, Bao & Shi, 2024](https://arxiv.org/abs/2403.15726)
        - [Athalye, Carlini & Wagner, 2018 (EOT)](https://arxiv.org/abs/1802.00420)

    Attributes:
        model: a Keras model from inputs to class probabilities.
        samples: int >= 0, Monte-Carlo passes averaged when scoring (0: the
            deterministic network; > 0: passes inside `keras_cd.monte_carlo()`,
            where every keras_cd noise layer of the model draws fresh noise:
            a CD network's diffusion, or a `DiffusionNoise` on the inputs,
            i.e. input smoothing). Defaults to `0`.
        batch_size: int >= 1, examples per forward pass (before the
            samples). Defaults to `256`.
        max_samples: int >= 1 or None, sequential scoring: when larger than
            `samples`, `correct` keeps drawing rounds of passes for the
            examples whose margin p_y - max_{c != y} p_c of the running mean
            is within `SCORING_Z` (3) standard errors of 0, until it is not
            or `max_samples` passes are drawn. The verdict stays the argmax
            of the mean probability; only examples near the decision
            boundary pay for the extra passes, so two scorings agree on
            nearly every example (`rescoring_agreement`). None: a fixed
            `samples`. Defaults to `None`.

    Raises:
        ValueError: if `samples`, `batch_size` or `max_samples` is out of
            range.

    Example:
    >>> import numpy as np, keras, keras_cd
    >>> model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(2, activation="softmax")])
    >>> model.layers[-1].set_weights([np.array([[1.0, -1.0]] * 4), np.array([-2.0, 2.0])])
    >>> defense = keras_cd.robustness.Defense(model)  # class 0 iff the mean pixel > 0.5
    >>> x = np.array([0.6, 0.4]).repeat(4).reshape(2, 2, 2, 1)
    >>> defense.correct(x, [0, 0]).tolist()
    [True, False]
    >>> p = defense.probabilities(x)  # p_0 = sigmoid(2 * sum(x) - 4)
    >>> bool(np.allclose(p[:, 0], 1 / (1 + np.exp(4 - 2 * x.sum(axis=(1, 2, 3))))))
    True
    """

    model: keras.Model
    samples: int = 0
    batch_size: int = 256
    max_samples: int | None = None

    def __post_init__(self) -> None:
        self.samples = _validation.non_negative_int("samples", self.samples, "Use e.g. 16.")
        self.batch_size = _validation.positive_int("batch_size", self.batch_size, "Use e.g. 256.")
        if self.max_samples is not None:
            self.max_samples = _validation.positive_int(
                "max_samples", self.max_samples, "Use e.g. 2048, or None for fixed samples."
            )

    def _function(self, kind, samples):
        """`_run`'s compiled function of a kind.

        The kinds: "p" (mean probabilities), "g" (the input gradient of their
        cross-entropy) or "passes" ((batch, samples, C)).
        """

        def make(model):
            def probabilities(trainable, non_trainable, x):
                return _mean_probabilities(model(), trainable, non_trainable, x, samples)

            def cross_entropy(trainable, non_trainable, x, y):
                p, non_trainable = _mean_probabilities(
                    model(), trainable, non_trainable, x, samples
                )
                return losses.sparse_categorical_crossentropy(y, p), non_trainable

            def every_pass(trainable, non_trainable, x):
                p, non_trainable = _passes(model(), trainable, non_trainable, x, samples)
                return ops.transpose(p, (1, 0, 2)), non_trainable

            functions = {"p": probabilities, "passes": every_pass}
            return _input_gradient(cross_entropy) if kind == "g" else functions[kind]

        return _compiled(self.model, (kind, samples), make)

    def _run(self, function, samples, *arrays, batch_size=None):
        """Runs `function` in batches; inside monte_carlo() when samples > 0.

        `function(trainable, non_trainable, *batches) -> (output, non_trainable)`
        gets the model's current state and each batch of `arrays` (as backend
        tensors); the state it returns is assigned back to the model, so the
        next batch, and the next call, draws new noise. The noise comes from
        the model's own seeded noise layers, so a seeded model called in the
        same order draws the same noise. On JAX, whose `jax.jit` compiles
        once per shape, a batch is padded to a power of two, at least
        `SMALLEST_PADDED` rows (repeating its last row; at most `batch_size`
        rows), and the output cut back.

        Returns:
            the outputs of the batches, concatenated, as one NumPy array.
        """
        from keras_cd.inference import monte_carlo

        batch_size = batch_size or self.batch_size
        model = self.model
        trainable = [variable.value for variable in model.trainable_variables]
        pad = _backend.name() == "jax"
        outputs = []
        with monte_carlo() if samples else contextlib.nullcontext():
            for start in range(0, len(arrays[0]), batch_size):
                parts = [a[start : start + batch_size] for a in arrays]
                count = len(parts[0])
                if pad:
                    size = max(SMALLEST_PADDED, 1 << (count - 1).bit_length())
                    size = min(batch_size, size)
                    parts = [_padded(part, size) for part in parts]
                non_trainable = [variable.value for variable in model.non_trainable_variables]
                tensors = [ops.convert_to_tensor(part) for part in parts]
                output, non_trainable = function(trainable, non_trainable, *tensors)
                for variable, value in zip(model.non_trainable_variables, non_trainable):
                    variable.assign(value)
                outputs.append(_backend.numpy(output)[:count])
        return np.concatenate(outputs)

    def probabilities(self, x: ArrayLike, samples: int | None = None) -> np.ndarray:
        """The mean class probabilities over noisy passes of the model.

        Args:
            x: (N, ...) inputs.
            samples: int >= 0 or None, noisy passes averaged (0: the
                deterministic network, noise off). Defaults to `None`, the
                scoring's `samples`.

        Returns:
            (N, C) NumPy array of mean probabilities.
        """
        samples = self.samples if samples is None else samples
        x = np.asarray(x, "float32")
        return self._run(self._function("p", samples), samples, x)

    def gradient(self, x: ArrayLike, y: ArrayLike, samples: int) -> np.ndarray:
        """The input gradient of the cross-entropy of the mean probability (EOT).

        The gradient of -log p_y(x), p the mean probability over `samples`
        noisy passes, with respect to `x`, one per example.

        Args:
            x: (N, ...) inputs.
            y: (N,) integer labels.
            samples: int >= 0, noisy passes averaged (0: the deterministic
                network, noise off).

        Returns:
            (N, ...) NumPy array, the gradient for each example.
        """
        x = np.asarray(x, "float32")
        return self._run(self._function("g", samples), samples, x, np.asarray(y))

    def correct(self, x: ArrayLike, y: ArrayLike) -> np.ndarray:
        """Whether the defense's scored prediction is right, per example.

        The prediction is the argmax of the mean probability over `samples`
        passes; with `max_samples`, over more passes for examples near the
        decision boundary.

        Args:
            x: (N, ...) inputs.
            y: (N,) integer labels.

        Returns:
            (N,) bool NumPy array.
        """
        y = np.asarray(y)
        sequential = self.samples and self.max_samples and self.max_samples > self.samples
        if not sequential or not len(y):
            return np.argmax(self.probabilities(x), axis=-1) == y
        return np.argmax(self._sequential_mean(np.asarray(x, "float32"), y), axis=-1) == y

    def _sequential_mean(self, x, y):
        """Mean probabilities, drawn in rounds while an example's margin is near 0.

        Rounds go on while the margin is within SCORING_Z standard errors of
        0: `samples` passes, then rounds that double the passes drawn, up to
        `max_samples`; a round's passes go through the network in chunks of
        about PASS_CHUNK images.
        """
        total = drawn = squares = None
        pending = np.arange(len(x))
        size = self.samples
        while pending.size and size > 0:
            function = self._function("passes", size)
            batch = max(1, min(self.batch_size, PASS_CHUNK // size))
            passes = self._run(function, size, x[pending], batch_size=batch)  # (m, size, C)
            if total is None:
                total = np.zeros((len(x), passes.shape[-1]))
                squares, drawn = np.zeros_like(total), np.zeros(len(x))
            rows = np.arange(len(pending))
            true = passes[rows, :, y[pending]]  # (m, size)
            total[pending] += passes.sum(axis=1)
            squares[pending] += ((true[:, :, None] - passes) ** 2).sum(axis=1)
            drawn[pending] += passes.shape[1]
            mean = total[pending] / drawn[pending, None]
            gaps = mean[rows, y[pending]][:, None] - mean  # margin against each class
            gaps[rows, y[pending]] = np.inf
            rival = np.argmin(gaps, axis=1)
            margin = gaps[rows, rival]
            variance = squares[pending, rival] / drawn[pending] - margin**2
            error = np.sqrt(np.maximum(variance, 0) / drawn[pending])
            pending = pending[np.abs(margin) <= SCORING_Z * error]
            done = int(drawn[pending[0]]) if pending.size else 0  # the same for all pending
            size = min(done, self.max_samples - done)  # double what is drawn, within the cap
        return total / drawn[:, None]


def _step_sizes(eps, steps, schedule):
    if schedule == "constant":
        return np.full(steps, eps / 4)
    return eps / 2 * 0.5 * (1 + np.cos(np.pi * np.arange(steps) / steps))


def check_clip(clip: Sequence[float], x: ArrayLike) -> tuple[float, float]:
    """Returns `clip` as floats `(low, high)` after checking `x` lies inside it.

    The attacks keep their adversarials in the box `[low, high]` the inputs
    live in (e.g. pixels in [0, 1]) and refuse inputs outside it.

    Args:
        clip: pair of numbers `(low, high)`, low < high: the box the inputs
            (pixels) live in.
        x: array of inputs.

    Returns:
        `(low, high)` as floats.

    Raises:
        ValueError: if `clip` is not such a pair, or if a value of `x` lies
            outside `[low, high]` (or is not a number): an attack that
            clipped such inputs into the box would move them by more than
            eps before it started.

    Example:
    >>> import numpy as np, keras_cd
    >>> keras_cd.robustness.check_clip((0, 1), np.array([0.0, 0.5, 1.0]))
    (0.0, 1.0)
    >>> keras_cd.robustness.check_clip((0, 1), np.array([1.5]))
    Traceback (most recent call last):
    ...
    ValueError: Invalid value for `x`: expected inputs inside the clip range [0, 1]. ...
    """
    fix = "Use e.g. clip=(0.0, 1.0), the range of the pixels."
    try:
        low, high = (float(value) for value in clip)
    except (TypeError, ValueError):
        _validation.invalid("clip", "a pair (low, high) of numbers", clip, fix)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        _validation.invalid("clip", "a pair (low, high) of finite numbers, low < high", clip, fix)
    x = np.asarray(x)
    if not np.all((x >= low) & (x <= high)):
        raise ValueError(
            f"Invalid value for `x`: expected inputs inside the clip range "
            f"[{low:g}, {high:g}]. Received: x with values in "
            f"[{np.nanmin(x):g}, {np.nanmax(x):g}]"
            f"{' and NaN' if np.isnan(x).any() else ''}. Scale the inputs into "
            f"[{low:g}, {high:g}] (as the model was trained), or pass "
            f"clip=(low, high) with the range they live in."
        )
    return low, high


@renamed_keyword("keras_cd.robustness.pgd")
def pgd(
    defense: Defense,
    x: ArrayLike,
    y: ArrayLike,
    eps: float,
    steps: int = 10,
    eot_samples: int = 0,
    restarts: int = 1,
    schedule: str = "constant",
    seed: int = 0,
    clip: Sequence[float] = (0.0, 1.0),
) -> np.ndarray:
    """L-infinity PGD on the cross-entropy of the defense's mean probability.

    Projected gradient ascent (Madry et al., 2018) on the loss
    L(x) = -log p_y(x) of the mean probability p of `defense`:

        x_{k+1} = clip_{[x - eps, x + eps] and [low, high]}(x_k + alpha_k * sign(grad L(x_k))),

    with the gradient averaged over `eot_samples` passes of the defense's
    noise (EOT; 0 for a deterministic network) and step sizes alpha_k
    eps / 4 (`"constant"`) or eps / 4 * (1 + cos(pi k / steps))
    (`"cosine"`). Each restart starts uniformly in the eps-ball. For each
    example the adversarial of the first restart that the defense's
    scoring gets wrong is kept (else the last).

    Reference:
        - [Madry et al., 2018](https://arxiv.org/abs/1706.06083)

    Args:
        defense: `Defense`, the attacked model and its scoring.
        x: (N, ...) inputs, inside `clip`.
        y: (N,) integer labels.
        eps: float >= 0, the L-infinity radius.
        steps: int >= 1, gradient steps per restart. Defaults to `10`.
        eot_samples: int >= 0, noisy passes per gradient. Defaults to `0`.
        restarts: int >= 1. Defaults to `1`.
        schedule: `"constant"` or `"cosine"` step sizes. Defaults to
            `"constant"`.
        seed: int, seed of the random starts. Defaults to `0`.
        clip: `(low, high)`, the box of valid inputs. Defaults to
            `(0.0, 1.0)`.

    Returns:
        (N, ...) float32 adversarial inputs.

    Raises:
        ValueError: for an invalid argument, or `x` outside `clip`.

    Example:
    A linear classifier, class 0 iff the mean pixel > 0.5: an image of 0.6
    everywhere is broken by eps = 0.2 (every pixel to 0.4), not by eps = 0.05.

    >>> import numpy as np, keras, keras_cd
    >>> model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(2, activation="softmax")])
    >>> model.layers[-1].set_weights([np.array([[1.0, -1.0]] * 4), np.array([-2.0, 2.0])])
    >>> defense = keras_cd.robustness.Defense(model)
    >>> x, y = np.full((1, 2, 2, 1), 0.6, "float32"), np.array([0])
    >>> adversarial = keras_cd.robustness.pgd(defense, x, y, eps=0.2, steps=3)
    >>> defense.correct(adversarial, y).tolist(), bool(np.abs(adversarial - x).max() <= 0.2 + 1e-6)
    ([False], True)
    >>> defense.correct(keras_cd.robustness.pgd(defense, x, y, eps=0.05, steps=3), y).tolist()
    [True]
    """
    eps = _validation.non_negative_float("eps", eps, "Use e.g. 0.05 (pixels in [0, 1]).")
    steps = _validation.positive_int("steps", steps, "Use e.g. 10.")
    restarts = _validation.positive_int("restarts", restarts, "Use e.g. 1 or 5.")
    _validation.one_of("schedule", schedule, SCHEDULES, "Use 'constant' or 'cosine'.")
    x, y = np.asarray(x, "float32"), np.asarray(y)
    low, high = check_clip(clip, x)
    rng = np.random.default_rng(seed)
    best = x.copy()
    broken = np.zeros(len(x), bool)
    for _ in range(restarts):
        adversarial = np.clip(x + rng.uniform(-eps, eps, x.shape), low, high).astype("float32")
        for size in _step_sizes(eps, steps, schedule):
            gradient = defense.gradient(adversarial, y, eot_samples)
            adversarial = np.clip(adversarial + size * np.sign(gradient), x - eps, x + eps)
            adversarial = np.clip(adversarial, low, high).astype("float32")
        fooled = ~defense.correct(adversarial, y)
        take = ~broken
        best[take] = adversarial[take]
        broken |= fooled
    return best


def _margins(defense, x, y, samples):
    """p_y - max_{c != y} p_c of the mean probabilities: < 0 means misclassified."""
    probabilities = defense.probabilities(x, samples)
    true = probabilities[np.arange(len(y)), y]
    probabilities[np.arange(len(y)), y] = -np.inf
    return true - probabilities.max(axis=1)


# Andriushchenko et al.'s schedule on 10,000 iterations: the square's
# fraction of the image halves after each of these iterations.
SQUARE_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
MAX_REDRAWS = 100  # Square's retry of a window that changes nothing


def square_fraction(query: int, queries: int, p_init: float = 0.3) -> float:
    """The fraction of the pixels that Square Attack's square covers at a query.

    Andriushchenko et al.'s (2020) piecewise-constant schedule, written for
    10,000 iterations and rescaled to the budget as they do: iteration
    `query` of `queries` is read as iteration `int(query / queries * 10000)`,
    and the fraction `p_init` halves after iterations 10, 50, 200, 500,
    1000, 2000, 4000, 6000 and 8000 (nine halvings, the first after 0.1% of
    the budget).

    Args:
        query: int in [0, queries), the iteration.
        queries: int >= 1, the budget.
        p_init: float in (0, 1], the initial fraction. Defaults to `0.3`.

    Returns:
        float, `p_init / 2**k` for the k halvings passed.

    Raises:
        ValueError: if `query`, `queries` or `p_init` is out of range.

    Example:
    >>> import keras_cd
    >>> [keras_cd.robustness.square_fraction(q, 10000, 0.4) for q in (10, 11, 51, 8001)]
    [0.4, 0.2, 0.1, 0.00078125]
    """
    queries = _validation.positive_int("queries", queries, "Use e.g. 300.")
    query = _validation.integer(
        "query", query, f"Use 0 <= query < queries={queries}.", 0, f"an integer in [0, {queries})"
    )
    if query >= queries:
        _validation.invalid(
            "query", f"an integer in [0, {queries})", query, "Use 0 <= query < queries."
        )
    p_init = _validation.number("p_init", p_init, "Use e.g. 0.3.", low=0, high=1, low_open=True)
    scaled = int(query / queries * 10000)
    return p_init / 2 ** sum(scaled > halving for halving in SQUARE_HALVINGS)


def _square_window(x_window, current, eps, channels, rng, low, high):
    """x_window + (random sign per channel) * eps, in the box, redrawn while unchanged.

    Redrawn while it equals the current window (the reference's retry: a
    query that changes nothing is wasted). Two sign patterns never give the
    same window when eps is representable, so the retry ends; MAX_REDRAWS
    bounds it when not.
    """
    for _ in range(MAX_REDRAWS):
        signs = rng.choice([-eps, eps], size=(1, 1, channels))
        window = np.clip(x_window + signs, low, high).astype("float32")
        if np.any(np.abs(window - current) >= 1e-7):
            break
    return window


@renamed_keyword("keras_cd.robustness.square")
def square(
    defense: Defense,
    x: ArrayLike,
    y: ArrayLike,
    eps: float,
    queries: int = 300,
    query_samples: int | None = None,
    p_init: float = 0.3,
    seed: int = 0,
    clip: Sequence[float] = (0.0, 1.0),
) -> np.ndarray:
    """Square Attack (L-infinity; Andriushchenko et al., 2020): gradient-free.

    A random search that lowers the margin

        m(x) = p_y(x) - max_{c != y} p_c(x)

    of the defense's mean probability p, reading scores only: a defense
    whose gradients are masked (noisy, flat or wrong) is exposed by it, not
    by PGD. Starts from x + eps * (random sign per vertical stripe), which is the
    first query; then, `queries - 1` times, sets one random square window of
    each image (covering the fraction `square_fraction(query, queries,
    p_init)` of the pixels) to x + eps * (random sign per channel), redrawn
    while the window would not change, and keeps the change where the
    margin (over `query_samples` passes, by default the scoring's) fell.
    Images whose margin is already negative are left alone.

    Reference:
        - [Andriushchenko et al., 2020](https://arxiv.org/abs/1912.00049)

    Args:
        defense: `Defense`, the attacked model and its scoring.
        x: (N, H, W, C) images, inside `clip`.
        y: (N,) integer labels.
        eps: float >= 0, the L-infinity radius.
        queries: int >= 1, margin evaluations per image. Defaults to `300`.
        query_samples: int >= 0 or None, noisy passes per margin (None:
            the defense's scoring samples). Defaults to `None`.
        p_init: float in (0, 1], the square's initial fraction. Defaults to
            `0.3`.
        seed: int, seed of the random search. Defaults to `0`.
        clip: `(low, high)`, the box of valid inputs. Defaults to
            `(0.0, 1.0)`.

    Returns:
        (N, H, W, C) float32 adversarial inputs.

    Raises:
        ValueError: for an invalid argument, `x` not a batch of images, or
            `x` outside `clip`.

    Example:
    The linear classifier of `pgd`'s example (class 0 iff the mean pixel >
    0.5), attacked without gradients:

    >>> import numpy as np, keras, keras_cd
    >>> model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(2, activation="softmax")])
    >>> model.layers[-1].set_weights([np.array([[1.0, -1.0]] * 4), np.array([-2.0, 2.0])])
    >>> defense = keras_cd.robustness.Defense(model)
    >>> x, y = np.full((1, 2, 2, 1), 0.6, "float32"), np.array([0])
    >>> adversarial = keras_cd.robustness.square(defense, x, y, eps=0.25, queries=20)
    >>> defense.correct(adversarial, y).tolist(), bool(np.abs(adversarial - x).max() <= 0.25 + 1e-6)
    ([False], True)
    """
    eps = _validation.non_negative_float("eps", eps, "Use e.g. 0.05.")
    queries = _validation.positive_int("queries", queries, "Use e.g. 300.")
    x, y = np.asarray(x, "float32"), np.asarray(y)
    if x.ndim != 4:
        raise ValueError(
            f"Invalid value for `x`: expected images (N, H, W, C). Received: shape {x.shape}. "
            "Add the channel axis, e.g. x[..., None]."
        )
    low, high = check_clip(clip, x)
    if not eps:
        return x.copy()
    samples = defense.samples if query_samples is None else query_samples
    rng = np.random.default_rng(seed)
    count, height, width, channels = x.shape
    stripes = rng.choice([-eps, eps], size=(count, 1, width, channels))
    adversarial = np.clip(x + stripes, low, high).astype("float32")
    margins = _margins(defense, adversarial, y, samples)
    for query in range(1, queries):
        active = np.flatnonzero(margins >= 0)  # a tie (margin 0) is not yet broken
        if not active.size:
            break
        fraction = square_fraction(query, queries, p_init)
        side = int(np.clip(round(np.sqrt(fraction * height * width)), 1, min(height, width) - 1))
        rows = rng.integers(0, height - side + 1, active.size)
        cols = rng.integers(0, width - side + 1, active.size)
        candidate = adversarial[active].copy()
        for k, (r, c) in enumerate(zip(rows, cols)):
            window = np.s_[r : r + side, c : c + side]
            candidate[k][window] = _square_window(
                x[active[k]][window], candidate[k][window], eps, channels, rng, low, high
            )
        new = _margins(defense, candidate, y[active], samples)
        better = new < margins[active]
        adversarial[active[better]] = candidate[better]
        margins[active[better]] = new[better]
    return adversarial


@renamed_keyword("keras_cd.robustness.robust_accuracy")
def robust_accuracy(defense: Defense, y: ArrayLike, adversarial: ArrayLike) -> float:
    """The share of examples the defense (with its scoring) gets right on `adversarial`.

    Args:
        defense: `Defense`, the model and its scoring.
        y: (N,) integer labels.
        adversarial: (N, ...) inputs, e.g. what `pgd` or `square` returned.

    Returns:
        float in [0, 1], the mean of `defense.correct(adversarial, y)`.

    Example:
    >>> import numpy as np, keras, keras_cd
    >>> model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(2, activation="softmax")])
    >>> model.layers[-1].set_weights([np.array([[1.0, -1.0]] * 4), np.array([-2.0, 2.0])])
    >>> defense = keras_cd.robustness.Defense(model)  # class 0 iff the mean pixel > 0.5
    >>> x = np.array([0.6, 0.4, 0.9, 0.1]).repeat(4).reshape(4, 2, 2, 1)
    >>> keras_cd.robustness.robust_accuracy(defense, np.zeros(4, int), x)
    0.5
    """
    return float(np.mean(defense.correct(adversarial, y)))


@renamed_keyword("keras_cd.robustness.rescoring_agreement")
def rescoring_agreement(defense: Defense, x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, float]:
    """Scores `x` twice, with fresh noise, and measures how often the two agree.

    A stochastic defense's verdict on one example is a Monte-Carlo estimate;
    counting single examples (an example is robust only if no attack of a
    set breaks it) needs a scoring repeatable on nearly every example. The
    second scoring draws new noise (the model's noise layers move on).

    Args:
        defense: `Defense`, the model and its scoring.
        x: (N, ...) inputs (e.g. adversarials).
        y: (N,) integer labels.

    Returns:
        `(correct, agreement)`: the first scoring's (N,) bool verdicts and the
        share of examples on which the second scoring gives the same verdict
        (1.0 for a deterministic defense).

    Example:
    >>> import numpy as np, keras, keras_cd
    >>> model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(2, activation="softmax")])
    >>> model.layers[-1].set_weights([np.array([[1.0, -1.0]] * 4), np.array([-2.0, 2.0])])
    >>> defense = keras_cd.robustness.Defense(model)  # deterministic: always repeatable
    >>> x = np.array([0.6, 0.4]).repeat(4).reshape(2, 2, 2, 1)
    >>> correct, agreement = keras_cd.robustness.rescoring_agreement(defense, x, [0, 0])
    >>> correct.tolist(), agreement
    ([True, False], 1.0)
    """
    first = defense.correct(x, y)
    second = defense.correct(x, y)
    return first, float(np.mean(first == second))


# The deprecated spelling, removed in keras_cd 0.3.
__getattr__ = deprecated_aliases(__name__, {"Defence": "Defense"}, globals())
