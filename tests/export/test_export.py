import os

import keras
import numpy as np
import pytest

import keras_cd
from keras_cd import export

onnxruntime = pytest.importorskip("onnxruntime", reason="needs the `export` extra")
onnx = pytest.importorskip("onnx", reason="needs the `export` extra")
tf = pytest.importorskip("tensorflow")


def dense_network():
    inputs = keras.Input((6,), name="features")
    x = keras_cd.DenseCDBlock(8, sigma=0.3, seed=1)(inputs)
    x = keras_cd.DenseCDBlock(8, sigma=0.2, mode="relative", activation="tanh", seed=2)(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def conv_network():
    inputs = keras.Input((8, 8, 3), name="images")
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras_cd.CDBlock(4, sigma=0.2, seed=1)(x)
    x = keras_cd.CDBlock(8, strides=2, sigma=0.2, mode="relative", seed=2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(5)(x))


def noise_only():
    inputs = keras.Input((5,), name="x")
    return keras.Model(inputs, keras_cd.DiffusionNoise(2.0, dt=0.25, seed=0)(inputs))


MODELS = {
    "dense_cd": dense_network,
    "conv_cd": conv_network,
    "noise": noise_only,
    "cd_resnet": lambda: keras_cd.models.cd_resnet(depth=8, sigma=0.1, seed=0),
}


def randomize_batch_norm(model):
    rng = np.random.default_rng(0)
    for variable in model.non_trainable_variables:
        if "moving" in variable.path:
            variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype("float32"))


def random_inputs(model, batch, seed=7):
    shape = (batch,) + tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def random_op_types(saved_model_dir):
    signature = tf.saved_model.load(saved_model_dir).signatures["serving_default"]
    graph = signature.graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    return {n.op for n in nodes if "Random" in n.op}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_both_formats_match_keras_and_are_noise_free(name, tmp_path):
    model = MODELS[name]()
    randomize_batch_norm(model)
    report = export.to_onnx(model, tmp_path / "model.onnx")
    assert report.max_abs_diff <= 1e-5 and report.batch_sizes == (1, 5)
    saved = export.to_saved_model(model, tmp_path / "serving")
    assert saved.path == str(tmp_path / "serving" / "1") and saved.max_abs_diff <= 1e-5

    # Independently of check_parity: run the files at a third batch size.
    x = random_inputs(model, 7)
    expected = np.asarray(model(x, training=False))
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    np.testing.assert_allclose(
        session.run(None, {session.get_inputs()[0].name: x})[0], expected, atol=1e-5
    )
    assert session.get_inputs()[0].shape[0] not in (1, 5, 7)  # dynamic batch dimension
    loaded = tf.saved_model.load(saved.path).signatures["serving_default"]
    output = loaded(**{model.inputs[0].name: tf.constant(x)})["output_0"].numpy()
    np.testing.assert_allclose(output, expected, atol=1e-5)

    graph = onnx.load(str(tmp_path / "model.onnx"))
    assert not [n.op_type for n in graph.graph.node if "Random" in n.op_type]
    assert random_op_types(saved.path) == set()
    metadata = {p.key: p.value for p in graph.metadata_props}
    assert metadata["onnx.opset"] == "17" and metadata["keras_cd.version"] == keras_cd.__version__
    assert any(o.domain == "" and o.version == 17 for o in graph.opset_import)


def test_monte_carlo_export_takes_the_noise_as_input(tmp_path):
    model = noise_only()  # x + 2 * sqrt(0.25) * eps
    report = export.to_onnx(model, tmp_path / "mc.onnx", monte_carlo=True)
    assert report.monte_carlo and export.noise_width(model) == 5
    session = onnxruntime.InferenceSession(str(tmp_path / "mc.onnx"))
    assert [i.name for i in session.get_inputs()] == ["x", "noise"]
    x = random_inputs(model, 3)
    noise = np.random.default_rng(1).normal(size=(3, 5)).astype("float32")
    out = session.run(None, {"x": x, "noise": noise})[0]
    np.testing.assert_allclose(out, x + 1.0 * noise, atol=1e-6)


def test_monte_carlo_export_of_a_network_averages_to_keras_monte_carlo(tmp_path):
    model = dense_network()
    export.to_onnx(model, tmp_path / "mc.onnx", monte_carlo=True)
    saved = export.to_saved_model(model, tmp_path / "serving", monte_carlo=True)
    session = onnxruntime.InferenceSession(str(tmp_path / "mc.onnx"))
    width = export.noise_width(model)
    x = np.repeat(random_inputs(model, 1), 4000, axis=0)
    deterministic = np.asarray(model(x[:1]))
    zero = session.run(None, {"features": x[:1], "noise": np.zeros((1, width), "float32")})[0]
    np.testing.assert_allclose(zero, deterministic, atol=1e-6)  # eps = 0: the inference graph
    rng = np.random.default_rng(3)
    onnx_mc = session.run(
        None, {"features": x, "noise": rng.normal(size=(4000, width)).astype("float32")}
    )[0]
    with keras_cd.monte_carlo():
        keras_mc = np.asarray(model(x))
    standard_error = keras_mc.std(axis=0) / np.sqrt(len(x))
    assert np.all(
        np.abs(onnx_mc.mean(axis=0) - keras_mc.mean(axis=0))
        < 5 * np.sqrt(2) * standard_error + 1e-6
    )
    assert onnx_mc.std(axis=0).min() > 0
    assert random_op_types(saved.path) == set()


def test_existing_exports_are_not_overwritten_unless_asked(tmp_path):
    model = dense_network()
    export.to_onnx(model, tmp_path / "m.onnx")
    before = (tmp_path / "m.onnx").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.to_onnx(model, tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").read_bytes() == before
    export.to_onnx(model, tmp_path / "m.onnx", overwrite=True)
    assert export.to_saved_model(model, tmp_path / "s").path.endswith(os.sep + "1")
    assert export.to_saved_model(model, tmp_path / "s").path.endswith(os.sep + "2")
    with pytest.raises(FileExistsError):
        export.to_saved_model(model, tmp_path / "s", version=1)
    assert (
        export.to_saved_model(model, tmp_path / "s", version=1, overwrite=True).max_abs_diff <= 1e-5
    )
    assert sorted(os.listdir(tmp_path / "s")) == ["1", "2"]


def test_a_failed_export_leaves_nothing_behind(tmp_path, monkeypatch):
    model = dense_network()
    export.to_onnx(model, tmp_path / "good.onnx")
    other = dense_network()  # different weights: parity must fail
    monkeypatch.setattr(other, "export", lambda path, **kw: model.export(path, **kw))
    with pytest.raises(export.ParityError, match=r"differs from the Keras model by .* atol=1e-05"):
        export.to_onnx(other, tmp_path / "bad.onnx")
    with pytest.raises(export.ParityError):
        export.to_saved_model(other, tmp_path / "serving")
    assert sorted(os.listdir(tmp_path)) == ["good.onnx"]  # no bad.onnx, no temporaries, no version


def test_check_parity_reports_the_difference(tmp_path):
    model = dense_network()
    export.to_onnx(model, tmp_path / "m.onnx")
    x = random_inputs(model, 4)
    assert export.check_parity(model, tmp_path / "m.onnx", x) <= 1e-5
    with pytest.raises(export.ParityError, match="differs"):
        export.check_parity(dense_network(), tmp_path / "m.onnx", x)


def test_bad_arguments(tmp_path):
    model = dense_network()
    with pytest.raises(ValueError, match=r"Invalid value for `path`.*\.onnx"):
        export.to_onnx(model, tmp_path / "model.bin")
    with pytest.raises(ValueError, match="Invalid value for `model`"):
        export.to_onnx("model.keras", tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="Invalid value for `version`"):
        export.to_saved_model(model, tmp_path / "s", version=0)
    with pytest.raises(ValueError, match="monte_carlo\\(\\) is active"):
        with keras_cd.monte_carlo():
            export.to_onnx(model, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="no active diffusion"):
        export.to_onnx(
            keras_cd.models.cd_resnet(depth=8, sigma=0.0), tmp_path / "m.onnx", monte_carlo=True
        )
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed = dense_network()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with pytest.raises(ValueError, match="dtype policy"):
        export.to_onnx(mixed, tmp_path / "m.onnx")
    assert os.listdir(tmp_path) == []  # no export was written by the failed calls


def test_command_line(tmp_path, capsys):
    from keras_cd.export.__main__ import main

    model = conv_network()
    model.save(tmp_path / "model.keras")
    code = main(
        [
            str(tmp_path / "model.keras"),
            "--onnx",
            str(tmp_path / "m.onnx"),
            "--saved-model",
            str(tmp_path / "serving"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and out.count("max |export - keras| = ") == 2
    assert (tmp_path / "m.onnx").exists() and (
        tmp_path / "serving" / "1" / "saved_model.pb"
    ).exists()
    assert main([str(tmp_path / "model.keras"), "--onnx", str(tmp_path / "m.onnx")]) == 1
    assert "overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing.keras"), "--onnx", str(tmp_path / "x.onnx")])
