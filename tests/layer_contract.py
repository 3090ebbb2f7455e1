"""The contract every public keras_cd layer must honour.

`check_layer_contract` is applied to each layer in its own test module:
config round trip, registration, symbolic and eager calls, `.keras` save and
load with identical inference outputs, one `fit` step (that changes every
trainable weight of a layer owning any),
and mixed precision.
"""

import keras
import numpy as np


def _as_float32(tensor):
    return keras.ops.convert_to_numpy(tensor).astype("float32")


def _symbolic(array):
    return keras.Input(array.shape[1:], dtype=str(array.dtype))


def check_layer_contract(
    layer_class, init_kwargs, input_shape, tmp_path, extra_inputs=(), apply=None
):
    """Runs the layer contract; `input_shape` includes the batch size.

    `extra_inputs` are further call arguments (arrays with their own leading
    sizes, e.g. a graph), passed as model inputs; `apply(layer, tensors)`
    returns the tensor the contract trains on (default: `layer(*tensors)`).
    """
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=input_shape).astype("float32")
    arrays = [x] + [np.asarray(a) for a in extra_inputs]
    custom_apply = apply is not None
    apply = apply or (lambda layer, tensors: layer(*tensors))

    # Config round trip, through the class and through the registry.
    layer = layer_class(**init_kwargs)
    config = layer.get_config()
    for name in init_kwargs:
        assert name in config, f"get_config() is missing argument {name!r}"
    assert layer_class.from_config(config).get_config() == config
    revived = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(revived) is layer_class
    assert revived.get_config() == config

    # Symbolic call: output shape agrees with compute_output_shape.
    inputs = [_symbolic(a) for a in arrays]
    features = apply(layer, inputs)
    if not custom_apply:
        symbolic_shape = (None,) + tuple(input_shape[1:])
        assert tuple(features.shape) == tuple(layer.compute_output_shape(symbolic_shape))
    head = keras.layers.Dense(1, name="head")(keras.layers.Flatten()(features))
    model = keras.Model(inputs, head)

    # Eager calls, in inference and in training mode.
    for training in (False, True):
        if custom_apply:
            eager = keras.ops.convert_to_numpy(apply(layer, arrays))
        else:
            eager = keras.ops.convert_to_numpy(layer(*arrays, training=training))
            assert eager.shape == tuple(layer.compute_output_shape(tuple(input_shape)))
        assert np.all(np.isfinite(eager))
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(model(arrays, training=False))))

    # .keras save and load, no custom_objects: identical inference outputs.
    path = tmp_path / f"{layer_class.__name__}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert any(type(layer) is layer_class for layer in loaded.layers)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model(arrays)), keras.ops.convert_to_numpy(loaded(arrays))
    )

    # One fit step runs (full batch, as a dataset so that inputs may have
    # different leading sizes) and, for a layer that owns weights, trains every one.
    before = [keras.ops.convert_to_numpy(w) for w in layer.trainable_weights]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    target = rng.normal(size=(input_shape[0], 1)).astype("float32")
    dataset = tf.data.Dataset.from_tensors((tuple(arrays), target))
    history = model.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    if layer.trainable_weights:
        after = [keras.ops.convert_to_numpy(w) for w in layer.trainable_weights]
        unchanged = [
            w.path
            for w, b, a in zip(layer.trainable_weights, before, after)
            if np.array_equal(b, a)
        ]
        assert not unchanged, f"fit() left these trainable weights unchanged: {unchanged}"

    # mixed_float16: float16 compute, float32 variables.
    mixed = layer_class(**init_kwargs, dtype="mixed_float16")
    for training in (False, True):
        if custom_apply:  # the layer's own float outputs are checked by its tests
            assert np.all(np.isfinite(_as_float32(apply(mixed, arrays))))
            continue
        output = mixed(*arrays, training=training)
        assert keras.backend.standardize_dtype(output.dtype) == "float16"
        assert np.all(np.isfinite(_as_float32(output)))
    for variable in mixed.trainable_weights:
        assert keras.backend.standardize_dtype(variable.dtype) == "float32"
    return layer
