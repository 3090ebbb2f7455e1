"""Pieces shared by the exporters: input specs, check inputs, lazy imports."""

import importlib

import numpy as np

from keras_cd.inference import monte_carlo_enabled


def require(module, extra="export"):
    """Imports an optional dependency, or says which `pip install` brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"keras_cd.export needs `{module}`, which is not installed. "
            f"Install it with: pip install 'keras-cd[{extra}]'"
        ) from error


def check_exportable(model):
    """Raises a ValueError unless `model` is a float32 `keras.Model` outside `monte_carlo()`."""
    import keras

    if not isinstance(model, keras.Model):
        raise ValueError(
            "Invalid value for `model`: expected a keras.Model. Received: "
            f"{type(model).__name__}. Load it first with "
            "keras.saving.load_model(path)."
        )
    if monte_carlo_enabled():
        raise ValueError(
            "Invalid export context: keras_cd.monte_carlo() is active, so the "
            "traced graph would contain random ops. Export outside the "
            "monte_carlo() block; use monte_carlo=True for a noise input."
        )
    policy = model.dtype_policy.name
    if policy != "float32":
        raise ValueError(
            f"Invalid dtype policy for export: expected float32. Received: {policy!r}. "
            "Rebuild the model under keras.mixed_precision.set_global_policy('float32') "
            "and copy the weights with model.set_weights(...)."
        )


def input_signature(model):
    """The signature argument of `Model.export` for `model`'s inputs."""
    return [model.inputs[0]] if len(model.inputs) == 1 else [list(model.inputs)]


def example_inputs(model, batch_size, seed=0, unknown_size=8):
    """Random inputs for `model` (normal floats; zeros for integer inputs)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for tensor in model.inputs:
        shape = (batch_size,) + tuple(unknown_size if d is None else d for d in tensor.shape[1:])
        dtype = np.dtype(str(tensor.dtype))
        if np.issubdtype(dtype, np.floating):
            arrays.append(rng.normal(size=shape).astype(dtype))
        else:
            arrays.append(np.zeros(shape, dtype))
    return arrays


def as_list(inputs):
    """Returns `inputs` as a list: a list or tuple as is, anything else wrapped."""
    return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
