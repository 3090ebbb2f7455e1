"""The contract every public keras_cd layer must honour.

`check_layer_contract` is applied to each layer in its own test module:
config round trip, registration, symbolic and eager calls, `.keras` save and
load with identical inference outputs, one `fit` step that trains the layer,
and mixed precision.
"""

import keras
import numpy as np


def _head_model(layer, input_shape):
    inputs = keras.Input(input_shape[1:])
    features = layer(inputs)
    outputs = keras.layers.Dense(1, name="head")(keras.layers.Flatten()(features))
    return keras.Model(inputs, outputs), features


def check_layer_contract(layer_class, init_kwargs, input_shape, tmp_path):
    """Runs the layer contract; `input_shape` includes the batch size."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=input_shape).astype("float32")

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
    model, features = _head_model(layer, input_shape)
    symbolic_shape = (None,) + tuple(input_shape[1:])
    assert tuple(features.shape) == tuple(layer.compute_output_shape(symbolic_shape))

    # Eager call, in inference and in training mode.
    expected_shape = tuple(layer.compute_output_shape(tuple(input_shape)))
    inference = np.asarray(layer(x))
    assert inference.shape == expected_shape
    assert np.all(np.isfinite(inference))
    trained = np.asarray(layer(x, training=True))
    assert trained.shape == expected_shape and np.all(np.isfinite(trained))

    # .keras save and load, no custom_objects: identical inference outputs.
    path = tmp_path / f"{layer_class.__name__}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert any(type(l) is layer_class for l in loaded.layers)
    np.testing.assert_array_equal(
        model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    )

    # One fit step trains the layer's own weights.
    before = [keras.ops.convert_to_numpy(w) for w in layer.trainable_weights]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    target = rng.normal(size=(input_shape[0], 1)).astype("float32")
    history = model.fit(x, target, batch_size=input_shape[0], epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [keras.ops.convert_to_numpy(w) for w in layer.trainable_weights]
    assert all(not np.array_equal(b, a) for b, a in zip(before, after)), (
        "fit() left some of the layer's trainable weights unchanged"
    )

    # mixed_float16: float16 compute, float32 variables.
    mixed = layer_class(**init_kwargs, dtype="mixed_float16")
    for training in (False, True):
        output = mixed(x, training=training)
        assert keras.backend.standardize_dtype(output.dtype) == "float16"
        assert np.all(np.isfinite(np.asarray(output, dtype="float32")))
    for variable in mixed.trainable_weights:
        assert keras.backend.standardize_dtype(variable.dtype) == "float32"
    return layer
