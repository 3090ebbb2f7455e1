"""The little that differs between Keras backends: gradients, compilation, sparse inputs.

Everything else in keras_cd is written once with `keras.ops`, so the
paper's layers and experiments run on TensorFlow, JAX and PyTorch alike. A
training step or an input gradient needs the backend's own differentiation
and its own compiler; this module gives them one signature each, and
imports the backend's package only when that backend is the one in use (so
the JAX and PyTorch paths never import TensorFlow).
"""

import keras
import numpy as np


def name():
    """The Keras backend in use: "tensorflow", "jax" or "torch"."""
    return keras.backend.backend()


def value_and_grad(function):
    """`function(params, *rest) -> (value, aux)` to `g(params, *rest) -> ((value, aux), grads)`.

    `value` is a scalar tensor, `params` a list (possibly nested) of tensors
    and `grads` its gradient d value / d params, the same structure; `aux` is
    returned as computed (no gradient flows through it). TensorFlow: a
    `GradientTape`; JAX: `jax.value_and_grad(..., has_aux=True)`; PyTorch:
    `torch.autograd.grad` (an unused parameter gets a zero gradient).
    """
    backend = name()
    if backend == "jax":
        import jax

        return jax.value_and_grad(function, has_aux=True)
    if backend == "tensorflow":
        import tensorflow as tf

        def tensorflow_value_and_grad(params, *rest):
            with tf.GradientTape() as tape:
                tape.watch(params)
                value, aux = function(params, *rest)
            grads = tape.gradient(value, params, unconnected_gradients="zero")
            return (value, aux), grads

        return tensorflow_value_and_grad
    if backend == "torch":
        import torch
        from keras import tree

        def torch_value_and_grad(params, *rest):
            leaves = [
                p.detach().requires_grad_(True) if p.dtype.is_floating_point else p
                for p in tree.flatten(params)
            ]
            with torch.enable_grad():
                value, aux = function(tree.pack_sequence_as(params, leaves), *rest)
                differentiable = [p for p in leaves if p.requires_grad]
                found = iter(torch.autograd.grad(value, differentiable, allow_unused=True))
            grads = []
            for p in leaves:
                g = next(found) if p.requires_grad else None
                grads.append(torch.zeros_like(p) if g is None else g)
            aux = tree.map_structure(lambda a: a.detach() if torch.is_tensor(a) else a, aux)
            return (value.detach(), aux), tree.pack_sequence_as(params, grads)

        return torch_value_and_grad
    raise NotImplementedError(
        f"keras_cd does not support KERAS_BACKEND={backend!r}. Expected 'tensorflow', 'jax' "
        "or 'torch'. Set KERAS_BACKEND to one of them."
    )


def variables_value_and_grad(function, variables):
    """`(function(), d function() / d variables)` for Keras variables updated in place.

    For the backends whose optimizers update variables in place (TensorFlow,
    PyTorch; JAX uses `value_and_grad` on the variables' values instead).
    `function()` returns a scalar tensor.
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = function()
        return value, tape.gradient(value, variables, unconnected_gradients="zero")
    if backend == "torch":
        import torch

        with torch.enable_grad():
            value = function()
            tensors = [v.value for v in variables]
            grads = torch.autograd.grad(value, tensors, allow_unused=True)
        grads = [torch.zeros_like(t) if g is None else g for t, g in zip(tensors, grads)]
        return value.detach(), grads
    raise NotImplementedError(
        f"In-place gradients are for TensorFlow and PyTorch, not {backend!r}: use "
        "`value_and_grad` with `Model.stateless_call`."
    )


def no_grad():
    """A context in which PyTorch records no gradient (a no-op on other backends)."""
    import contextlib

    if name() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def compile(function, jit=True):
    """`function` compiled for the backend in use.

    TensorFlow: `tf.function` (with XLA when `jit`); JAX: `jax.jit` (always:
    the function must be pure, its state passed in and returned); PyTorch:
    the function itself, run eagerly (torch.compile's start-up costs more than
    it saves on the small graphs trained here).
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=jit, reduce_retracing=True)
    if backend == "jax":
        import jax

        return jax.jit(function)
    return function


def predictor(model):
    """`model` in inference mode as a compiled function of its inputs.

    TensorFlow: a `tf.function` (it reads the variables when called); JAX:
    `jax.jit` over `Model.stateless_call` given the variables' current values
    at each call (a jitted stateful call would bake in the weights it was
    traced with); PyTorch: the eager call without gradient recording.
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)
    if backend == "jax":
        import jax

        call = jax.jit(
            lambda trainable, non_trainable, inputs: model.stateless_call(
                trainable, non_trainable, inputs, training=False
            )[0]
        )

        def jax_predict(inputs):
            trainable = [v.value for v in model.trainable_variables]
            non_trainable = [v.value for v in model.non_trainable_variables]
            return call(trainable, non_trainable, inputs)

        return jax_predict

    def torch_predict(inputs):
        with no_grad():
            return model(inputs, training=False)

    return torch_predict


def numpy(value):
    """A tensor, variable or nested structure of them as NumPy arrays."""
    from keras import tree

    return tree.map_structure(
        lambda v: v if isinstance(v, np.ndarray) else keras.ops.convert_to_numpy(v), value
    )


def supports_sparse():
    """Whether the backend takes sparse inputs (TensorFlow, JAX; not PyTorch)."""
    return name() in ("tensorflow", "jax")


def sparse_tensor(matrix):
    """A scipy.sparse matrix as the backend's sparse tensor, float32.

    TensorFlow: a `tf.SparseTensor` (indices reordered); JAX: a
    `jax.experimental.sparse.BCOO`; PyTorch, which Keras gives no sparse
    inputs: the dense (rows, cols) float32 tensor (for Cora's bag-of-words
    features 2708 x 1433, 15.5 MB instead of 0.2 MB).
    """
    coo = matrix.tocoo()
    coo.sum_duplicates()
    indices = np.stack([coo.row, coo.col], 1)
    values = coo.data.astype("float32")
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.sparse.reorder(tf.sparse.SparseTensor(indices.astype("int64"), values, coo.shape))
    if backend == "jax":
        from jax.experimental import sparse

        return sparse.BCOO((values, indices.astype("int32")), shape=coo.shape)
    return keras.ops.convert_to_tensor(matrix.toarray().astype("float32"))
