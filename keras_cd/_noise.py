"""The one owner of "is diffusion noise on, and which eps".

Every `keras_cd.DiffusionNoise` call asks `perturb` one question and gets
`inputs + scale * eps` or `inputs` back. The answer depends on, in order:

1. an explicit noise feed (`feed_noise`, used to export Monte-Carlo
   inference with the noise as a model input): eps is read from the feed;
2. `noise_free()` (used while an export traces the model): no noise, and no
   random op in the graph;
3. `training=True`, or the call argument `monte_carlo=True` (input
   smoothing): eps is drawn, always;
4. otherwise the layer's Monte-Carlo switch, read AT RUN TIME: eps is drawn
   while `keras_cd.monte_carlo()` is active, else the layer is the identity.

The switch of 4 is a tiny state variable per layer. It is kept in a
`keras.random.SeedGenerator` (state [on, 0]) because Keras treats seed
states as layer state that is not a weight: they are passed to compiled
functions as inputs (JAX's stateless `predict` and `model.stateless_call`
included), read at run time by `tf.function`, and left out of
`get_weights()` and of saved `.keras` / `.weights.h5` files. So a function
compiled before `monte_carlo()` was entered follows the switch without being
traced again.
"""

import contextlib
import threading
import weakref

import keras
from keras import ops

from keras_cd import _random

_lock = threading.Lock()
_switches = weakref.WeakSet()  # every live layer's switch
_depth = 0  # nesting of monte_carlo() blocks; a module global, not a thread-local:
# MirroredStrategy runs each replica's function in a thread of its own.
_feed = None
_noise_free = 0

SWITCH_NAME = "monte_carlo_switch"


class MonteCarloSwitch(keras.random.SeedGenerator):
    """A layer's Monte-Carlo switch: state [1, 0] while on, [0, 0] while off."""

    def __init__(self, **kwargs):
        super().__init__(seed=1 if _depth else 0, name=SWITCH_NAME, **kwargs)
        with _lock:
            _switches.add(self)

    def next(self, ordered=True):  # never a seed source
        """Refuses: a switch holds a flag, not random seeds."""
        raise TypeError("A MonteCarloSwitch holds a flag, not random seeds.")

    def is_on(self):
        """Returns a boolean tensor, True while the switch is on (read at run time)."""
        return self.state[0] > 0

    def set(self, on):
        """Turns the switch on (`on=True`) or off."""
        self.state.assign(ops.convert_to_tensor([1 if on else 0, 0], dtype=self.state.dtype))


def is_switch(variable):
    """Whether a model variable is a Monte-Carlo switch (not a random seed state)."""
    with _lock:
        return any(variable is switch.state for switch in _switches)


def random_seed_states(model):
    """The model's random seed-generator states (noise, dropout), without the switches."""
    return [
        v for v in model.variables if v.path.endswith("seed_generator_state") and not is_switch(v)
    ]


def monte_carlo_enabled():
    """Returns whether a `keras_cd.monte_carlo()` block is active."""
    return _depth > 0


@contextlib.contextmanager
def monte_carlo():
    """Turns every diffusion layer's switch on for the block (see `keras_cd.monte_carlo`)."""
    global _depth
    with _lock:
        _depth += 1
        switches = list(_switches)
    if _depth == 1:
        for switch in switches:
            switch.set(True)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            switches = list(_switches)
        if _depth == 0:
            for switch in switches:
                switch.set(False)


class NoiseFeed:
    """Hands out slices of one explicit noise tensor to the diffusion layers.

    Used to export Monte-Carlo inference: ONNX and SavedModel graphs stay
    free of random ops, and the server passes standard normal noise of shape
    `(batch, width)` as an input. Each `DiffusionNoise` call takes the next
    `prod(shape[1:])` columns, in call order. With `noise=None` it only counts
    the width needed.
    """

    def __init__(self, noise=None):
        self.noise = noise
        self.width = 0

    def take(self, shape, dtype):
        """Returns the next `prod(shape[1:])` columns as eps of `shape`, or None when counting.

        Raises:
            ValueError: if a feature dimension of `shape` is unknown.
        """
        if any(size is None for size in shape[1:]):
            raise ValueError(
                "Invalid model for an explicit noise input: every diffusion "
                "layer needs a static feature shape. Received: a noise shape "
                f"{tuple(shape)}. Build the model with fixed input sizes, "
                "e.g. keras.Input((32, 32, 3))."
            )
        size = 1
        for dim in shape[1:]:
            size *= int(dim)
        start, self.width = self.width, self.width + size
        if self.noise is None:  # counting pass
            return None
        chunk = self.noise[:, start : self.width]
        return ops.cast(ops.reshape(chunk, (-1,) + tuple(int(d) for d in shape[1:])), dtype)


@contextlib.contextmanager
def feed_noise(feed):
    """Makes every diffusion layer read its eps from `feed` (a NoiseFeed)."""
    global _feed
    previous, _feed = _feed, feed
    try:
        yield feed
    finally:
        _feed = previous


@contextlib.contextmanager
def noise_free():
    """No diffusion noise, and no random op, in what is traced inside the block."""
    global _noise_free
    _noise_free += 1
    try:
        yield
    finally:
        _noise_free -= 1


def perturb(inputs, scale, seed_generator, switch, training=None, monte_carlo=None):
    """`inputs + scale(inputs) * eps` when this call should be noisy, else `inputs`.

    `scale` is a function of the inputs giving the noise's standard deviation
    (a number or a tensor that broadcasts); it is only evaluated when noise is
    added. `seed_generator` draws eps; `switch` is the layer's
    `MonteCarloSwitch`.
    """
    dtype = inputs.dtype
    if _feed is not None:
        eps = _feed.take(inputs.shape, dtype)
        if eps is None:  # the feed is only counting the noise width
            return inputs
        return inputs + ops.cast(scale(inputs), dtype) * eps

    def noisy(seed):
        eps = _random.gaussian_like(inputs, 1.0, seed)
        return inputs + ops.cast(scale(inputs) * eps, dtype)

    if _noise_free:
        return inputs
    if training or monte_carlo:
        return noisy(seed_generator)
    if keras.backend.backend() == "torch":  # eager: the switch is read right here
        return noisy(seed_generator) if bool(switch.is_on()) else inputs
    if _eager_jax(inputs, switch):  # a fresh `lax.cond` would compile on every call
        return noisy(seed_generator) if bool(switch.is_on()) else inputs
    # Compiled (tf.function, XLA, jax.jit): the switch is read when the function
    # runs. The seed is drawn outside the branch, so that JAX's state handling
    # never sees a state update inside a traced branch.
    seed = seed_generator.next()
    return ops.cond(switch.is_on(), lambda: noisy(seed), lambda: inputs)


def _eager_jax(inputs, switch):
    """Whether this is an eager (untraced) call on JAX, where the switch can be read now."""
    if keras.backend.backend() != "jax":
        return False
    import jax

    return not isinstance(inputs, jax.core.Tracer) and not isinstance(
        switch.state.value, jax.core.Tracer
    )
