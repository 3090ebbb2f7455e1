"""keras_cd.datasets.england_covid: loading, masking, windowing and the daily Laplacian."""

import json
import os

import numpy as np
import pytest

from keras_cd.datasets import england_covid, load_england_covid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REAL = os.path.join(
    os.environ.get("KERAS_CD_DATA", os.path.join(ROOT, "..", "shared", "data")),
    "england_covid.json",
)


def write_covid(path, days=30, regions=12, seed=0, **overrides):
    """A synthetic file in the England COVID layout: smooth epidemic curves per
    region (so a forecaster has something to learn) and random daily graphs."""
    rng = np.random.default_rng(seed)
    time = np.arange(days)[:, None]
    peak, scale = rng.uniform(0.3, 0.7, regions) * days, rng.uniform(5, 40, regions)
    cases = rng.poisson(scale * np.exp(-(((time - peak) / (0.25 * days)) ** 2)))
    edge_index, edge_weight = {}, {}
    for day in range(days):
        pairs = rng.integers(0, regions, (4 * regions, 2))
        edge_index[str(day)] = pairs.tolist()
        edge_weight[str(day)] = rng.uniform(1, 100, len(pairs)).round(1).tolist()
    raw = {
        "time_periods": days,
        "y": cases.tolist(),
        "edge_mapping": {"edge_index": edge_index, "edge_weight": edge_weight},
    }
    raw.update(overrides)
    with open(path, "w") as file:
        json.dump(raw, file)
    return path


def test_loads_the_layout(tmp_path):
    data = load_england_covid(write_covid(tmp_path / "covid.json", days=20, regions=7))
    assert data.cases.shape == (20, 7) and data.num_days == 20 and data.num_regions == 7
    assert len(data.edges) == 20
    sources, targets, weights = data.edges[3]
    raw = json.load(open(tmp_path / "covid.json"))
    np.testing.assert_array_equal(
        np.stack([sources, targets], 1), raw["edge_mapping"]["edge_index"]["3"]
    )
    np.testing.assert_array_equal(weights, raw["edge_mapping"]["edge_weight"]["3"])


def _corrupt(tmp_path, edit):
    path = write_covid(tmp_path / "covid.json", days=12, regions=5)
    raw = json.load(open(path))
    edit(raw)
    with open(path, "w") as file:
        json.dump(raw, file)
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda raw: raw.pop("y"), "expected the keys 'y' and 'edge_mapping'"),
        (lambda raw: raw["y"].__setitem__(2, [1, 2]), "'y' is not a \\(days, regions\\) table"),
        (lambda raw: raw["y"][0].__setitem__(0, -3), "negative or non-finite case counts"),
        (lambda raw: raw.__setitem__("time_periods", 13), "time_periods = 13 but 'y' has 12"),
        (lambda raw: raw["edge_mapping"]["edge_index"].pop("11"), "no graph for day 11"),
        (
            lambda raw: raw["edge_mapping"]["edge_weight"]["4"].pop(),
            "day 4 has 20 edges but 19 weights",
        ),
        (
            lambda raw: raw["edge_mapping"]["edge_index"]["2"].__setitem__(0, [0, 5]),
            "day 2 has region ids outside \\[0, 5\\)",
        ),
        (
            lambda raw: raw["edge_mapping"]["edge_weight"]["1"].__setitem__(0, -1),
            "day 1 has negative or non-finite edge weights",
        ),
    ],
)
def test_malformed_files_are_named(tmp_path, edit, message):
    with pytest.raises(ValueError, match="Malformed England COVID file .*" + message):
        load_england_covid(_corrupt(tmp_path, edit))


def test_truncated_and_missing_files(tmp_path):
    path = write_covid(tmp_path / "covid.json")
    text = open(path).read()
    with open(path, "w") as file:
        file.write(text[: len(text) // 2])
    with pytest.raises(ValueError, match="not valid JSON \\(truncated\\?\\)"):
        load_england_covid(path)
    with pytest.raises(FileNotFoundError, match="Download england_covid.json from https://"):
        load_england_covid(tmp_path / "absent.json")


def test_standardize_per_region():
    cases = np.random.default_rng(0).poisson(5, (40, 6)).astype(float)
    cases[:, 2] = 7.0  # a constant region: (y - mean) / 1e-10 = 0, not nan
    z = england_covid.standardize(cases)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(np.delete(z.std(axis=0), 2), 1, rtol=1e-9)
    assert np.all(z[:, 2] == 0)


def test_region_statistics_read_only_the_observed_entries_of_the_first_days():
    """Closed form: each region's mean and std of its observed entries in the first
    num_days days; the pooled ones for a region with < 2 such entries or no spread."""
    rng = np.random.default_rng(4)
    cases = rng.poisson(6, (30, 7)).astype(float)
    observed = rng.random((30, 7)) < 0.4
    observed[:12, 0] = [True] + [False] * 11  # one entry: pooled
    observed[:12, 1] = False  # none: pooled
    cases[:12, 2], observed[:12, 2] = 3.0, True  # constant: pooled
    mean, scale = england_covid.region_statistics(cases, observed, num_days=12)
    pooled = cases[:12][observed[:12]]
    for region in range(7):
        entries = cases[:12, region][observed[:12, region]]
        if region < 3:
            assert (mean[region], scale[region]) == pytest.approx((pooled.mean(), pooled.std()))
        else:
            assert entries.size >= 2 and entries.std() > 0
            assert (mean[region], scale[region]) == pytest.approx((entries.mean(), entries.std()))
    # Hidden entries and every value after day 12 never change them.
    changed = cases.copy()
    changed[~observed] += 1000.0
    changed[12:] = rng.poisson(50, (18, 7))
    again = england_covid.region_statistics(changed, observed, num_days=12)
    np.testing.assert_array_equal(again[0], mean)
    np.testing.assert_array_equal(again[1], scale)
    z = england_covid.standardize(changed, observed, 12)
    np.testing.assert_allclose(z, (changed - mean) / scale)
    # No spread anywhere: scale 1 (never a division by 0).
    flat = england_covid.region_statistics(np.ones((5, 3)), np.ones((5, 3), bool), 4)
    np.testing.assert_array_equal(flat[1], 1.0)
    # Without a mask: the reference code's statistics of every day.
    mean, scale = england_covid.region_statistics(cases)
    np.testing.assert_array_equal(mean, cases.mean(axis=0))
    np.testing.assert_array_equal(scale, cases.std(axis=0) + 1e-10)
    with pytest.raises(ValueError, match="Invalid value for `num_days`: .* needs `observed`"):
        england_covid.region_statistics(cases, num_days=12)
    with pytest.raises(ValueError, match="Invalid value for `num_days`: expected at most the 30"):
        england_covid.region_statistics(cases, observed, num_days=31)
    with pytest.raises(ValueError, match="no entry of the first 12 days is observed"):
        england_covid.region_statistics(cases, np.zeros((30, 7), bool), num_days=12)


def test_the_mask_hides_the_rate_and_keeps_two_distinct_values_per_region():
    cases = np.random.default_rng(1).poisson(3, (61, 129)).astype(float)
    for seed in range(5):
        observed = england_covid.missing_mask(cases, 0.9, seed)
        assert observed.shape == cases.shape and observed.dtype == bool
        assert (~observed).sum() == round(0.9 * cases.size)  # exactly the rate
        assert observed.sum(axis=0).min() >= 2
        assert all(np.ptp(cases[observed[:, r], r]) > 0 for r in range(129))
    np.testing.assert_array_equal(
        england_covid.missing_mask(cases, 0.9, 3), england_covid.missing_mask(cases, 0.9, 3)
    )
    assert (
        england_covid.missing_mask(cases, 0.9, 3) != england_covid.missing_mask(cases, 0.9, 4)
    ).any()


def test_the_mask_redraws_until_every_region_has_spread_or_says_why():
    cases = np.zeros((40, 3))
    cases[[5, 30], 1] = 1.0  # region 1 varies on two days only: one of them must be observed
    cases[:, 0] = np.arange(40)
    cases[:, 2] = np.arange(40) % 2
    observed = england_covid.missing_mask(cases, 0.5, 0, max_draws=100_000)
    assert observed[5, 1] or observed[30, 1]
    assert np.ptp(cases[observed[:, 1], 1]) > 0
    cases[:, 1] = 4.0  # constant: no draw can give it spread
    with pytest.raises(ValueError, match="nonzero spread in every region after 50 draws"):
        england_covid.missing_mask(cases, 0.5, 0, max_draws=50)
    with pytest.raises(ValueError, match="Invalid value for `missing_rate`"):
        england_covid.missing_mask(cases, 0.99, 0)


def test_windows_hide_every_masked_value():
    values = np.random.default_rng(2).normal(size=(20, 5))
    observed = np.random.default_rng(3).random((20, 5)) < 0.3
    poisoned = np.where(observed, values, np.nan)  # a hidden value would show as nan
    windows = england_covid.forecasting_windows(np.where(observed, values, 0.0), observed, lags=8)
    poisoned_windows = england_covid.forecasting_windows(np.nan_to_num(poisoned), observed, 8)
    assert windows.features.shape == (12, 5, 8) and windows.targets.shape == (12, 5)
    np.testing.assert_array_equal(windows.features, poisoned_windows.features)
    for s in range(12):
        for k in range(8):
            expected = np.where(observed[s + k], values[s + k], 0)
            np.testing.assert_allclose(windows.features[s, :, k], expected, rtol=1e-6)
    full = england_covid.forecasting_windows(values, observed, 8)
    np.testing.assert_allclose(full.targets, values[8:], rtol=1e-6)  # targets keep the truth
    np.testing.assert_array_equal(full.observed, observed[8:])
    np.testing.assert_array_equal(full.days, np.arange(12))
    features_only_see_observed = np.isnan(
        england_covid.forecasting_windows(poisoned, observed, 8).features
    )
    assert not features_only_see_observed.any()


def test_temporal_split_is_the_reference_one():
    train, validation, test = england_covid.temporal_split(53)
    assert (len(train), len(validation), len(test)) == (10, 10, 33)
    np.testing.assert_array_equal(np.concatenate([train, validation, test]), np.arange(53))


def test_the_laplacian_of_a_small_directed_graph():
    # 0 -> 1 (weights 2 and 1: summed), 1 -> 2, 2 -> 0, and a self-loop 1 -> 1 (dropped)
    sources, targets, weights = [0, 0, 1, 2, 1], [1, 1, 2, 0, 1], [2.0, 1.0, 1.0, 4.0, 5.0]
    L = england_covid.mobility_laplacian(sources, targets, weights, 3, format="dense")
    # A = [[0,3,0],[0,0,1],[4,0,0]], row sums d = (3, 1, 4), A_hat_ij = A_ij / sqrt(d_i d_j)
    a01, a12, a20 = 3 / np.sqrt(3 * 1), 1 / np.sqrt(1 * 4), 4 / np.sqrt(4 * 3)
    expected = np.array([[a01, -a01, 0], [0, a12, -a12], [-a20, 0, a20]])
    np.testing.assert_allclose(L, expected, rtol=1e-6)
    np.testing.assert_allclose(L.sum(axis=1), 0, atol=1e-6)  # L 1 = 0: constants are kept


@pytest.mark.skipif(not os.path.isfile(REAL), reason=f"England COVID data not found at {REAL}")
def test_the_real_file():
    data = load_england_covid(REAL)
    assert data.cases.shape == (61, 129) and len(data.edges) == 61
    windows = england_covid.forecasting_windows(
        england_covid.standardize(data.cases), england_covid.missing_mask(data.cases, 0.9, 42)
    )
    assert windows.features.shape == (53, 129, 8)
    # explicit steps of 0.5 are stable on every day's graph: |1 - 0.5 lambda| <= 1
    for day in range(61):
        L = england_covid.mobility_laplacian(*data.edges[day], 129, format="dense")
        assert np.abs(1 - 0.5 * np.linalg.eigvals(L.astype(float))).max() <= 1 + 1e-6
