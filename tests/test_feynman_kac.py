"""The Feynman-Kac claim, checked against a closed form.

With the residual branch fixed to the linear velocity field F(x) = A x, a
stack of K DenseCDBlocks with dt = T / K is the Euler-Maruyama scheme for the
Ornstein-Uhlenbeck process dX = A X dt + sigma dW. Its law is Gaussian,
X_T ~ N(exp(A T) x, Sigma_T) with Sigma_T = int_0^T exp(A s) sigma^2
exp(A^T s) ds, so for the quadratic g(x) = x^T Q x the solution of the
convection-diffusion equation

    u_t = (A x) . grad u + (sigma^2 / 2) Laplacian u,    u(., 0) = g

is u(x, T) = E[g(X_T)] = m^T Q m + tr(Q Sigma_T), m = exp(A T) x. The
Monte-Carlo mean of g over the network's own noise must converge to it with
weak order 1 in dt.
"""

import numpy as np
import pytest
from keras.ops import convert_to_numpy
from scipy.linalg import expm

import keras_cd

A = np.array([[-1.0, 2.0], [-2.0, -0.5]])
Q = np.array([[1.0, 0.3], [0.3, 2.0]])
SIGMA, T = 0.6, 1.0
X0 = np.array([1.0, -0.5])
NUM_PATHS = 400_000


def solution(x, t):
    """Closed-form u(x, t); Sigma_t by Van Loan's block exponential."""
    block = np.block([[-A, SIGMA**2 * np.eye(2)], [np.zeros((2, 2)), A.T]]) * t
    exponential = expm(block)
    covariance = exponential[2:, 2:].T @ exponential[:2, 2:]
    mean = expm(A * t) @ x
    return mean @ Q @ mean + np.trace(Q @ covariance)


def euler_maruyama_expectation(num_steps):
    """The exact mean of g after `num_steps` Euler-Maruyama steps."""
    dt = T / num_steps
    step = np.eye(2) + dt * A
    mean = np.linalg.matrix_power(step, num_steps) @ X0
    covariance = np.zeros((2, 2))
    for _ in range(num_steps):
        covariance = step @ covariance @ step.T + SIGMA**2 * dt * np.eye(2)
    return mean @ Q @ mean + np.trace(Q @ covariance)


def ornstein_uhlenbeck_network(num_steps):
    blocks = []
    for k in range(num_steps):
        block = keras_cd.DenseCDBlock(
            2, dt=T / num_steps, sigma=SIGMA, activation="linear", seed=1000 * num_steps + k
        )
        block.build((None, 2))
        block.dense1.kernel.assign(A.T.astype("float32"))  # row vectors: x @ A^T
        block.dense1.bias.assign(np.zeros(2, "float32"))
        block.dense2.kernel.assign(np.eye(2, dtype="float32"))
        block.dense2.bias.assign(np.zeros(2, "float32"))
        blocks.append(block)
    return blocks


def monte_carlo_mean(num_steps):
    x = np.tile(X0.astype("float32"), (NUM_PATHS, 1))
    with keras_cd.monte_carlo():
        for block in ornstein_uhlenbeck_network(num_steps):
            x = block(x)
    x = convert_to_numpy(x).astype("float64")
    values = np.einsum("ni,ij,nj->n", x, Q, x)
    return values.mean(), values.std() / np.sqrt(NUM_PATHS)


def test_closed_form_solves_the_convection_diffusion_equation():
    x, t, h = np.array([0.4, -0.7]), 0.8, 1e-4
    u = lambda y, s: solution(y, s)
    u_t = (u(x, t + h) - u(x, t - h)) / (2 * h)
    grad = np.array([(u(x + h * e, t) - u(x - h * e, t)) / (2 * h) for e in np.eye(2)])
    laplacian = sum((u(x + h * e, t) - 2 * u(x, t) + u(x - h * e, t)) / h**2 for e in np.eye(2))
    assert u_t == pytest.approx((A @ x) @ grad + SIGMA**2 / 2 * laplacian, rel=1e-5)
    assert solution(x, 1e-12) == pytest.approx(x @ Q @ x)


def test_monte_carlo_mean_converges_to_the_pde_solution_with_weak_order_one():
    exact = solution(X0, T)
    steps = np.array([8, 16, 32, 64])
    errors, scheme_errors = [], []
    for num_steps in steps:
        mean, standard_error = monte_carlo_mean(int(num_steps))
        scheme = euler_maruyama_expectation(int(num_steps))
        # The network's noise has exactly the Euler-Maruyama law.
        assert abs(mean - scheme) < 4.5 * standard_error, (num_steps, mean, scheme, standard_error)
        errors.append(abs(mean - exact))
        scheme_errors.append(abs(scheme - exact))
    order = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    scheme_order = -np.polyfit(np.log(steps), np.log(scheme_errors), 1)[0]
    print(
        f"\nFeynman-Kac: exact u = {exact:.5f}; dt = {[float(d) for d in T / steps]}; "
        f"|MC mean - u| = {[round(float(e), 5) for e in errors]}; measured order {order:.3f} "
        f"(Euler-Maruyama exact expectation: order {scheme_order:.3f})"
    )
    assert 0.85 < order < 1.3
    assert errors[-1] < errors[0] / 5
