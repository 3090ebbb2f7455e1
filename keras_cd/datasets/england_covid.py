"""Daily COVID-19 cases on daily mobility graphs, most observations missing.

The England COVID dataset (Panagopoulos et al., "Transfer Graph Neural
Networks for Pandemic Forecasting", 2021; the COIN paper's case-prediction
experiment): new cases per day in 129 English NUTS3 regions over 61 days
(March to May 2020) and, for each day, a directed weighted graph of how many
people moved between regions. The file is the JSON of PyTorch Geometric
Temporal:
https://raw.githubusercontent.com/benedekrozemberczki/pytorch_geometric_temporal/master/dataset/england_covid.json

    {"time_periods": T, "y": [[cases per region] per day],
     "edge_mapping": {"edge_index": {"day": [[source, target], ...]},
                      "edge_weight": {"day": [weight, ...]}}}

In the paper (Wang, Bao & Shi, arXiv 2403.15726) COIN forecasts the next
day's cases by a base network whose prediction f(X) then diffuses over the
day's mobility graph, u_T = (I - sigma2 L)^K f(X): explicit steps of the
graph heat equation u_t = -L u, with L the day's `mobility_laplacian`.

The reference experiment (what `keras_cd.forecasting` runs), and where this
package departs from it:

1. Standardization, per region: z = (y - mean) / scale.
   `region_statistics(cases)` (the reference code, `standardization=
   "reference"` in `keras_cd.forecasting`): mean and std + 1e-10 of all
   61 days, hidden entries and the test period included, so hidden and
   test-period values shift every feature. `region_statistics(cases,
   observed, num_days)` (the default of `keras_cd.forecasting`): mean and
   std of the region's OBSERVED entries in the first `num_days` days only,
   the days whose values the training and validation snapshots read
   (num_days = train + validation snapshots + lags = 28); a region with
   fewer than 2 such entries, or no spread among them, takes the pooled
   mean and std of every region's observed entries in those days.
2. `missing_mask`: 90% of the (day, region) entries are hidden, drawn from
   `RandomState(seed)` and redrawn until every region keeps >= 2 observed
   values of nonzero spread.
3. `forecasting_windows`: snapshot s has the previous `lags` = 8 days of
   observed cases as each region's features (hidden entries 0, the
   region's mean), the next day as target, and the mobility graph of day s
   (the window's first day, as the PyTorch Geometric Temporal loader pairs
   them): 61 - 8 = 53 snapshots.
4. `temporal_split`: the first 20% of the snapshots train, 25% of the rest
   validate, the remaining test (10 / 10 / 33).
5. `mobility_laplacian`: the day's graph without self-loops,
   A_hat = D^-1/2 A D^-1/2 with D the row sums of A, L = diag(rowsum A_hat) - A_hat.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import TYPE_CHECKING

import numpy as np

from keras_cd import _validation

if TYPE_CHECKING:
    import scipy.sparse
    from numpy.typing import ArrayLike

# Where the original file is published (PyTorch Geometric Temporal).
URL = (
    "https://raw.githubusercontent.com/benedekrozemberczki/pytorch_geometric_temporal/"
    "master/dataset/england_covid.json"
)


@dataclasses.dataclass
class CovidData:
    """Cases per (day, region) and one directed weighted graph per day.

    Returned by `load_england_covid`; a dataclass, each argument kept as
    the attribute of the same name.

    Args:
        cases: (T, N) float64 array, new cases per day and region.
        edges: list of T edge lists `(sources, targets, weights)` (int64,
            int64 and float64 arrays): people moving from source to target
            region on each day.

    Example:
        >>> import numpy as np, keras_cd
        >>> edge = (np.array([0]), np.array([1]), np.array([12.0]))
        >>> data = keras_cd.datasets.CovidData(np.zeros((3, 2)), [edge] * 3)
        >>> data.num_days, data.num_regions
        (3, 2)
    """

    cases: np.ndarray  # (T, N) float64, new cases
    edges: list[
        tuple[np.ndarray, np.ndarray, np.ndarray]
    ]  # T tuples (sources, targets, weights): int64, int64, float64 arrays

    @property
    def num_days(self) -> int:
        """The number of days T."""
        return self.cases.shape[0]

    @property
    def num_regions(self) -> int:
        """The number of regions N."""
        return self.cases.shape[1]


def _malformed(path, what, fix="Re-download the file, or fix it to the layout above."):
    return ValueError(f"Malformed England COVID file {path!r}: {what}. {fix}")


def load_england_covid(path: str | os.PathLike) -> CovidData:
    """Reads a file in the England COVID JSON layout (see the module docstring).

    Works for the original file and for a user's own data in the same
    layout (any number of days, regions and edges).

    Args:
        path: str or path-like, the `.json` file.

    Returns:
        A `CovidData`: `cases` (T, N) and `edges`, T edge lists
        `(sources, targets, weights)` (people moving from source to target).

    Raises:
        FileNotFoundError: if there is no file at `path`.
        ValueError: if the file is not valid JSON or departs from the
            layout: keys missing, `y` not a non-empty table of finite
            non-negative numbers, `time_periods` not its number of days, a
            day without a graph, edges that are not pairs, a weight count
            that differs from the edge count, region ids out of range, or
            negative or non-finite weights.

    Example:
        >>> import json, os, tempfile, keras_cd
        >>> raw = {
        ...     "time_periods": 2,
        ...     "y": [[5, 0, 1], [7, 2, 0]],  # 2 days, 3 regions
        ...     "edge_mapping": {
        ...         "edge_index": {"0": [[0, 1], [1, 2]], "1": [[2, 0]]},
        ...         "edge_weight": {"0": [10.0, 4.0], "1": [3.0]},
        ...     },
        ... }
        >>> path = os.path.join(tempfile.mkdtemp(), "covid.json")
        >>> with open(path, "w") as handle:
        ...     json.dump(raw, handle)
        >>> data = keras_cd.datasets.load_england_covid(path)
        >>> data.num_days, data.num_regions
        (2, 3)
        >>> sources, targets, weights = data.edges[0]
        >>> sources.tolist(), targets.tolist(), weights.tolist()
        ([0, 1], [1, 2], [10.0, 4.0])
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No England COVID file at {path!r}. Download england_covid.json from {URL} "
            "and pass its path."
        )
    try:
        with open(path) as file:
            raw = json.load(file)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _malformed(path, f"not valid JSON (truncated?): {error}") from error
    if not isinstance(raw, dict) or not {"y", "edge_mapping"} <= set(raw):
        keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise _malformed(path, f"expected the keys 'y' and 'edge_mapping', found {keys}")
    try:
        cases = np.asarray(raw["y"], dtype=np.float64)
    except (ValueError, TypeError) as error:
        raise _malformed(
            path, f"'y' is not a (days, regions) table of numbers ({error})"
        ) from error
    if cases.ndim != 2 or cases.size == 0:
        raise _malformed(path, f"'y' must be a non-empty (days, regions) table, got {cases.shape}")
    if not np.all(np.isfinite(cases)) or np.any(cases < 0):
        raise _malformed(path, "'y' holds negative or non-finite case counts")
    days, regions = cases.shape
    if "time_periods" in raw and raw["time_periods"] != days:
        raise _malformed(path, f"time_periods = {raw['time_periods']} but 'y' has {days} days")
    mapping = raw["edge_mapping"]
    if not isinstance(mapping, dict) or not {"edge_index", "edge_weight"} <= set(mapping):
        raise _malformed(path, "'edge_mapping' needs 'edge_index' and 'edge_weight'")
    edges = []
    for day in range(days):
        key = str(day)
        if key not in mapping["edge_index"] or key not in mapping["edge_weight"]:
            raise _malformed(path, f"no graph for day {day} in 'edge_mapping'")
        try:
            index = np.asarray(mapping["edge_index"][key], dtype=np.int64).reshape(-1, 2)
            weights = np.asarray(mapping["edge_weight"][key], dtype=np.float64).ravel()
        except (ValueError, TypeError) as error:
            raise _malformed(
                path, f"day {day}'s edges are not [[source, target], ...] ({error})"
            ) from error
        if weights.shape[0] != index.shape[0]:
            raise _malformed(
                path, f"day {day} has {index.shape[0]} edges but {weights.shape[0]} weights"
            )
        if index.size and (index.min() < 0 or index.max() >= regions):
            raise _malformed(path, f"day {day} has region ids outside [0, {regions})")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise _malformed(path, f"day {day} has negative or non-finite edge weights")
        edges.append((index[:, 0], index[:, 1], weights))
    return CovidData(cases, edges)


def region_statistics(
    cases: ArrayLike, observed: ArrayLike | None = None, num_days: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Returns each region's (mean, scale) for standardizing: z = (y - mean) / scale.

    Two definitions:

    - `observed=None` (the reference code): mean and std of every value of
      every day; scale = std + 1e-10, so a constant region maps to 0, not NaN.
    - `observed` given: mean and std of the region's observed entries in the
      first `num_days` days (all days when None). A region with fewer than 2
      such entries, or with no spread among them, takes the pooled mean and
      std of every observed entry of every region in those days (scale 1 if
      even those have no spread). Values outside those days or hidden never
      change the result.

    Args:
        cases: (T, N) array of values.
        observed: optional (T, N) bool array, which entries may be read.
        num_days: optional int in [1, T], the days that may be read. Only
            with `observed`.

    Returns:
        `(mean, scale)`, two (N,) float64 arrays, scale > 0.

    Raises:
        ValueError: if `cases` is not a non-empty (T, N) array, `num_days` is
            given without `observed` or is not an int in [1, T], `observed` is
            not a boolean array of the shape of `cases`, or no entry of the
            first `num_days` days is observed.

    Example:
        >>> import numpy as np
        >>> import keras_cd.datasets.england_covid as covid
        >>> cases = np.array([[1.0, 0.0], [3.0, 2.0], [99.0, 4.0]])
        >>> observed = np.array([[True, True], [True, False], [True, True]])
        >>> mean, scale = covid.region_statistics(cases, observed, num_days=2)
        >>> mean.tolist(), scale.tolist()  # region 1: one entry, pooled (1, 3, 0)
        ([2.0, 1.3333333333333333], [1.0, 1.247219128924647])
    """
    cases = np.asarray(cases, dtype=np.float64)
    if cases.ndim != 2 or cases.shape[0] == 0:
        raise ValueError(
            f"Invalid value for `cases`: expected a non-empty (days, regions) array. "
            f"Received: shape {cases.shape}."
        )
    if observed is None:
        if num_days is not None:
            raise ValueError(
                f"Invalid value for `num_days`: it restricts the observed entries read, so it "
                f"needs `observed`. Received: num_days={num_days!r} with observed=None. Pass "
                "the mask too, or drop num_days for the reference statistics."
            )
        return cases.mean(axis=0), cases.std(axis=0) + 1e-10
    observed = np.asarray(observed)
    if observed.shape != cases.shape or observed.dtype != bool:
        raise ValueError(
            f"Invalid value for `observed`: expected a boolean array of shape {cases.shape}. "
            f"Received: {observed.dtype} array of shape {observed.shape}."
        )
    days = cases.shape[0]
    num_days = days if num_days is None else num_days
    num_days = _validation.positive_int("num_days", num_days, f"Use e.g. {days}.")
    if num_days > days:
        raise ValueError(
            f"Invalid value for `num_days`: expected at most the {days} days of `cases`. "
            f"Received: num_days={num_days}. Use num_days <= {days}."
        )
    values, seen = cases[:num_days], observed[:num_days]
    if not seen.any():
        raise ValueError(
            f"Invalid value for `observed`: no entry of the first {num_days} days is observed, "
            "so no statistic can be formed. Use a lower missing rate or more days."
        )
    pooled = values[seen]
    pooled_mean, pooled_std = pooled.mean(), pooled.std()
    pooled_std = pooled_std if pooled_std > 0 else 1.0
    mean = np.full(cases.shape[1], pooled_mean)
    scale = np.full(cases.shape[1], pooled_std)
    for region in range(cases.shape[1]):
        entries = values[seen[:, region], region]
        if entries.size >= 2 and entries.std() > 0:
            mean[region], scale[region] = entries.mean(), entries.std()
    return mean, scale


def standardize(
    cases: ArrayLike, observed: ArrayLike | None = None, num_days: int | None = None
) -> np.ndarray:
    """Returns the cases standardized per region (column): (y - mean) / scale.

    The mean and scale are `region_statistics`': with `cases` alone, the
    reference code's (y - mean) / (std + 1e-10) over all days; with
    `observed` (and `num_days`), statistics of the observed entries of the
    first `num_days` days only. Every value, hidden or not, is transformed
    (targets keep the truth for evaluation).

    Args:
        cases: (T, N) array of values.
        observed: optional (T, N) bool array, which entries the statistics
            may read. Defaults to `None` (every entry).
        num_days: optional int in [1, T], the days the statistics may read.
            Only with `observed`. Defaults to `None` (all days).

    Returns:
        A (T, N) float64 array.

    Raises:
        ValueError: as `region_statistics`.

    Example:
        >>> import numpy as np
        >>> import keras_cd.datasets.england_covid as covid
        >>> z = covid.standardize(np.array([[1.0, 5.0], [3.0, 5.0]]))
        >>> z.round(6).tolist()  # a constant region maps to 0
        [[-1.0, 0.0], [1.0, 0.0]]
    """
    cases = np.asarray(cases, dtype=np.float64)
    mean, scale = region_statistics(cases, observed, num_days)
    return (cases - mean) / scale


def missing_mask(
    cases: ArrayLike,
    missing_rate: float = 0.9,
    seed: int = 0,
    min_observed: int = 2,
    max_draws: int = 10_000,
) -> np.ndarray:
    """Draws which (day, region) entries are observed: a boolean (T, N) array.

    Exactly round(missing_rate * T * N) entries are hidden, chosen uniformly
    by `np.random.RandomState(seed)`; the draw is repeated (same generator)
    until every region keeps at least `min_observed` observed values that
    are not all equal, so that each region's series says something.

    Args:
        cases: (T, N) array, the values the spread is checked on.
        missing_rate: float in [0, 1), the fraction hidden. Defaults to `0.9`.
        seed: int, the mask's seed. Defaults to `0`.
        min_observed: int >= 1, observed values per region. Defaults to `2`.
        max_draws: int, draws before giving up with an error. Defaults to
            `10_000`.

    Returns:
        A (T, N) bool array, True where observed.

    Raises:
        ValueError: if `cases` is not 2-D, `missing_rate` is not in [0, 1),
            `seed` is not an int, `min_observed` is not an int >= 1, fewer
            than `min_observed` entries per region would stay observed, or
            no draw out of `max_draws` meets the conditions.

    Example:
        >>> import numpy as np
        >>> import keras_cd.datasets.england_covid as covid
        >>> cases = np.arange(40.0).reshape(10, 4)  # 10 days, 4 regions
        >>> observed = covid.missing_mask(cases, missing_rate=0.5, seed=0)
        >>> int(observed.sum()), bool(np.all(observed.sum(axis=0) >= 2))  # 20 of 40 hidden
        (20, True)
    """
    cases = np.asarray(cases)
    if cases.ndim != 2:
        raise ValueError(
            f"Invalid value for `cases`: expected a (days, regions) array. "
            f"Received: shape {cases.shape}."
        )
    missing_rate = _validation.rate("missing_rate", missing_rate, "Use e.g. 0.9.")
    seed = _validation.integer("seed", seed, "Use e.g. 0.")
    min_observed = _validation.positive_int("min_observed", min_observed, "Use e.g. 2.")
    days, regions = cases.shape
    hidden = int(round(missing_rate * days * regions))
    if days * regions - hidden < min_observed * regions:
        raise ValueError(
            f"Invalid value for `missing_rate`: {missing_rate} leaves {days * regions - hidden} "
            f"observed entries, fewer than min_observed = {min_observed} for each of {regions} "
            "regions. Use a lower missing_rate."
        )
    rng = np.random.RandomState(seed)
    for _ in range(max_draws):
        observed = np.ones(days * regions, dtype=bool)
        observed[rng.permutation(days * regions)[:hidden]] = False
        observed = observed.reshape(days, regions)
        if np.all(observed.sum(axis=0) >= min_observed) and all(
            np.ptp(cases[observed[:, r], r]) > 0 for r in range(regions)
        ):
            return observed
    raise ValueError(
        f"No mask with >= {min_observed} observed values of nonzero spread in every region "
        f"after {max_draws} draws (missing_rate {missing_rate}). Some region's series is "
        "(nearly) constant: drop it, or use a lower missing_rate."
    )


@dataclasses.dataclass
class Windows:
    """Forecasting snapshots: features, targets and which targets are observed.

    Returned by `forecasting_windows`; S snapshots of N regions. A
    dataclass, each argument kept as the attribute of the same name; see
    `forecasting_windows` for an example.

    Args:
        features: (S, N, lags) float32 array, the observed values of the
            previous `lags` days (hidden entries 0, the region's mean).
        targets: (S, N) float32 array, the true values of the next day
            (observed or not).
        observed: (S, N) bool array, whether each target was observed.
        days: (S,) int array, the day whose graph goes with each snapshot.

    Example:
        >>> import numpy as np
        >>> import keras_cd
        >>> windows = keras_cd.datasets.forecasting_windows(
        ...     np.arange(10.0).reshape(5, 2), np.ones((5, 2), bool), lags=2
        ... )
        >>> isinstance(windows, keras_cd.datasets.Windows), windows.targets.shape
        (True, (3, 2))
        >>> windows.days.tolist()  # snapshot s: days s, s + 1 -> day s + 2, on day s's graph
        [0, 1, 2]
    """

    features: np.ndarray  # (S, N, lags) float32, hidden entries 0 (the region's mean)
    targets: np.ndarray  # (S, N) float32, the true values (observed or not)
    observed: np.ndarray  # (S, N) bool, whether each target was observed
    days: np.ndarray  # (S,) int, the day whose graph goes with each snapshot


def forecasting_windows(values: ArrayLike, observed: ArrayLike, lags: int = 8) -> Windows:
    """Cuts a series into snapshots: days s .. s + lags - 1 as features, day s + lags as target.

    Args:
        values: (T, N) array, e.g. `standardize(cases)`.
        observed: (T, N) bool array from `missing_mask` (all True for none).
        lags: int >= 1, days of history per snapshot. Defaults to `8`.

    Returns:
        `Windows` of T - lags snapshots. Features are `values * observed`, so
        a hidden value never reaches the model; targets keep every true value
        (for evaluation) and `observed` says which ones a loss may read.

    Raises:
        ValueError: if `lags` is not an int >= 1, `observed` is not a
            boolean array of the shape of `values`, or `values` is not
            (T, N) with T > lags.

    Example:
        >>> import numpy as np
        >>> import keras_cd.datasets.england_covid as covid
        >>> values = np.arange(10.0).reshape(5, 2)  # 5 days, 2 regions
        >>> observed = np.ones((5, 2), bool)
        >>> observed[1, 0] = False  # day 1 of region 0 is hidden
        >>> windows = covid.forecasting_windows(values, observed, lags=2)
        >>> windows.features.shape, windows.targets.shape
        ((3, 2, 2), (3, 2))
        >>> windows.features[0].tolist()  # days 0, 1 of each region; hidden -> 0
        [[0.0, 0.0], [1.0, 3.0]]
        >>> windows.targets[0].tolist()  # day 2
        [4.0, 5.0]
    """
    values = np.asarray(values, dtype=np.float64)
    observed = np.asarray(observed)
    lags = _validation.positive_int("lags", lags, "Use e.g. 8.")
    if observed.shape != values.shape or observed.dtype != bool:
        raise ValueError(
            f"Invalid value for `observed`: expected a boolean array of shape {values.shape}. "
            f"Received: {observed.dtype} array of shape {observed.shape}."
        )
    if values.ndim != 2 or values.shape[0] <= lags:
        raise ValueError(
            f"Invalid value for `values`: expected (days, regions) with more than lags = {lags} "
            f"days. Received: shape {values.shape}."
        )
    count = values.shape[0] - lags
    seen = np.where(observed, values, 0.0)
    features = np.stack([seen[s : s + lags].T for s in range(count)])
    return Windows(
        features.astype(np.float32),
        values[lags:].astype(np.float32),
        observed[lags:].copy(),
        np.arange(count),
    )


def temporal_split(
    num_snapshots: int, train_ratio: float = 0.2, validation_ratio: float = 0.25
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Splits snapshot indices into (train, validation, test), in time order.

    The first int(train_ratio * S) snapshots train; of the rest, the first
    int(validation_ratio * rest) validate and the others test, as two
    successive `temporal_signal_split`s of PyTorch Geometric Temporal.

    Args:
        num_snapshots: int >= 1, S.
        train_ratio: float, the share of training snapshots. Defaults to
            `0.2`.
        validation_ratio: float, the share of the remaining snapshots that
            validate. Defaults to `0.25`.

    Returns:
        `(train, validation, test)`: three int arrays of consecutive indices.

    Raises:
        ValueError: if `num_snapshots` is not an int >= 1.

    Example:
        >>> import keras_cd.datasets.england_covid as covid
        >>> train, validation, test = covid.temporal_split(53)  # the 61 - 8 snapshots
        >>> len(train), len(validation), len(test), int(test[0])
        (10, 10, 33, 20)
    """
    num_snapshots = _validation.positive_int("num_snapshots", num_snapshots, "Use e.g. 53.")
    train = int(train_ratio * num_snapshots)
    validation = int(validation_ratio * (num_snapshots - train))
    index = np.arange(num_snapshots)
    return index[:train], index[train : train + validation], index[train + validation :]


def mobility_laplacian(
    sources: ArrayLike,
    targets: ArrayLike,
    weights: ArrayLike,
    num_regions: int,
    format: str = "edges",
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | np.ndarray | scipy.sparse.csr_matrix:
    """The protocol's Laplacian of one day's directed graph.

    A[i, j] = the weight of the edge i -> j (duplicates summed, self-loops
    dropped), D = diag(row sums of A), A_hat = D^-1/2 A D^-1/2 and
    L = diag(rowsum A_hat) - A_hat: `keras_cd.graph.laplacian(A, "coin",
    self_loops=False)`. L 1 = 0, so a diffusion step u - sigma2 L u keeps
    constants; L is not symmetric (the graph is directed), so only the
    explicit scheme applies.

    Args:
        sources: (E,) int array, the source region of each edge.
        targets: (E,) int array, the target region of each edge.
        weights: (E,) float array, the people moving along each edge.
        num_regions: int, N.
        format: `"edges"`, `"dense"` or `"scipy"`, as in
            `keras_cd.graph.laplacian`. Defaults to `"edges"`.

    Returns:
        The (N, N) Laplacian L in the chosen `format`.

    Example:
        >>> import numpy as np
        >>> import keras_cd.datasets.england_covid as covid
        >>> L = covid.mobility_laplacian([0, 1, 1], [1, 2, 1], [4.0, 1.0, 9.0], 3, "dense")
        >>> bool(np.allclose(L.sum(axis=1), 0, atol=1e-6))  # L 1 = 0; the self-loop is dropped
        True
    """
    import scipy.sparse as sp

    from keras_cd.graph import laplacian

    sources, targets = np.asarray(sources), np.asarray(targets)
    keep = sources != targets
    adjacency = sp.csr_matrix(
        (np.asarray(weights, dtype=np.float64)[keep], (sources[keep], targets[keep])),
        shape=(num_regions, num_regions),
    )
    return laplacian(adjacency, "coin", self_loops=False, format=format)
