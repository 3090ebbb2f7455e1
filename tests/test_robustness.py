"""keras_cd.robustness: attacks against closed forms, EOT, and the sweep's bookkeeping."""

import keras
import numpy as np
import pytest

from keras_cd import robustness as rb
from keras_cd.layers import DiffusionNoise

pytestmark = pytest.mark.tensorflow


def linear_classifier(weights, bias, noise=0.0, seed=0):
    """softmax(flatten(x) W + b) on (4, 4, 1) images, optionally behind input noise."""
    inputs = keras.Input((4, 4, 1))
    x = DiffusionNoise(noise, seed=seed)(inputs) if noise else inputs
    dense = keras.layers.Dense(weights.shape[1], activation="softmax")
    outputs = dense(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    dense.set_weights([weights.astype("float32"), bias.astype("float32")])
    return model


def binary_problem(count=300, seed=0):
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(16, 2))
    x = rng.uniform(0.3, 0.7, (count, 4, 4, 1)).astype("float32")  # the box never binds
    bias = -0.5 * weights.sum(axis=0)  # the decision boundary runs through the data
    logits = x.reshape(count, 16) @ weights + bias
    y = np.argmax(logits + rng.normal(scale=0.1, size=logits.shape), axis=1)
    return weights, bias, x, y


def closed_form_robust(weights, bias, x, y, eps):
    """Binary linear classifier under L-inf: robust iff the margin exceeds eps ||w_y - w_o||_1."""
    flat = x.reshape(len(x), -1)
    direction = weights[:, y] - weights[:, 1 - y]  # (16, N)
    margin = np.einsum("nd,dn->n", flat, direction) + bias[y] - bias[1 - y]
    return margin > eps * np.abs(direction).sum(axis=0)


def test_pgd_finds_the_worst_case_of_a_linear_classifier():
    weights, bias, x, y = binary_problem()
    defence = rb.Defence(linear_classifier(weights, bias))
    for eps in (0.01, 0.03):
        adversarial = rb.pgd(defence, x, y, eps, steps=10)
        expected = closed_form_robust(weights, bias, x, y, eps)
        assert 0.1 < expected.mean() < 0.95  # the test can tell attacks apart
        np.testing.assert_array_equal(defence.correct(adversarial, y), expected)
        assert np.abs(adversarial - x).max() <= eps + 1e-6
        assert adversarial.min() >= 0 and adversarial.max() <= 1


def test_square_is_sound_and_breaks_most_of_what_can_be_broken():
    weights, bias, x, y = binary_problem(count=120, seed=1)
    defence = rb.Defence(linear_classifier(weights, bias))
    eps = 0.05
    adversarial = rb.square(defence, x, y, eps, queries=200, seed=0)
    assert np.abs(adversarial - x).max() <= eps + 1e-6
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    robust = defence.correct(adversarial, y)
    possible = closed_form_robust(weights, bias, x, y, eps)
    clean = defence.correct(x, y)
    assert np.all(robust >= possible)  # never below the true optimum
    breakable = clean & ~possible
    assert (~robust[breakable]).mean() > 0.8  # no gradients needed


def test_restarts_can_only_lower_robust_accuracy():
    """An example broken by the first restart stays broken: the broken set grows."""
    weights, bias, x, y = binary_problem(count=300, seed=2)
    defence = rb.Defence(linear_classifier(weights, bias))
    # one short step from a random start: where the start lands decides
    one = rb.pgd(defence, x, y, 0.03, steps=1, restarts=1, seed=5)
    many = rb.pgd(defence, x, y, 0.03, steps=1, restarts=4, seed=5)
    broken_once, broken_many = ~defence.correct(one, y), ~defence.correct(many, y)
    assert np.all(broken_many[broken_once])  # the same first restart, kept once broken
    assert broken_many.sum() > broken_once.sum()  # later restarts break more
    assert np.abs(many - x).max() <= 0.03 + 1e-6


def test_eot_averages_the_gradient_noise_away():
    weights, bias, x, y = binary_problem(count=64, seed=3)
    defence = rb.Defence(linear_classifier(weights, bias, noise=0.5, seed=1), samples=8)
    spreads = []
    for samples in (1, 4, 16):
        draws = np.stack([defence.gradient(x, y, samples) for _ in range(12)])
        spreads.append(draws.std(axis=0).mean())
    # the loss of a mean over more passes: its gradient varies less and less
    # (for a mean of n independent draws the std would fall like n^-1/2)
    assert spreads[0] > spreads[1] > spreads[2] and spreads[2] < 0.35 * spreads[0]
    deterministic = rb.Defence(linear_classifier(weights, bias, noise=0.5, seed=1))
    np.testing.assert_array_equal(deterministic.gradient(x, y, 0), deterministic.gradient(x, y, 0))


def test_monte_carlo_scoring_is_the_mean_over_the_noise():
    weights, bias, x, _ = binary_problem(count=50, seed=4)
    noisy = linear_classifier(weights, bias, noise=0.4, seed=2)
    plain = rb.Defence(noisy, samples=0).probabilities(x)
    np.testing.assert_allclose(plain, noisy(x), rtol=1e-6)  # noise off
    means = np.stack([rb.Defence(noisy, samples=64).probabilities(x) for _ in range(4)])
    singles = np.stack([rb.Defence(noisy, samples=1).probabilities(x) for _ in range(4)])
    assert means.std(axis=0).mean() < 0.25 * singles.std(axis=0).mean()  # 64 passes: /8
    with pytest.raises(ValueError, match="Invalid value for `samples`"):
        rb.Defence(noisy, samples=-1)


def test_certified_accuracy_falls_with_the_radius():
    weights, bias, x, y = binary_problem(count=40, seed=5)
    model = linear_classifier(weights * 20, bias * 20)
    result = rb.certified_accuracy(model, x, y, 0.1, radii=(0.0, 0.05, 0.2, 1.0), n=200)
    values = list(result.values())
    assert values == sorted(values, reverse=True) and values[0] > 0.5 and values[-1] == 0.0


def test_summary_takes_each_seeds_minimum_over_attacks():
    records = [
        {"seed": 0, "defence": "d", "attack": "clean", "accuracy": 1.0},
        {"seed": 0, "defence": "d", "attack": "a", "accuracy": 0.6},
        {"seed": 0, "defence": "d", "attack": "b", "accuracy": 0.4},
        {"seed": 1, "defence": "d", "attack": "clean", "accuracy": 0.9},
        {"seed": 1, "defence": "d", "attack": "a", "accuracy": 0.2},
        {"seed": 1, "defence": "d", "attack": "b", "accuracy": 0.5},
    ]
    cells, worst = rb.summarize(records)
    assert cells[("d", "a")] == (pytest.approx(0.4), pytest.approx(0.2), 2)
    assert worst["d"] == (pytest.approx(0.3), pytest.approx(0.1), 2)  # minima 0.4 and 0.2


def test_attack_labels_and_the_default_sweep():
    attacks = rb.default_attacks(eps=0.05, scoring_samples=16)
    labels = [a.label for a in attacks]
    assert len(set(labels)) == len(labels)
    assert max(a.eot_samples for a in attacks) >= 16  # at least as many as the scoring
    assert {"square 300q", "transfer PGD-50 EOT0 R1", "PGD-200 EOT16 R1"} <= set(labels)


def test_the_quick_sweep_runs_end_to_end():
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, os.path.join(root, "benchmarks", "robustness.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert any(line.startswith("MINIMUM over attacks") for line in lines)
    assert any(line.startswith("certified accuracy (%)") for line in lines)
    for name in ("plain", "noise-trained 0.2 +MC", "CD 0.2"):
        assert name in result.stdout
