"""tf.distribute strategies for Keras 3 training (TensorFlow backend only).

`make_strategy` picks and builds a strategy by name; it applies
`patch_multi_worker_reduce`, the workaround that Keras 3's `fit` needs under
MultiWorkerMirroredStrategy
([keras-team/keras#20585](https://github.com/keras-team/keras/issues/20585)).
`is_chief` tells the one process of a cluster that should write files.
On JAX and PyTorch, use `keras.distribution` instead.

Under a synchronous strategy every replica of a convection-diffusion network
draws its own diffusion noise eps (see `keras_cd.layers.DiffusionNoise`), so
the replicas together sample as many independent Brownian paths of
dX = v(X, t) dt + sigma dW as one device would over the global batch.
`STRATEGIES` lists the names `make_strategy` accepts.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import contextlib

    import tensorflow as tf

# The names `make_strategy` accepts.
STRATEGIES = ("auto", "mirrored", "multiworker", "tpu", "one_device", "default")


def _require_tensorflow(what):
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"{what} needs the TensorFlow backend (tf.distribute); the Keras backend is "
            f"{keras.backend.backend()!r}. Set KERAS_BACKEND=tensorflow, or use "
            "keras.distribution (e.g. keras.distribution.DataParallel) on JAX."
        )
    import tensorflow as tf

    return tf


class SingleDevice:
    """What `make_strategy("auto")` gives on a backend without tf.distribute.

    One process and Keras' own device placement: it has the parts of a
    `tf.distribute.Strategy` that training scripts read, a `scope()` that does
    nothing, `num_replicas_in_sync = 1` and no `cluster_resolver` (so
    `is_chief` is True).

    Example:
        >>> import keras_cd
        >>> device = keras_cd.distribute.SingleDevice()
        >>> with device.scope():
        ...     device.num_replicas_in_sync, keras_cd.distribute.is_chief(device)
        (1, True)
    """

    num_replicas_in_sync = 1
    cluster_resolver = None

    def scope(self) -> contextlib.nullcontext[None]:
        """Returns a context manager that does nothing."""
        import contextlib

        return contextlib.nullcontext()


def make_strategy(
    name: str = "auto", cpu_replicas: int = 1, tpu: str | None = None
) -> tf.distribute.Strategy | SingleDevice:
    """Returns a tf.distribute strategy by name.

    On JAX or PyTorch, `"auto"` and `"default"` give a `SingleDevice` (use
    `keras.distribution` for data parallelism there); the other names need
    TensorFlow and raise a RuntimeError that says so.

    Call it before anything else touches TensorFlow's devices (logical CPU
    devices and collectives can only be configured at start-up).

    Args:
        name: `"auto"` (MirroredStrategy over the visible GPUs, or over the
            logical CPUs when `cpu_replicas > 1`, else OneDeviceStrategy on
            the one GPU, else the default strategy), `"mirrored"`,
            `"multiworker"` (needs `TF_CONFIG`; returned patched by
            `patch_multi_worker_reduce`), `"tpu"`, `"one_device"` or
            `"default"`. Defaults to `"auto"`.
        cpu_replicas: int >= 1, split the CPU into this many logical devices
            (to try distribution without GPUs). Defaults to `1`.
        tpu: str or None, TPU name or address for `"tpu"`. Defaults to `None`.

    Returns:
        A `tf.distribute.Strategy`, or a `SingleDevice` on JAX or PyTorch.

    Raises:
        ValueError: if `name` is not one of `STRATEGIES`, `cpu_replicas` is
            not an int >= 1, or `name="multiworker"` without `TF_CONFIG`.
        RuntimeError: if the Keras backend is not TensorFlow and `name` is
            neither `"auto"` nor `"default"` (or `cpu_replicas > 1`).

    Example:
        >>> import keras_cd
        >>> strategy = keras_cd.distribute.make_strategy("default")
        >>> strategy.num_replicas_in_sync, keras_cd.distribute.is_chief(strategy)
        (1, True)
    """
    from keras_cd import _validation

    _validation.one_of("name", name, STRATEGIES, f"Use one of {list(STRATEGIES)}.")
    cpu_replicas = _validation.positive_int("cpu_replicas", cpu_replicas, "Use e.g. 2.")
    import keras

    if (
        keras.backend.backend() != "tensorflow"
        and name in ("auto", "default")
        and cpu_replicas == 1
    ):
        return SingleDevice()
    tf = _require_tensorflow(f"keras_cd.distribute.make_strategy({name!r})")
    if cpu_replicas > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas
        )
    # Strategies that configure the runtime go first: listing devices starts it.
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                'Invalid value for `name`: "multiworker" needs the TF_CONFIG environment '
                "variable describing the cluster. Received: no TF_CONFIG. Set it on every "
                "worker (https://www.tensorflow.org/guide/distributed_training)."
            )
        return patch_multi_worker_reduce(tf.distribute.MultiWorkerMirroredStrategy())
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        if len(gpus) > 1 or cpu_replicas > 1:
            name = "mirrored"
        else:
            name = "one_device" if gpus else "default"
    if name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    return tf.distribute.get_strategy()


def patch_multi_worker_reduce(strategy: tf.distribute.Strategy) -> tf.distribute.Strategy:
    """Lets Keras 3's `fit` run under MultiWorkerMirroredStrategy.

    Keras 3 ([keras-team/keras#20585](https://github.com/keras-team/keras/issues/20585),
    open for Keras 3.7-3.15) calls `strategy.reduce` with a nested (x, y)
    batch and reduces scalar metrics along `axis=0`; MirroredStrategy
    tolerates both, the multi-worker strategy raises. Reducing element by
    element, with `axis=None` for scalars, is what Keras means in both cases.
    Remove this once the upstream issue is fixed; `make_strategy("multiworker")`
    applies it already.

    Args:
        strategy: a `tf.distribute` strategy (any; the wrapper only matters
            for MultiWorkerMirroredStrategy).

    Returns:
        `strategy` itself, its `reduce` method replaced by one that reduces
        nested values element by element.

    Raises:
        RuntimeError: if the Keras backend is not TensorFlow.

    Example:
        It needs a cluster (`TF_CONFIG` set on every worker), so it is shown,
        not run:

        ```python
        strategy = keras_cd.distribute.patch_multi_worker_reduce(
            tf.distribute.MultiWorkerMirroredStrategy()
        )
        with strategy.scope():
            model = keras_cd.models.cd_resnet(depth=20)
            model.compile("sgd", "sparse_categorical_crossentropy")
        model.fit(dataset, epochs=10)
        ```
    """
    tf = _require_tensorflow("keras_cd.distribute.patch_multi_worker_reduce")
    reduce = strategy.reduce

    def rank(value):
        return strategy.experimental_local_results(value)[0].shape.rank

    def nested_reduce(reduce_op, value, axis=None):
        return tf.nest.map_structure(
            lambda v: reduce(reduce_op, v, axis=axis if axis is None or rank(v) else None), value
        )

    strategy.reduce = nested_reduce
    return strategy


def is_chief(strategy: tf.distribute.Strategy | SingleDevice) -> bool:
    """Returns whether this process is the cluster's chief (the one that writes files).

    True outside multi-worker training; otherwise the `chief` task, or worker
    0 of a cluster without one. Pass it as `write=` to
    `keras_cd.checkpoint.ResumableCheckpoint`.

    Args:
        strategy: a `tf.distribute` strategy or a `SingleDevice`.

    Returns:
        bool.

    Example:
        >>> import keras_cd
        >>> keras_cd.distribute.is_chief(keras_cd.distribute.SingleDevice())
        True
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )
