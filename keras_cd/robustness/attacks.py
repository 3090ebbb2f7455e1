"""L-infinity attacks on (possibly stochastic) classifiers, and how they are scored.

A stochastic defence (a CD network with Monte-Carlo inference, or any
model scored through input smoothing) must be attacked through what it
returns: the mean class probability over its noise. The attacks here
estimate that mean with `eot_samples` noisy passes per step (expectation
over transformation, EOT; Athalye et al., 2018) and the defence is scored
with its own `samples`; an attack with fewer EOT samples than the scoring
leaves gradient noise that a stronger attacker averages away.

- `pgd`: projected gradient ascent on the cross-entropy of the mean
  probability, random start, `restarts` (an example counts as broken if any
  restart breaks it), step-size schedules `"constant"` (eps / 4) or
  `"cosine"` (from eps / 2 down to 0).
- `square`: Andriushchenko et al.'s (2020) Square Attack, score-based
  random search on the margin of the mean probabilities, no gradients: it
  exposes a defence whose gradients are masked (noisy, flat or wrong).
- `transfer`: PGD adversarials crafted on another (e.g. the plain) network.

`Defence` wraps a model and its scoring; `robust_accuracy` runs an attack
and scores it. TensorFlow backend (gradients with respect to the inputs).
"""

import dataclasses

import numpy as np

from keras_cd import _validation

SCHEDULES = ("constant", "cosine")


@dataclasses.dataclass
class Defence:
    """A classifier as the attacker and the scorer see it.

    Args:
        model: a Keras model from inputs to class probabilities.
        samples: int >= 0, Monte-Carlo passes averaged when scoring (0: the
            deterministic network; > 0: passes inside `keras_cd.monte_carlo()`,
            where every keras_cd noise layer of the model draws fresh noise:
            a CD network's diffusion, or a `DiffusionNoise` on the inputs,
            i.e. input smoothing).
        batch_size: int, examples per forward pass (before the samples).
    """

    model: object
    samples: int = 0
    batch_size: int = 256

    def __post_init__(self):
        self.samples = _validation.non_negative_int("samples", self.samples, "Use e.g. 16.")
        self.batch_size = _validation.positive_int("batch_size", self.batch_size, "Use e.g. 256.")
        self._functions = {}

    def _mean_probabilities(self, x, samples):
        """Mean softmax over `samples` noisy passes of a batch (a tf tensor)."""
        import tensorflow as tf

        if not samples:
            return self.model(x, training=False)
        batch = tf.shape(x)[0]
        tiled = tf.tile(x, [samples] + [1] * (len(x.shape) - 1))
        probabilities = self.model(tiled, training=False)
        return tf.reduce_mean(tf.reshape(probabilities, [samples, batch, -1]), axis=0)

    def _function(self, kind, samples):
        key = (kind, samples)
        if key not in self._functions:
            import tensorflow as tf

            def probabilities(x):
                return self._mean_probabilities(x, samples)

            def gradient(x, y):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    p = self._mean_probabilities(x, samples)
                    loss = tf.keras.losses.sparse_categorical_crossentropy(y, p)
                return tape.gradient(loss, x)

            self._functions[key] = tf.function(probabilities if kind == "p" else gradient)
        return self._functions[key]

    def _run(self, function, samples, *arrays):
        """Runs `function` in batches; inside monte_carlo() when samples > 0.

        The noise comes from the model's own seeded noise layers, so a
        seeded model called in the same order draws the same noise."""
        import contextlib

        from keras_cd.inference import monte_carlo

        outputs = []
        with monte_carlo() if samples else contextlib.nullcontext():
            for start in range(0, len(arrays[0]), self.batch_size):
                parts = [a[start : start + self.batch_size] for a in arrays]
                outputs.append(np.asarray(function(*parts)))
        return np.concatenate(outputs)

    def probabilities(self, x, samples=None):
        """(N, C) mean class probabilities over `samples` noisy passes (by default
        the scoring's; 0: the deterministic network, noise off)."""
        samples = self.samples if samples is None else samples
        x = np.asarray(x, "float32")
        return self._run(self._function("p", samples), samples, x)

    def gradient(self, x, y, samples):
        """Gradient of the cross-entropy of the mean probability over `samples`
        noisy passes (EOT); 0: of the deterministic network, noise off."""
        x = np.asarray(x, "float32")
        return self._run(self._function("g", samples), samples, x, np.asarray(y))

    def correct(self, x, y):
        """Whether the defence's scored prediction is right, per example."""
        return np.argmax(self.probabilities(x), axis=-1) == np.asarray(y)


def _step_sizes(eps, steps, schedule):
    if schedule == "constant":
        return np.full(steps, eps / 4)
    return eps / 2 * 0.5 * (1 + np.cos(np.pi * np.arange(steps) / steps))


def pgd(defence, x, y, eps, steps=10, eot_samples=0, restarts=1, schedule="constant", seed=0):
    """L-infinity PGD on the cross-entropy of the defence's mean probability.

    Each restart starts uniformly in the eps-ball, takes `steps` signed
    gradient steps (gradient from `eot_samples` passes of the defence's
    noise, 0 for a deterministic network) and projects back onto the ball
    and [0, 1]. For each example the adversarial of the first restart that
    the defence's scoring gets wrong is kept (else the last).

    Returns:
        (N, ...) float32 adversarial inputs.
    """
    eps = _validation.non_negative_float("eps", eps, "Use e.g. 0.05 (pixels in [0, 1]).")
    steps = _validation.positive_int("steps", steps, "Use e.g. 10.")
    restarts = _validation.positive_int("restarts", restarts, "Use e.g. 1 or 5.")
    _validation.one_of("schedule", schedule, SCHEDULES, "Use 'constant' or 'cosine'.")
    x, y = np.asarray(x, "float32"), np.asarray(y)
    rng = np.random.default_rng(seed)
    best = x.copy()
    broken = np.zeros(len(x), bool)
    for _ in range(restarts):
        adversarial = np.clip(x + rng.uniform(-eps, eps, x.shape), 0, 1).astype("float32")
        for size in _step_sizes(eps, steps, schedule):
            gradient = defence.gradient(adversarial, y, eot_samples)
            adversarial = np.clip(adversarial + size * np.sign(gradient), x - eps, x + eps)
            adversarial = np.clip(adversarial, 0, 1).astype("float32")
        fooled = ~defence.correct(adversarial, y)
        take = ~broken
        best[take] = adversarial[take]
        broken |= fooled
    return best


def _margins(defence, x, y, samples):
    """p_y - max_{c != y} p_c of the mean probabilities: < 0 means misclassified."""
    probabilities = defence.probabilities(x, samples)
    true = probabilities[np.arange(len(y)), y]
    probabilities[np.arange(len(y)), y] = -np.inf
    return true - probabilities.max(axis=1)


def square(defence, x, y, eps, queries=300, query_samples=None, p_init=0.3, seed=0):
    """Square Attack (L-infinity; Andriushchenko et al., 2020): gradient-free.

    Starts from x + eps * (random sign per vertical stripe), then, `queries`
    times, changes one random square window of each image (side from the
    fraction `p_init` of the pixels, shrinking over the queries) to +-eps
    around x and keeps the change where the margin of the mean probability
    (over `query_samples` passes, by default the scoring's) fell. Images the
    defence already gets wrong are left alone.

    Returns:
        (N, H, W, C) float32 adversarial inputs.
    """
    eps = _validation.non_negative_float("eps", eps, "Use e.g. 0.05.")
    queries = _validation.positive_int("queries", queries, "Use e.g. 300.")
    x, y = np.asarray(x, "float32"), np.asarray(y)
    if x.ndim != 4:
        raise ValueError(
            f"Invalid value for `x`: expected images (N, H, W, C). Received: shape {x.shape}."
        )
    samples = defence.samples if query_samples is None else query_samples
    rng = np.random.default_rng(seed)
    count, height, width, channels = x.shape
    stripes = rng.choice([-eps, eps], size=(count, 1, width, channels))
    adversarial = np.clip(x + stripes, 0, 1).astype("float32")
    margins = _margins(defence, adversarial, y, samples)
    for query in range(queries):
        active = np.flatnonzero(margins > 0)
        if not active.size:
            break
        fraction = p_init * 0.5 ** int(np.log2(1 + 10 * query / queries))  # halves over time
        side = int(np.clip(round(np.sqrt(fraction * height * width)), 1, min(height, width) - 1))
        rows = rng.integers(0, height - side + 1, active.size)
        cols = rng.integers(0, width - side + 1, active.size)
        candidate = adversarial[active].copy()
        signs = rng.choice([-eps, eps], size=(active.size, 1, 1, channels))
        for k, (r, c) in enumerate(zip(rows, cols)):
            window = x[active[k], r : r + side, c : c + side] + signs[k]
            candidate[k, r : r + side, c : c + side] = window
        candidate = np.clip(np.clip(candidate, x[active] - eps, x[active] + eps), 0, 1)
        new = _margins(defence, candidate, y[active], samples)
        better = new < margins[active]
        adversarial[active[better]] = candidate[better]
        margins[active[better]] = new[better]
    return adversarial


def robust_accuracy(defence, y, adversarial):
    """Share of examples the defence (with its scoring) gets right on `adversarial`."""
    return float(np.mean(defence.correct(adversarial, y)))
