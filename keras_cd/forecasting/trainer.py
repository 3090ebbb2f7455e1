"""COVID-19 case forecasting with 90% of the data missing: one method, many runs.

The paper's case-prediction experiment (Wang, Bao & Shi, 2024): COIN
forecasts each region's next-day cases from its last `lags` days, the
prediction diffused over the day's mobility graph, with most observations
hidden. `ForecastingTrainer` holds the data
(`keras_cd.datasets.load_england_covid`), its snapshots and daily graphs,
one model and ONE compiled training run: `epochs` full-batch Adam steps,
each on the mean over the training snapshots of each snapshot's mean
squared error on its observed targets, in a single compiled loop (no early
stopping, as the reference experiment; the loop is the node-classification
trainer's: XLA on TensorFlow, `jax.jit` on JAX, eager on PyTorch). A run
(masking seed, initialization seed) draws the mask
(`keras_cd.datasets.england_covid.missing_mask`), standardizes each region
(`standardization`, below), trains from fresh seeded weights and reports a
`RunResult`:

- the test MSE: over the test snapshots, the mean over regions of the
  squared error against the TRUE standardized cases (hidden or not),
  averaged over snapshots;
- the test MSE in cases: the same after un-standardizing each region with
  its own statistics (y = mean + scale z), so comparable across
  standardizations;
- the validation MSE: as the test MSE on the validation snapshots, but on
  their observed targets only (what a user without the hidden values could
  compute).

`standardization="training"` (the default) standardizes each region with the
mean and std of its OBSERVED entries in the days the training and validation
snapshots read (their 8 lags and targets: the first train + validation +
lags days), so no hidden value and no value only the test period uses
reaches the features, the training targets or the statistics; a region with
fewer than 2 such entries (or no spread among them) takes the pooled
statistics of every region's observed entries in those days.
`standardization="reference"` is the reference code's: mean and std of all
days, hidden and test-period values included.
(`keras_cd.datasets.england_covid.region_statistics`.) Hidden entries enter
the features as 0, the region's mean, either way.

A run whose training loss stops being finite stops there, and one whose
validation or test predictions are not finite fails too: `run` raises
`RunFailedError` naming masking, initialization and epoch, and reports no
figure. The snapshots of a split are batched as one disjoint-union graph
(`keras_cd.graph.disjoint_union`). Every Keras backend.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from keras_cd import _backend, _validation
from keras_cd._deprecation import deprecated_aliases
from keras_cd._protocol import RunFailedError
from keras_cd.datasets import england_covid
from keras_cd.forecasting.models import GRAPHS, forecasting_model, settings_for

STANDARDIZATIONS = ("training", "reference")
"""The values of `ForecastingTrainer(standardization=...)`.

`"training"`: each region's statistics from its observed entries in the
days that feed training and validation; `"reference"`: the reference
code's, from every day (hidden and test-period values included).
"""


def _masked_mse(outputs, targets):
    """The mean over snapshots of each snapshot's MSE on its observed targets.

    `targets` is `(values, observed)`, both (snapshots, regions), hidden
    values zeroed and `observed` 1.0 where a value is observed.
    """
    from keras import ops

    values, observed = targets
    counts = ops.maximum(ops.sum(observed, axis=1), 1.0)
    errors = ops.square(ops.reshape(outputs, ops.shape(values)) - values) * observed
    return ops.mean(ops.sum(errors, axis=1) / counts)


_FIX = "Lower the learning rate, or check the cases for NaN or infinity."


@dataclasses.dataclass(frozen=True)
class RunResult:
    """One forecasting run: its mean squared errors and wall seconds.

    With z the standardized cases, z_hat the predictions, and (s, n) the
    snapshots and regions of the test part,

        test_mse = (1 / S) * sum_s (1 / N) * sum_n (z_hat[s, n] - z[s, n])^2,

    against the true values, hidden or not; `test_mse_cases` is the same in
    cases (each region's error times its scale); `validation_mse` averages
    over the observed targets only.

    Attributes:
        test_mse: float or None, standardized; None when the test part was
            not evaluated.
        test_mse_cases: float or None, in cases squared; None when not
            evaluated.
        validation_mse: float, standardized.
        seconds: float, wall-clock seconds of the run.

    Example:
    >>> import keras_cd
    >>> run = keras_cd.forecasting.RunResult(0.5, 120.0, 0.4, 1.5)
    >>> run.test_mse, run.validation_mse
    (0.5, 0.4)
    """

    test_mse: float | None
    test_mse_cases: float | None
    validation_mse: float
    seconds: float


@dataclasses.dataclass
class Masking:
    """One masking's data: observed entries, statistics, values and snapshots.

    `ForecastingTrainer.masking(split_seed)` computes it once per seed.

    Attributes:
        observed: (T, N) bool array, which (day, region) entries are observed.
        mean: (N,) float64 array, each region's mean.
        scale: (N,) float64 array, each region's scale, z = (y - mean) / scale.
        values: (T, N) float64 array, all the standardized values (the truth).
        windows: `keras_cd.datasets.england_covid.Windows`, the snapshots.

    Example:
    >>> import numpy as np, keras_cd
    >>> rng = np.random.default_rng(0)
    >>> cases = rng.poisson(20, (30, 5)).astype(float)
    >>> edges = [(np.arange(4), np.arange(1, 5), np.ones(4))] * 30
    >>> data = keras_cd.datasets.CovidData(cases, edges)
    >>> trainer = keras_cd.forecasting.ForecastingTrainer(data, "linear", missing_rate=0.5)
    >>> masking = trainer.masking(0)
    >>> masking.observed.shape, round(float(masking.observed.mean()), 1)
    ((30, 5), 0.5)
    """

    observed: np.ndarray  # (T, N) bool
    mean: np.ndarray  # (N,) float64
    scale: np.ndarray  # (N,) float64, z = (y - mean) / scale
    values: np.ndarray  # (T, N) float64, standardized
    windows: england_covid.Windows


def _propagation(sources, targets, weights, num_regions):
    """GCN's A_gcn = D^-1/2 (A^T + I) D^-1/2 as an edge list (messages source -> target)."""
    import scipy.sparse as sp

    from keras_cd.graph.laplacian import _to_format, laplacian

    adjacency = sp.csr_matrix(
        (np.asarray(weights, np.float64), (np.asarray(targets), np.asarray(sources))),
        shape=(num_regions, num_regions),
    )  # row = receiver
    matrix = sp.identity(num_regions) - laplacian(adjacency, "symmetric", format="scipy")
    return _to_format(matrix, "edges")


class ForecastingTrainer:
    """Trains one method on the forecasting task for any maskings and initializations.

    A method maps each region's last `lags` days of standardized cases to
    the next day's; COIN (`"coin"`, the default) diffuses its base
    network's prediction f(X) over the day's mobility Laplacian L,

        u_T = (I - sigma2 * L)^num_steps f(X)   (with dropout in each step),

    and is compared with an MLP, a GCN and least squares (`"mlp"`, `"gcn"`,
    `"linear"`; `keras_cd.forecasting.METHODS`). Each `run` draws a masking
    (`missing_rate` of the entries hidden), trains `epochs` full-batch Adam
    steps from seeded weights in one compiled loop, and scores the
    validation and test snapshots (see the module docstring).

    Reference:
        - [Wang, Bao & Shi, 2024](https://arxiv.org/abs/2403.15726)
        - [Panagopoulos et al., 2021](https://arxiv.org/abs/2009.08388),
          the dataset and the reference experiment.

    Args:
        data: a `keras_cd.datasets.CovidData`.
        method: `"coin"`, `"mlp"`, `"gcn"` or `"linear"`
            (`keras_cd.forecasting.METHODS`). Defaults to `"coin"`.
        epochs: int >= 1, Adam steps per run. Defaults to `100`.
        missing_rate: float in [0, 1), fraction of (day, region) values
            hidden. Defaults to `0.9`.
        lags: int >= 1, days of history per snapshot. Defaults to `8`.
        standardization: `"training"` (each region's observed entries in
            the days that feed training and validation) or `"reference"`
            (every day, hidden and test values included: the reference
            code's leak, to reproduce its figures). Defaults to
            `"training"`.
        jit_compile: bool, TensorFlow: compile each run with XLA (slower
            to build, faster per run) or as a plain graph. JAX always
            compiles with XLA, PyTorch runs eagerly. Defaults to `True`.
        **settings: the method's hyperparameters (defaults in
            `keras_cd.forecasting.METHODS[method]`).

    Attributes:
        settings: dict, the method's hyperparameters, defaults filled in.
        split: `(train, validation, test)`, the snapshot indices of each part
            (`keras_cd.datasets.england_covid.temporal_split`).
        model: the Keras model trained by every run (none for `"linear"`).

    Raises:
        ValueError: for an invalid argument or setting, or data with too
            few days for non-empty training, validation and test parts.

    Example:
    On 30 days of synthetic cases in 5 regions, a few epochs of COIN:

    >>> import numpy as np, keras_cd
    >>> rng = np.random.default_rng(0)
    >>> cases = rng.poisson(20, (30, 5)).astype(float)  # 30 days, 5 regions
    >>> edges = [(np.arange(4), np.arange(1, 5), np.ones(4))] * 30  # one graph a day
    >>> data = keras_cd.datasets.CovidData(cases, edges)
    >>> trainer = keras_cd.forecasting.ForecastingTrainer(
    ...     data, "coin", epochs=3, missing_rate=0.5, jit_compile=False, num_steps=2)
    >>> [len(part) for part in trainer.split]  # train, validation, test snapshots
    [4, 4, 14]
    >>> run = trainer.run(split_seed=0, init_seed=0)
    >>> again = trainer.run(split_seed=0, init_seed=0)  # the same seeds: the same run
    >>> bool(np.isfinite(run.test_mse)), run.test_mse == again.test_mse
    (True, True)
    """

    def __init__(
        self,
        data: england_covid.CovidData,
        method: str = "coin",
        epochs: int = 100,
        missing_rate: float = 0.9,
        lags: int = 8,
        standardization: str = "training",
        jit_compile: bool = True,
        **settings: Any,
    ) -> None:
        self.data, self.method = data, method
        self.settings = settings_for(method, settings)
        self.epochs = _validation.positive_int("epochs", epochs, "Use e.g. 100.")
        self.jit_compile = _validation.boolean("jit_compile", jit_compile)
        self.missing_rate = _validation.rate("missing_rate", missing_rate, "Use e.g. 0.9.")
        self.lags = _validation.positive_int("lags", lags, "Use e.g. 8.")
        self.standardization = _validation.one_of(
            "standardization",
            standardization,
            STANDARDIZATIONS,
            "Use 'training' (no hidden or test value leaks in), or 'reference' to reproduce "
            "the reference code.",
        )
        count = max(data.num_days - self.lags, 0)
        self.split = england_covid.temporal_split(count) if count else ((), (), ())
        if any(len(part) == 0 for part in self.split):
            raise ValueError(
                f"Invalid value for `data`: {data.num_days} days give {count} "
                "snapshots, too few for non-empty train, validation and test parts. Use more "
                "days or fewer lags."
            )
        # Snapshot s reads days s .. s + lags: train and validation read the first
        # statistics_days days, the test snapshots' targets and later days are theirs alone.
        self.statistics_days = len(self.split[0]) + len(self.split[1]) + self.lags
        self.days = np.arange(count)
        self._parts = (*self.split, self.days)  # train, validation, test, every snapshot
        diffusion_off = method == "coin" and not self.settings["num_steps"]
        self.graph_kind = None if diffusion_off else GRAPHS[method]
        self._graphs = {}  # part -> union edge list (tf constants), built once
        self._masks = (None, None)
        self._last = None
        if method == "linear":
            return
        import keras

        from keras_cd._fit import CompiledRun

        self.model = self._build(0)
        self.optimizer = keras.optimizers.Adam(self.settings["learning_rate"])
        self.optimizer.build(self.model.trainable_variables)
        self._fresh_optimizer = _backend.numpy(list(self.optimizer.variables))
        self._fit = CompiledRun(
            self.model, self.optimizer, _masked_mse, self.epochs, jit_compile=self.jit_compile
        )
        self._predict = _backend.predictor(self.model)

    def copy(self) -> ForecastingTrainer:
        """A new trainer with the same data, method and settings (its own model).

        Returns:
            A `ForecastingTrainer`; `run_protocol` gives one to each worker.
        """
        return type(self)(
            self.data,
            self.method,
            self.epochs,
            self.missing_rate,
            self.lags,
            self.standardization,
            self.jit_compile,
            **self.settings,
        )

    def _build(self, seed):
        settings = {k: v for k, v in self.settings.items() if k != "learning_rate"}
        return forecasting_model(self.method, self.lags, seed=seed, **settings)

    def step_spectral_radius(self) -> float | None:
        """COIN's stability check: the largest spectral radius of I - sigma2 L over the days.

        The explicit diffusion step u <- (I - sigma2 L) u amplifies some
        component of u when the radius is > 1.

        Returns:
            float, or None for another method or COIN without diffusion.
        """
        if self.method != "coin" or not self.settings["num_steps"]:
            return None
        radius = 0.0
        for day in np.unique(self.days):
            laplacian = england_covid.mobility_laplacian(
                *self.data.edges[day], self.data.num_regions, format="dense"
            )
            eigenvalues = np.linalg.eigvals(laplacian.astype(np.float64))
            radius = max(radius, float(np.abs(1 - self.settings["sigma2"] * eigenvalues).max()))
        return radius

    def _graph(self, part):
        """The disjoint union of the graphs of one part's snapshots (tensors)."""
        if part not in self._graphs:
            from keras import ops

            from keras_cd.graph import disjoint_union

            regions = self.data.num_regions
            build = (
                england_covid.mobility_laplacian if self.graph_kind == "laplacian" else _propagation
            )
            graphs = [build(*self.data.edges[self.days[s]], regions) for s in self._parts[part]]
            union = disjoint_union(graphs, regions)
            self._graphs[part] = tuple(ops.convert_to_tensor(a) for a in union)
        return self._graphs[part]

    def _inputs(self, windows, part):
        """The model's inputs for one part.

        The features alone, or a list of the features and the union graph's
        edge list.
        """
        from keras import ops

        index = self._parts[part]
        features = ops.convert_to_tensor(
            windows.features[index].reshape(-1, self.lags).astype("float32")
        )
        if self.graph_kind is None:
            return features
        return [features, *self._graph(part)]

    def _reinitialize(self, init_seed):
        from keras_cd._protocol import restart

        restart(self.model, self._build(init_seed), self.optimizer, self._fresh_optimizer)

    def masking(self, split_seed: int) -> Masking:
        """The `Masking` of `split_seed`: mask, statistics, standardized values, snapshots.

        Computed once per seed (the last seed's is kept).

        Args:
            split_seed: int, the masking seed.

        Returns:
            A `Masking`.
        """
        if self._masks[0] != split_seed:
            cases = self.data.cases
            observed = england_covid.missing_mask(cases, self.missing_rate, split_seed)
            if self.standardization == "reference":
                mean, scale = england_covid.region_statistics(cases)
            else:
                mean, scale = england_covid.region_statistics(cases, observed, self.statistics_days)
            values = (cases - mean) / scale
            windows = england_covid.forecasting_windows(values, observed, self.lags)
            self._masks = (split_seed, Masking(observed, mean, scale, values, windows))
        return self._masks[1]

    def windows(self, split_seed: int) -> england_covid.Windows:
        """The snapshots under the mask of `split_seed` (computed once per seed).

        Args:
            split_seed: int, the masking seed.

        Returns:
            A `keras_cd.datasets.england_covid.Windows`.
        """
        return self.masking(split_seed).windows

    def _predictions(self, windows, part):
        index = self._parts[part]
        if self.method == "linear":
            features = windows.features[index].reshape(-1, self.lags)
            coefficients, intercept = self._linear
            return (features @ coefficients + intercept).reshape(len(index), -1)
        outputs = self._predict(self._inputs(windows, part))
        return _backend.numpy(outputs).reshape(len(index), -1)

    def run(self, split_seed: int, init_seed: int, evaluate_test: bool = True) -> RunResult:
        """One run on the mask of `split_seed` from the weights of `init_seed`.

        Args:
            split_seed: int, the masking seed.
            init_seed: int, the initialization seed (weights and dropout).
            evaluate_test: bool, whether to score the test snapshots
                (model selection passes False). Defaults to `True`.

        Returns:
            A `RunResult`.

        Raises:
            RunFailedError: the training loss, or the validation or test
                predictions, are not finite (nothing of the run is reported).
            ValueError: if a seed is not an integer.
        """
        split_seed = _validation.integer("split_seed", split_seed, "Use e.g. 0.")
        init_seed = _validation.integer("init_seed", init_seed, "Use e.g. 0.")
        start = time.perf_counter()
        self._last = None
        masking = self.masking(split_seed)
        windows = masking.windows
        train = self.split[0]
        epochs = self.epochs
        if self.method == "linear":  # ordinary least squares with an intercept
            seen = windows.observed[train]
            features = windows.features[train][seen].astype(np.float64)
            design = np.concatenate([features, np.ones((len(features), 1))], axis=1)
            solution = np.linalg.lstsq(design, windows.targets[train][seen], rcond=None)[0]
            self._linear = (solution[:-1], solution[-1])
            epochs = 1
        else:
            from keras import ops

            self._reinitialize(init_seed)
            seen = windows.observed[train]
            targets = (  # hidden targets are zeroed here: they never enter training
                ops.convert_to_tensor(np.where(seen, windows.targets[train], 0.0), "float32"),
                ops.convert_to_tensor(seen, "float32"),
            )
            ran, loss, _, _ = self._fit((self._inputs(windows, 0), targets))
            if not np.isfinite(loss):
                raise RunFailedError(split_seed, init_seed, ran, f"training loss = {loss}", _FIX)
        validation = self.split[1]
        predicted = self._predictions(windows, 1)
        if not np.all(np.isfinite(predicted)):
            raise RunFailedError(
                split_seed, init_seed, epochs, "the validation predictions are not finite", _FIX
            )
        seen = windows.observed[validation]
        errors = (predicted - windows.targets[validation]) ** 2
        validation_mse = float(np.mean([e[s].mean() for e, s in zip(errors, seen) if s.any()]))
        test_mse = test_mse_cases = None
        if evaluate_test:
            test = self.split[2]
            predicted = self._predictions(windows, 2)
            if not np.all(np.isfinite(predicted)):
                raise RunFailedError(
                    split_seed, init_seed, epochs, "the test predictions are not finite", _FIX
                )
            errors = predicted - windows.targets[test]
            test_mse = float((errors**2).mean(axis=1).mean())
            test_mse_cases = float(((errors * masking.scale) ** 2).mean(axis=1).mean())
        self._last = windows
        return RunResult(test_mse, test_mse_cases, validation_mse, time.perf_counter() - start)

    def predictions(self) -> np.ndarray:
        """The last run's predictions for every snapshot (train, validation and test).

        E.g. to plot them; standardized, as the run's targets.

        Returns:
            (snapshots, regions) float array.

        Raises:
            RuntimeError: before a run finished (a failed run leaves none).
        """
        if self._last is None:
            raise RuntimeError(
                "No finished run: call `run(split_seed, init_seed)` first (a failed run "
                "leaves no predictions)."
            )
        return self._predictions(self._last, 3)


# The deprecated name, removed in keras_cd 0.3.
__getattr__ = deprecated_aliases(__name__, {"ForecastRun": "RunResult"}, globals())
