"""Gradients on the active Keras backend.

Library code differentiates through `keras.ops` (and `keras.ops.custom_gradient`
for the implicit diffusion step), so its gradient tests run on every backend:
`gradients(function, *arguments)` takes the backend's own derivative
(`tf.GradientTape`, `jax.grad`, `torch.autograd.grad`). A layer's weights are
differentiated by passing them through `layer.stateless_call`.
"""

import keras
import numpy as np


def gradients(function, *arguments):
    """The gradients of the scalar `function(*arguments)` w.r.t. every argument.

    `arguments` are NumPy arrays or scalars, passed to `function` as tensors
    of their own dtype; returns one NumPy array per argument. Use float32:
    Keras computes float64 in float32 on JAX (without `jax_enable_x64`) and,
    in `ops.matmul` and `ops.segment_sum`, on PyTorch.
    """
    arguments = [np.asarray(a) for a in arguments]
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(a) for a in arguments]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            loss = function(*tensors)
        # The gradient of a gather arrives as IndexedSlices: densify it.
        return [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, tensors)]
    if backend == "jax":
        import jax

        derivative = jax.grad(function, argnums=tuple(range(len(arguments))))
        return [np.asarray(g) for g in derivative(*(jax.numpy.asarray(a) for a in arguments))]
    if backend == "torch":
        import torch

        # Tensors as Keras makes them (its device, the dtype of each array).
        tensors = [keras.ops.convert_to_tensor(a).requires_grad_() for a in arguments]
        loss = function(*tensors)
        return [g.detach().cpu().numpy() for g in torch.autograd.grad(loss, tensors)]
    raise NotImplementedError(f"No gradient for KERAS_BACKEND={backend}.")
