"""keras_cd.forecasting: the COVID forecasting harness on a small synthetic dataset."""

import numpy as np
import pytest

from keras_cd.datasets import england_covid, load_england_covid
from tests.datasets.test_england_covid import write_covid

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return load_england_covid(write_covid(tmp_path_factory.mktemp("covid") / "covid.json"))


def trainer(data, method="coin", **settings):
    from keras_cd.forecasting import ForecastingTrainer

    return ForecastingTrainer(data, method, epochs=30, missing_rate=0.8, **settings)


@pytest.mark.parametrize(
    "method, settings",
    [("coin", {}), ("coin", {"num_steps": 0}), ("mlp", {}), ("gcn", {}), ("linear", {})],
)
def test_every_method_runs_and_is_reproducible(data, method, settings):
    model = trainer(data, method, **settings)
    assert [len(part) for part in model.split] == [4, 4, 14]  # 22 snapshots
    first, again = model.run(3, 5), model.run(3, 5)
    assert np.isfinite(first.test_mse) and np.isfinite(first.validation_mse)
    assert (first.test_mse, first.validation_mse) == (again.test_mse, again.validation_mse)
    predictions = model.predictions()
    assert predictions.shape == (22, 12) and np.all(np.isfinite(predictions))
    if method != "linear":  # another initialisation, another model
        assert model.run(3, 6).test_mse != first.test_mse


def test_hidden_values_never_reach_training(data):
    """Poisoning every hidden (day, region) value leaves the trained model unchanged."""
    model = trainer(data, "coin")
    model.run(1, 0)
    weights = [np.asarray(w) for w in model.model.trainable_weights]
    clean = model.run(1, 0)
    hidden = ~england_covid.missing_mask(data.cases, 0.8, 1)
    model.values = np.where(hidden, np.nan, model.values)  # what features and targets come from
    model._masks = (None, None)
    poisoned = model.run(1, 0)
    for before, after in zip(weights, model.model.trainable_weights):
        np.testing.assert_array_equal(before, np.asarray(after))
    assert poisoned.validation_mse == clean.validation_mse  # observed entries only
    assert np.isnan(poisoned.test_mse)  # the test reads the truth, hidden included


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
    import tensorflow as tf

    from keras_cd.datasets.england_covid import mobility_laplacian

    model = trainer(data, "coin")
    model.run(0, 0)
    predictions = model.predictions()
    windows = model.windows(0)
    for snapshot in (0, 9, 21):
        graph = mobility_laplacian(*data.edges[model.days[snapshot]], data.num_regions)
        inputs = (tf.constant(windows.features[snapshot]), *(tf.constant(a) for a in graph))
        alone = np.asarray(model.model(inputs, training=False)).ravel()
        np.testing.assert_allclose(predictions[snapshot], alone, rtol=1e-5, atol=1e-6)


def test_the_protocol_with_two_workers_gives_the_same_runs(data):
    from keras_cd.forecasting import run_forecasting_protocol

    model = trainer(data, "gcn")
    one = run_forecasting_protocol(model, 2, 2, seed=42)
    two = run_forecasting_protocol(model, 2, 2, seed=42, workers=2)
    assert one.test_mse == two.test_mse and one.runs == 4
    assert one.split_seeds == [42, 42, 43, 43]
    assert "over 4 runs" in one.summary()


def test_bad_settings_are_named(data):
    from keras_cd.forecasting import ForecastingTrainer

    with pytest.raises(ValueError, match="Invalid setting for method 'mlp': \\['sigma2'\\]"):
        ForecastingTrainer(data, "mlp", sigma2=0.5)
    with pytest.raises(ValueError, match="Invalid value for `method`"):
        ForecastingTrainer(data, "lstm")
    short = england_covid.CovidData(data.cases[:10], data.edges[:10])
    with pytest.raises(ValueError, match="too few for non-empty train, validation and test"):
        ForecastingTrainer(short, "coin")
