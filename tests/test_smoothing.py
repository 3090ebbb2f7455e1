"""Randomized smoothing against closed forms (Cohen, Rosenfeld & Kolter, 2019)."""

import keras
import numpy as np
import pytest
from scipy.stats import binomtest, norm

from keras_cd.smoothing import (
    ABSTAIN,
    SmoothedClassifier,
    certify_from_counts,
    gaussian_smoothing,
    predict_from_counts,
)

W, B = np.array([3.0, 4.0]), -1.0  # class 1 iff w.x + b > 0; ||w|| = 5


def linear_classifier():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.layers[0].set_weights([np.stack([np.zeros(2), W], axis=1), np.array([0.0, B])])
    return model


POINTS = np.array([[1.0, 0.0], [0.0, 0.0], [0.2, 0.1], [0.5, 0.5], [-0.4, 0.2], [0.3, 0.1]])


def test_smoothed_class_probability_of_a_linear_classifier_is_phi_of_the_margin():
    sigma, n = 0.5, 200_000
    counts = SmoothedClassifier(
        linear_classifier(), sigma, 2, batch_size=20_000, seed=0
    ).sample_counts(POINTS, n)
    assert np.all(counts.sum(axis=1) == n)
    p = norm.cdf((POINTS @ W + B) / (sigma * np.linalg.norm(W)))
    np.testing.assert_array_less(
        np.abs(counts[:, 1] / n - p), 4.5 * np.sqrt(p * (1 - p) / n) + 1e-9
    )


def test_certified_radius_tends_to_the_distance_to_the_decision_boundary():
    sigma, alpha = 0.5, 0.001
    distance = np.abs(POINTS @ W + B) / np.linalg.norm(W)
    smoothed = SmoothedClassifier(linear_classifier(), sigma, 2, batch_size=50_000, seed=1)
    gaps = []
    for n in (1_000, 100_000):
        classes, radii = smoothed.certify(POINTS, n0=100, n=n, alpha=alpha)
        inside = classes != ABSTAIN
        assert np.all(classes[inside] == (POINTS[inside] @ W + B > 0))
        assert np.all(radii[inside] <= distance[inside] + 1e-9)  # sound: a lower bound
        assert np.all(radii[~inside] == 0)
        gaps.append(np.max(distance[inside] - radii[inside]))
    assert gaps[1] < gaps[0] / 2 and gaps[1] < 0.06
    # The point on the boundary (w.x + b = 0) is never certified.
    assert classes[2] == ABSTAIN


def test_gaussian_smoothing_of_a_quadratic_has_a_closed_form():
    q = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]], "float32")

    class Quadratic(keras.layers.Layer):
        def call(self, x):
            return keras.ops.sum(x * keras.ops.matmul(x, q), axis=-1, keepdims=True)

    inputs = keras.Input((3,))
    model = keras.Model(inputs, Quadratic()(inputs))
    x = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5]], "float32")
    sigma = 0.7
    mean, error = gaussian_smoothing(model, x, sigma, 200_000, batch_size=50_000, seed=3)
    # E[(x + s e)^T Q (x + s e)] = x^T Q x + s^2 tr(Q): the heat semigroup at t = s^2 / 2.
    exact = np.einsum("ni,ij,nj->n", x, q, x) + sigma**2 * np.trace(q)
    np.testing.assert_array_less(np.abs(mean[:, 0] - exact), 4.5 * error[:, 0])
    assert np.all(error > 0)


def test_inputs_may_be_backend_tensors_that_carry_gradients():
    # Another layer's output: on PyTorch a tensor that requires grad, which NumPy refuses.
    tensor = keras.layers.Dense(2)(POINTS.astype("float32"))
    x = keras.ops.convert_to_numpy(tensor)

    def smoothed():
        return SmoothedClassifier(linear_classifier(), 0.5, 2, batch_size=1000, seed=0)

    for a, b in zip(
        smoothed().certify(tensor, 100, 1000, 0.01), smoothed().certify(x, 100, 1000, 0.01)
    ):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        gaussian_smoothing(linear_classifier(), tensor, 0.5, 100, seed=0)[0],
        gaussian_smoothing(linear_classifier(), x, 0.5, 100, seed=0)[0],
    )


def test_monte_carlo_error_shrinks_like_one_over_sqrt_n():
    smoothed = SmoothedClassifier(linear_classifier(), 0.5, 2, batch_size=64_000, seed=4)
    x = np.repeat(POINTS[3:4], 40, axis=0)  # 40 independent estimates of one probability
    p = norm.cdf((POINTS[3] @ W + B) / 2.5)
    sizes = np.array([250, 1_000, 4_000, 16_000])
    errors = [
        np.sqrt(np.mean((smoothed.sample_counts(x, int(n))[:, 1] / n - p) ** 2)) for n in sizes
    ]
    slope = np.polyfit(np.log(sizes), np.log(errors), 1)[0]
    assert -0.65 < slope < -0.35, (slope, errors)


def test_predict_abstains_exactly_when_the_binomial_test_says_so():
    alpha = 0.05
    for n_a in range(45, 80):
        counts = np.array([[100 - n_a, n_a, 0]])
        expected = 1 if binomtest(n_a, 100, 0.5).pvalue <= alpha and n_a > 50 else ABSTAIN
        assert predict_from_counts(counts, alpha)[0] == expected
    assert predict_from_counts(np.array([[59, 41, 0]]), alpha)[0] == ABSTAIN  # p = 0.089
    assert predict_from_counts(np.array([[62, 38, 0]]), alpha)[0] == 0  # p = 0.021
    smoothed = SmoothedClassifier(linear_classifier(), 0.5, 2, seed=5)
    assert list(smoothed.predict(POINTS[:3], 2_000, alpha=0.001)) == [1, 0, ABSTAIN]


def clopper_pearson_lower(k, n, alpha):
    """The one-sided lower bound from its definition, independently of beta.ppf:
    the p at which seeing k or more successes in n has probability alpha."""
    from scipy.optimize import brentq
    from scipy.stats import binom

    if k == 0:
        return 0.0
    return brentq(lambda p: binom.sf(k - 1, n, p) - alpha, 1e-12, 1 - 1e-12, xtol=1e-14)


def test_certify_radius_when_all_samples_agree_is_the_closed_form():
    # All n samples agree: P(X >= n | p) = p^n = alpha, so the bound is alpha^(1/n).
    for n, alpha, sigma in [(100, 0.001, 0.25), (1000, 0.01, 0.5), (10, 0.2, 1.0)]:
        classes, radii = certify_from_counts(np.array([2]), np.array([n]), n, alpha, sigma)
        assert classes[0] == 2 and radii[0] == pytest.approx(
            sigma * norm.ppf(alpha ** (1 / n)), rel=1e-9
        )


def test_certify_abstains_exactly_when_the_clopper_pearson_bound_is_below_one_half():
    n, alpha = 1000, 0.01
    for n_a in range(480, 600, 3):
        lower = clopper_pearson_lower(n_a, n, alpha)
        classes, radii = certify_from_counts(np.array([3]), np.array([n_a]), n, alpha, sigma=0.25)
        if lower > 0.5:
            assert classes[0] == 3 and radii[0] == pytest.approx(0.25 * norm.ppf(lower), rel=1e-7)
        else:
            assert classes[0] == ABSTAIN and radii[0] == 0


def test_works_for_any_keras_classifier_and_is_reproducible():
    model = keras.Sequential(
        [
            keras.Input((4, 4, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 1)).astype("float32")
    first = SmoothedClassifier(model, 0.3, 3, batch_size=64, seed=9).predict_proba(x, 500)
    again = SmoothedClassifier(model, 0.3, 3, batch_size=64, seed=9).predict_proba(x, 500)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first.sum(axis=1), 1.0, rtol=1e-5)
    logits = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    logits.set_weights(model.get_weights())
    from_logits = SmoothedClassifier(
        logits, 0.3, 3, batch_size=64, seed=9, from_logits=True
    ).predict_proba(x, 500)
    np.testing.assert_allclose(from_logits, first, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sigma": 0.0}, "`sigma`"),
        ({"sigma": -1.0}, "`sigma`"),
        ({"sigma": float("nan")}, "`sigma`"),
        ({"num_classes": 1}, "`num_classes`"),
        ({"batch_size": 0}, "`batch_size`"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    arguments = {"model": linear_classifier(), "sigma": 0.5, "num_classes": 2, **kwargs}
    with pytest.raises(ValueError, match=f"Invalid value for {message}"):
        SmoothedClassifier(**arguments)


def test_bad_call_arguments():
    smoothed = SmoothedClassifier(linear_classifier(), 0.5, 2, seed=0)
    with pytest.raises(ValueError, match=r"n0 <= n.*n0=200, n=100"):
        smoothed.certify(POINTS, n0=200, n=100, alpha=0.01)
    for alpha in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="Invalid value for `alpha`"):
            smoothed.certify(POINTS, n0=10, n=100, alpha=alpha)
        with pytest.raises(ValueError, match="Invalid value for `alpha`"):
            smoothed.predict(POINTS, 100, alpha=alpha)
    with pytest.raises(ValueError, match="Invalid value for `num_samples`"):
        smoothed.predict_proba(POINTS, 0)
    with pytest.raises(ValueError, match=r"Invalid value for `x`.*x\[None\]"):
        smoothed.sample_counts(POINTS[0], 10)
    with pytest.raises(ValueError, match="Invalid value for `model`"):
        SmoothedClassifier(lambda x: x, 0.5, 2)
