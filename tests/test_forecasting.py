"""keras_cd.forecasting: the COVID forecasting harness on a small synthetic dataset."""

import numpy as np
import pytest

from keras_cd.datasets import england_covid, load_england_covid
from tests.datasets.test_england_covid import write_covid
from tests.diverging import diverging as diverging_trainer


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return load_england_covid(write_covid(tmp_path_factory.mktemp("covid") / "covid.json"))


def trainer(data, method="coin", cls=None, epochs=30, jit_compile=False, **settings):
    """A small trainer; a plain TensorFlow graph unless `jit_compile` (quicker to
    build for a test's few runs; test_every_method_runs_and_is_reproducible
    keeps XLA)."""
    from keras_cd.forecasting import ForecastingTrainer

    return (cls or ForecastingTrainer)(
        data, method, epochs=epochs, missing_rate=0.8, jit_compile=jit_compile, **settings
    )


@pytest.mark.parametrize(
    "method, settings",
    [
        ("coin", {}),
        ("coin", {"standardization": "reference"}),
        ("coin", {"num_steps": 0}),
        ("mlp", {}),
        ("gcn", {}),
        ("linear", {}),
    ],
)
def test_every_method_runs_and_is_reproducible(data, method, settings):
    model = trainer(data, method, jit_compile=True, **settings)
    assert [len(part) for part in model.split] == [4, 4, 14]  # 22 snapshots
    first, again = model.run(3, 5), model.run(3, 5)
    assert np.isfinite(first.test_mse) and np.isfinite(first.validation_mse)
    assert np.isfinite(first.test_mse_cases)
    assert (first.test_mse, first.test_mse_cases, first.validation_mse) == (
        again.test_mse,
        again.test_mse_cases,
        again.validation_mse,
    )
    predictions = model.predictions()
    assert predictions.shape == (22, 12) and np.all(np.isfinite(predictions))
    if method != "linear":  # another initialisation, another model
        assert model.run(3, 6).test_mse != first.test_mse


@pytest.mark.parametrize("method", ["coin", "gcn"])
def test_training_fits_the_observed_training_targets(data, method):
    """The model a run leaves behind is the trained one, not its initialisation."""

    from keras import ops

    def training_mse(epochs):
        model = trainer(data, method, epochs=epochs)
        model.run(3, 5)
        initial = model._build(5).trainable_weights
        for start, trained in zip(initial, model.model.trainable_weights):
            assert not np.allclose(ops.convert_to_numpy(start), ops.convert_to_numpy(trained))
        windows, train = model.windows(3), model.split[0]
        seen = windows.observed[train]
        return ((model.predictions()[train] - windows.targets[train])[seen] ** 2).mean()

    assert training_mse(60) < training_mse(1)


def test_hidden_values_never_reach_training(data):
    """Poisoning every hidden (day, region) value leaves the trained model unchanged."""
    model = trainer(data, "coin")
    clean = model.run(1, 0)
    weights = [np.asarray(w) for w in model.model.trainable_weights]
    hidden = ~england_covid.missing_mask(data.cases, 0.8, 1)
    poisoned = trainer(england_covid.CovidData(np.where(hidden, np.nan, data.cases), data.edges))
    run = poisoned.run(1, 0)
    for before, after in zip(weights, poisoned.model.trainable_weights):
        np.testing.assert_array_equal(before, np.asarray(after))
    assert run.validation_mse == clean.validation_mse  # observed entries only
    assert np.isnan(run.test_mse)  # the test reads the truth, hidden included


def _leak_candidates(data, model, split_seed):
    """The data with every hidden value + 1000 and every value of the days only the
    test period reads (targets of test snapshots) changed, observed ones included."""
    observed = england_covid.missing_mask(data.cases, 0.8, split_seed)
    cases = np.where(observed, data.cases, data.cases + 1000.0)
    later = slice(model.statistics_days, None)
    cases[later] = cases[later] * 3 + 7  # keeps every observed spread, so the same mask
    changed = england_covid.CovidData(cases, data.edges)
    np.testing.assert_array_equal(england_covid.missing_mask(cases, 0.8, split_seed), observed)
    return changed


@pytest.mark.parametrize("method", ["coin", "linear"])
def test_hidden_and_test_period_values_never_reach_training(data, method):
    """With the default standardization, changing hidden values and the test period's
    values changes no statistic, no training or validation feature, no observed
    training or validation target and no trained weight; with the reference one
    (all days) the statistics move, so this test sees the leak."""
    model = trainer(data, method)
    assert model.standardization == "training"
    assert model.statistics_days == 4 + 4 + 8  # train + validation snapshots + lags
    changed = trainer(_leak_candidates(data, model, 2), method)
    before, after = model.masking(2), changed.masking(2)
    np.testing.assert_array_equal(before.mean, after.mean)
    np.testing.assert_array_equal(before.scale, after.scale)
    for part in model.split[:2]:
        np.testing.assert_array_equal(before.windows.features[part], after.windows.features[part])
        seen = before.windows.observed[part]
        np.testing.assert_array_equal(
            before.windows.targets[part][seen], after.windows.targets[part][seen]
        )
    clean, moved = model.run(2, 1), changed.run(2, 1)
    assert clean.validation_mse == moved.validation_mse
    if method == "linear":
        for a, b in zip(model._linear, changed._linear):
            np.testing.assert_array_equal(a, b)
    else:
        for a, b in zip(model.model.trainable_weights, changed.model.trainable_weights):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert clean.test_mse != moved.test_mse  # the test period did change
    reference = trainer(data, method, standardization="reference").masking(2)
    leaked = trainer(changed.data, method, standardization="reference").masking(2)
    assert np.abs(reference.mean - leaked.mean).min() > 0  # every region's statistic moved


def test_the_statistics_and_the_error_in_cases(data):
    """The statistics are `region_statistics` of the observed entries of the first
    train + validation + lags days; the MSE in cases un-standardises each region."""
    model = trainer(data, "mlp")
    run = model.run(4, 0)
    masking = model.masking(4)
    mean, scale = england_covid.region_statistics(data.cases, masking.observed, 16)
    np.testing.assert_array_equal(masking.mean, mean)
    np.testing.assert_array_equal(masking.scale, scale)
    np.testing.assert_allclose(masking.values, (data.cases - mean) / scale)
    test = model.split[2]
    predicted = model.predictions()[test] * scale + mean  # cases
    truth = data.cases[model.lags :][test]
    assert run.test_mse_cases == pytest.approx(np.mean((predicted - truth) ** 2), rel=1e-5)
    z = (model.predictions()[test] - masking.values[model.lags :][test]) ** 2
    assert run.test_mse == pytest.approx(z.mean(), rel=1e-5)
    reference = trainer(data, "mlp", standardization="reference")
    np.testing.assert_array_equal(reference.masking(4).mean, data.cases.mean(axis=0))


def test_the_linear_baseline_is_least_squares_on_observed_training_entries(data):
    from sklearn.linear_model import LinearRegression

    model = trainer(data, "linear")
    model.run(2, 0)
    windows = model.windows(2)
    train = model.split[0]
    seen = windows.observed[train]
    reference = LinearRegression().fit(windows.features[train][seen], windows.targets[train][seen])
    expected = reference.predict(windows.features.reshape(-1, 8)).reshape(22, 12)
    np.testing.assert_allclose(model.predictions(), expected, rtol=1e-4, atol=1e-5)


def test_batched_snapshots_predict_as_each_snapshot_alone(data):
    """The union of a part's daily graphs gives each snapshot its own graph's result."""
    from keras import ops

    from keras_cd.datasets.england_covid import mobility_laplacian

    model = trainer(data, "coin")
    model.run(0, 0)
    predictions = model.predictions()
    windows = model.windows(0)
    for snapshot in (0, 9, 21):
        graph = mobility_laplacian(*data.edges[model.days[snapshot]], data.num_regions)
        features = windows.features[snapshot].astype("float32")
        inputs = [ops.convert_to_tensor(a) for a in (features, *graph)]
        alone = ops.convert_to_numpy(model.model(inputs, training=False)).ravel()
        np.testing.assert_allclose(predictions[snapshot], alone, rtol=1e-5, atol=1e-6)


def test_the_protocol_with_two_workers_gives_the_same_runs(data):
    from keras_cd.forecasting import run_protocol

    model = trainer(data, "gcn")
    one = run_protocol(model, 2, 2, seed=42)
    two = run_protocol(model, 2, 2, seed=42, workers=2)
    assert one.test_mse == two.test_mse and one.runs == 4
    assert one.split_seeds == [42, 42, 43, 43]
    assert "over 4 runs" in one.summary()


def diverging(init_seeds):
    """The ForecastingTrainer whose runs of `init_seeds` diverge (tests/diverging.py)."""
    from keras_cd.forecasting import ForecastingTrainer

    return diverging_trainer(ForecastingTrainer, init_seeds)


def test_a_run_that_turns_nan_fails_by_name_after_a_good_run(data):
    from keras_cd.forecasting import RunFailedError

    model = trainer(data, "coin", cls=diverging({1}))
    good = model.run(0, 0)
    with pytest.raises(RunFailedError, match=r"split_seed=0, init_seed=1\) failed at epoch 2: "):
        model.run(0, 1)
    with pytest.raises(RuntimeError, match="a failed run leaves no predictions"):
        model.predictions()  # not the good run's
    again = model.run(0, 0)  # the trainer recovers: fresh weights and optimizer
    assert (again.test_mse, again.validation_mse) == (good.test_mse, good.validation_mse)
    # Blown up by the last step: the loss never saw it, the predictions do.
    one_step = diverging({1})(data, "coin", epochs=1, missing_rate=0.8)
    with pytest.raises(RunFailedError, match="epoch 1: the validation predictions are not finite"):
        one_step.run(0, 1)


def test_the_protocol_records_failed_runs_and_never_averages_them(data):
    from keras_cd.forecasting import RunFailedError, run_protocol

    model = trainer(data, "mlp", cls=diverging({42001}))
    result = run_protocol(model, 2, 2, seed=42)  # inits 42000 .. 42003
    assert [(f["split_seed"], f["init_seed"], f["epoch"]) for f in result.failed] == [
        (42, 42001, 2)
    ]
    assert result.failed[0]["reason"].startswith("training loss = ")
    assert list(zip(result.split_seeds, result.init_seeds)) == [
        (42, 42000),
        (43, 42002),
        (43, 42003),
    ]
    expected = [model.run(s, i) for s, i in zip(result.split_seeds, result.init_seeds)]
    assert result.test_mse == [r.test_mse for r in expected]
    assert result.test_mse_cases == [r.test_mse_cases for r in expected]
    assert result.runs == 3 and result.mean == pytest.approx(np.mean(result.test_mse))
    assert "over 3 runs (1 failed, split/init 42/42001" in result.summary()
    record = result.to_json()
    assert record["failed"] == result.failed and len(record["runs"]) == 3
    two = run_protocol(model, 2, 2, seed=42, workers=2)
    assert (two.test_mse, two.failed) == (result.test_mse, result.failed)
    with pytest.raises(RunFailedError, match="init_seed=42001"):
        run_protocol(model, 2, 2, seed=42, on_failure="raise")


def test_bad_settings_are_named(data):
    from keras_cd.forecasting import ForecastingTrainer

    with pytest.raises(ValueError, match="Invalid setting for method 'mlp': \\['sigma2'\\]"):
        ForecastingTrainer(data, "mlp", sigma2=0.5)
    with pytest.raises(ValueError, match="Invalid value for `method`"):
        ForecastingTrainer(data, "lstm")
    with pytest.raises(ValueError, match="Invalid value for `standardization`"):
        ForecastingTrainer(data, "linear", standardization="all")
    short = england_covid.CovidData(data.cases[:10], data.edges[:10])
    with pytest.raises(ValueError, match="too few for non-empty train, validation and test"):
        ForecastingTrainer(short, "coin")


def test_the_twins_of_node_classification_have_the_same_names():
    from keras_cd import forecasting, node_classification

    for name in ("ProtocolResult", "RunResult", "RunFailedError", "run_protocol", "METHODS"):
        assert name in forecasting.__all__ and name in node_classification.__all__
    assert forecasting.RunFailedError is node_classification.RunFailedError
