import warnings

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy
from scipy.linalg import expm

from keras_cd import GraphDiffusion, graph
from tests.gradients import gradients
from tests.graph.test_laplacian import random_graph
from tests.layer_contract import check_layer_contract
from tests.on_backend import run_on_backend

ADJACENCY = random_graph(30, density=0.15, seed=3)
EDGES = graph.laplacian(ADJACENCY, "coin")
DENSE = graph.laplacian(ADJACENCY, "coin", format="dense")
LAMBDA_MAX = graph.largest_eigenvalue(DENSE)


def u0(channels=4, seed=0):
    return np.random.default_rng(seed).normal(size=(len(ADJACENCY), channels)).astype("float32")


def with_edges(layer, tensors):
    return layer(tensors[0], tuple(tensors[1:]))


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
def test_layer_contract_with_a_dense_laplacian(scheme, tmp_path):
    check_layer_contract(
        GraphDiffusion,
        {"num_steps": 3, "sigma2": 0.2, "scheme": scheme, "trainable_sigma2": True},
        (len(ADJACENCY), 4),
        tmp_path,
        extra_inputs=[DENSE],
    )


def test_layer_contract_with_an_edge_list(tmp_path):
    check_layer_contract(
        GraphDiffusion,
        {"num_steps": 3, "sigma2": 0.2, "trainable_sigma2": True},
        (len(ADJACENCY), 4),
        tmp_path,
        extra_inputs=list(EDGES),
        apply=with_edges,
    )


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
def test_dense_and_edge_paths_agree(scheme):
    layer = GraphDiffusion(5, 0.3, scheme=scheme)
    np.testing.assert_allclose(
        convert_to_numpy(layer(u0(), DENSE)), convert_to_numpy(layer(u0(), EDGES)), atol=1e-5
    )


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
def test_edge_path_gradients_match_the_closed_form(scheme):
    # Loss on a subset of nodes (as in semi-supervised training): the
    # gradient w.r.t. u0 of sum(w * u_T[subset]) for u_T = M^n u0 is
    # (M^T)^n applied to w scattered onto the subset, M = I - s L or
    # (I + s L)^-1; for sigma2 it matches the dense path's.
    subset = np.arange(0, len(DENSE), 3)
    target = np.random.default_rng(1).normal(size=(len(subset), 4)).astype("float32")
    size = len(DENSE)
    step = (
        np.eye(size) - 0.2 * DENSE
        if scheme == "explicit"
        else np.linalg.inv(np.eye(size) + 0.2 * DENSE)
    )
    seed = np.zeros((size, 4), "float32")
    seed[subset] = target
    expected = np.linalg.matrix_power(step.T, 4) @ seed

    def gradients_on(laplacian):
        layer = GraphDiffusion(4, 0.2, scheme=scheme, trainable_sigma2=True, solver_iterations=30)
        layer(u0(), laplacian)  # builds sigma2

        def loss(u, sigma2):
            out, _ = layer.stateless_call([sigma2], [], u, laplacian)
            return keras.ops.sum(keras.ops.multiply(keras.ops.take(out, subset, axis=0), target))

        du, dsigma2 = gradients(loss, u0(), np.float32(0.2))
        return du, float(dsigma2)

    edge_du, edge_dsigma2 = gradients_on(EDGES)
    dense_du, dense_dsigma2 = gradients_on(DENSE)
    np.testing.assert_allclose(edge_du, expected, atol=1e-4)
    np.testing.assert_allclose(dense_du, expected, atol=1e-4)
    assert edge_dsigma2 == pytest.approx(dense_dsigma2, rel=1e-4, abs=1e-5)


def test_explicit_steps_are_the_matrix_power():
    expected = np.linalg.matrix_power(np.eye(len(DENSE)) - 0.25 * DENSE, 7) @ u0()
    np.testing.assert_allclose(
        convert_to_numpy(GraphDiffusion(7, 0.25)(u0(), EDGES)), expected, atol=1e-5
    )
    expected = np.linalg.matrix_power(np.linalg.inv(np.eye(len(DENSE)) + 0.25 * DENSE), 7) @ u0()
    np.testing.assert_allclose(
        convert_to_numpy(GraphDiffusion(7, 0.25, scheme="implicit")(u0(), EDGES)),
        expected,
        atol=1e-5,
    )


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
def test_converges_to_the_heat_semigroup_with_order_one(scheme):
    t = 1.5
    exact = expm(-t * DENSE.astype("float64")) @ u0()
    steps = np.array([8, 16, 32, 64])
    errors = [
        np.abs(
            convert_to_numpy(GraphDiffusion(int(n), t / n, scheme=scheme)(u0(), EDGES)) - exact
        ).max()
        for n in steps
    ]
    order = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert 0.9 < order < 1.1, (errors, order)
    assert errors[-1] < 0.01


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
def test_mass_conservation_maximum_principle_and_energy_decay(scheme):
    u = u0(3)
    steps = [
        convert_to_numpy(GraphDiffusion(k, 0.2, scheme=scheme)(u, EDGES)) for k in range(0, 30, 5)
    ]
    for state in steps:
        np.testing.assert_allclose(state.sum(axis=0), u.sum(axis=0), atol=1e-4)  # L 1 = 0, L = L^T
    # sigma2 * max L_ii <= 1 (explicit) keeps every step a convex combination.
    assert 0.2 * DENSE.diagonal().max() <= 1
    for state in steps:
        assert np.all(state <= u.max(axis=0) + 1e-5) and np.all(state >= u.min(axis=0) - 1e-5)
    energies = [np.einsum("nc,nm,mc->", s, DENSE, s) for s in steps]
    assert all(later <= earlier + 1e-5 for earlier, later in zip(energies, energies[1:]))


def test_stability_warning_fires_exactly_past_the_limit():
    limit = 2 / LAMBDA_MAX
    with pytest.warns(UserWarning, match=r"Unstable explicit diffusion.*sigma2 <= "):
        GraphDiffusion(20, limit * 1.01, lambda_max=LAMBDA_MAX)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GraphDiffusion(20, limit * 0.99, lambda_max=LAMBDA_MAX)
        GraphDiffusion(20, limit, lambda_max=LAMBDA_MAX)
        GraphDiffusion(20, limit * 1.5, lambda_max=LAMBDA_MAX, scheme="implicit")
        GraphDiffusion(20, limit * 1.5)  # unknown lambda_max: nothing to check
    # And the instability is real: the top eigenmode grows past the limit.
    eigenvalues, vectors = np.linalg.eigh(DENSE)
    top = vectors[:, -1:].astype("float32")
    grown = convert_to_numpy(GraphDiffusion(20, limit * 1.1)(top, EDGES))
    assert np.linalg.norm(grown) > 1.5 * np.linalg.norm(top)
    stable = convert_to_numpy(GraphDiffusion(20, limit * 1.1, scheme="implicit")(top, EDGES))
    assert np.linalg.norm(stable) < np.linalg.norm(top)


def test_num_steps_zero_is_the_identity_and_sigma2_can_be_learned():
    np.testing.assert_array_equal(convert_to_numpy(GraphDiffusion(0, 1.0)(u0(), EDGES)), u0())
    inputs = [
        keras.Input((4,)),
        keras.Input((), dtype="int32"),
        keras.Input((), dtype="int32"),
        keras.Input(()),
    ]
    layer = GraphDiffusion(4, 0.1, trainable_sigma2=True)
    model = keras.Model(inputs, layer(inputs[0], tuple(inputs[1:])))
    assert [w.name for w in layer.trainable_weights] == ["sigma2"]
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    import tensorflow as tf

    target = convert_to_numpy(GraphDiffusion(4, 0.3)(u0(), EDGES))
    data = tf.data.Dataset.from_tensors(((u0(),) + tuple(EDGES), target)).repeat(200)
    model.fit(data, epochs=1, verbose=0)
    assert float(convert_to_numpy(layer.sigma2_weight)) == pytest.approx(0.3, abs=0.02)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"num_steps": -1, "sigma2": 0.1}, "num_steps"),
        ({"num_steps": 2.5, "sigma2": 0.1}, "num_steps"),
        ({"num_steps": 2, "sigma2": -0.1}, "sigma2"),
        ({"num_steps": 2, "sigma2": float("inf")}, "sigma2"),
        ({"num_steps": 2, "sigma2": 0.1, "scheme": "rk4"}, "scheme"),
        ({"num_steps": 2, "sigma2": 0.1, "lambda_max": -1.0}, "lambda_max"),
        ({"num_steps": 2, "sigma2": 0.1, "solver_iterations": 0}, "solver_iterations"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"Invalid value for `{name}`"):
        GraphDiffusion(**kwargs)


def test_wrong_input_rank():
    with pytest.raises(ValueError, match="expected rank 2"):
        GraphDiffusion(2, 0.1)(np.zeros((30,), "float32"), DENSE)


# --- Implicit scheme: exact gradients (implicit differentiation) --------------------------

SMALL = random_graph(12, density=0.3, seed=5, weighted=True)
_SMALL_L = graph.laplacian(SMALL, "coin", format="scipy").toarray()
_SMALL_L = (_SMALL_L + _SMALL_L.T) / 2  # exactly symmetric in float64, as CG assumes
_RECEIVERS, _SENDERS = np.nonzero(_SMALL_L)
SMALL_EDGES = (_SENDERS.astype("int32"), _RECEIVERS.astype("int32"), _SMALL_L[_RECEIVERS, _SENDERS])
SMALL_U = np.random.default_rng(2).normal(size=(12, 3))
SMALL_TARGET = np.random.default_rng(3).normal(size=(12, 3))


def dense_from_edges(weights, size=12):
    senders, receivers, _ = SMALL_EDGES
    matrix = np.zeros((size, size))
    np.add.at(matrix, (receivers, senders), weights)
    return matrix


def implicit_loss_numpy(u, sigma2, weights, num_steps=2):
    step = np.linalg.inv(np.eye(12) + sigma2 * dense_from_edges(weights))
    return float(np.sum(SMALL_TARGET * (np.linalg.matrix_power(step, num_steps) @ u)))


def small_laplacian(path, weights):
    """The SMALL graph's Laplacian from edge `weights` (a tensor): an edge list or
    the dense matrix assembled from them, differentiably."""
    senders, receivers, _ = SMALL_EDGES
    if path == "edges":
        return (senders, receivers, weights)
    return keras.ops.scatter(np.stack([receivers, senders], 1), weights, (12, 12))


def small_arguments(dtype, sigma2=0.7):
    """(u, sigma2, edge weights) of the SMALL problem in `dtype`."""
    return SMALL_U.astype(dtype), np.asarray(sigma2, dtype), SMALL_EDGES[2].astype(dtype)


def implicit_gradients(path, sigma2=0.7, num_steps=2, dtype="float64"):
    """Gradients of sum(target * u_T) w.r.t. (u, sigma2, edge weights)."""
    layer = GraphDiffusion(
        num_steps,
        sigma2,
        scheme="implicit",
        trainable_sigma2=True,
        solver_iterations=40,
        dtype=dtype,
    )
    layer(SMALL_U.astype(dtype), SMALL_EDGES)  # builds sigma2
    target = SMALL_TARGET.astype(dtype)

    def loss(u, s, w):
        out, _ = layer.stateless_call([s], [], u, small_laplacian(path, w))
        return keras.ops.sum(keras.ops.multiply(out, target))

    du, dsigma2, dw = gradients(loss, *small_arguments(dtype, sigma2))
    return du, float(dsigma2), dw


def dense_solve_gradients(sigma2=0.7, num_steps=2, dtype="float64"):
    """The same gradients by automatic differentiation through a dense solve."""
    target = SMALL_TARGET.astype(dtype)

    def loss(u, s, w):
        matrix = keras.ops.eye(12, dtype=dtype) + s * small_laplacian("dense", w)
        out = u
        for _ in range(num_steps):
            out = keras.ops.solve(matrix, out)
        return keras.ops.sum(keras.ops.multiply(out, target))

    return gradients(loss, *small_arguments(dtype, sigma2))


# TensorFlow only: the check needs float64, and Keras computes float64 in float32 on
# JAX (without jax_enable_x64) and on PyTorch (ops.matmul and ops.segment_sum;
# keras-team/keras#23704). The float32 test below runs on every backend.
@pytest.mark.tensorflow
@pytest.mark.parametrize("path", ["edges", "dense"])
def test_implicit_gradients_match_finite_differences_and_a_dense_solve(path):
    du, dsigma2, dw = implicit_gradients(path)
    weights = SMALL_EDGES[2].astype("float64")
    h = 1e-6
    fd_sigma2 = (
        implicit_loss_numpy(SMALL_U, 0.7 + h, weights)
        - implicit_loss_numpy(SMALL_U, 0.7 - h, weights)
    ) / (2 * h)
    fd_w = np.array(
        [
            (
                implicit_loss_numpy(SMALL_U, 0.7, weights + h * e)
                - implicit_loss_numpy(SMALL_U, 0.7, weights - h * e)
            )
            / (2 * h)
            for e in np.eye(len(weights))
        ]
    )
    step = np.linalg.inv(np.eye(12) + 0.7 * dense_from_edges(weights))
    exact_du = np.linalg.matrix_power(step.T, 2) @ SMALL_TARGET  # linear in u: exact
    assert dsigma2 == pytest.approx(fd_sigma2, rel=1e-6)
    np.testing.assert_allclose(dw, fd_w, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(du, exact_du, rtol=1e-9, atol=1e-12)
    solve_du, solve_dsigma2, solve_dw = dense_solve_gradients()
    assert dsigma2 == pytest.approx(float(solve_dsigma2), rel=1e-9)
    np.testing.assert_allclose(dw, solve_dw, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(du, solve_du, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("path", ["edges", "dense"])
def test_implicit_gradients_in_float32_match_a_dense_solve(path):
    # The float64 check above at float32 precision (the tolerance of the JAX
    # script below): on every backend, through its own custom gradient.
    got = implicit_gradients(path, dtype="float32")
    for a, b in zip(got, dense_solve_gradients(dtype="float32")):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


def test_implicit_gradient_on_one_node_is_the_closed_form():
    # A = 1 + c l, x = b / A: dx/dc = -l b / A^2 (a frozen solver gives -l b / A).
    # float32, so that it runs on every backend; a 1 x 1 solve is exact to rounding.
    c, weight, b = 2.5, 4.0, 3.0  # L = [[weight]]
    layer = GraphDiffusion(1, c, scheme="implicit", trainable_sigma2=True)
    rhs, laplacian = np.array([[b]], "float32"), np.array([[weight]], "float32")
    x = layer(rhs, laplacian)
    assert float(convert_to_numpy(x)[0, 0]) == pytest.approx(b / (1 + c * weight))
    solution = lambda sigma2: keras.ops.sum(layer.stateless_call([sigma2], [], rhs, laplacian)[0])
    (derivative,) = gradients(solution, np.float32(c))
    assert float(derivative) == pytest.approx(-weight * b / (1 + c * weight) ** 2)


# TensorFlow only: tf.function(jit_compile=True) (on JAX, jax.jit: JAX_GRADIENTS below).
@pytest.mark.tensorflow
def test_implicit_training_of_sigma2_under_xla_matches_eager():
    import tensorflow as tf

    layer = GraphDiffusion(2, 0.7, scheme="implicit", trainable_sigma2=True, solver_iterations=20)
    u, edges = tf.constant(SMALL_U, "float32"), tuple(tf.constant(a) for a in SMALL_EDGES)

    def gradient():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(SMALL_TARGET.astype("float32") * layer(u, edges))
        return tape.gradient(loss, layer.sigma2_weight)

    eager = float(gradient())
    compiled = float(tf.function(gradient, jit_compile=True)())
    assert compiled == pytest.approx(eager, rel=1e-4)
    assert eager == pytest.approx(float(dense_solve_gradients()[1]), rel=1e-5)


# --- Implicit scheme: the solver's validity ----------------------------------------------


def test_each_channel_is_solved_relative_to_its_own_right_hand_side():
    rhs = u0(2).astype("float32")
    rhs[:, 1] *= 1e-6  # a channel a million times smaller than the other
    out = convert_to_numpy(
        GraphDiffusion(1, 2.0, scheme="implicit", solver_iterations=30)(rhs, EDGES)
    )
    exact = np.linalg.solve(np.eye(len(DENSE)) + 2.0 * DENSE, rhs.astype("float64"))
    relative = np.abs(out - exact).max(axis=0) / np.abs(exact).max(axis=0)
    assert relative[0] < 1e-5 and relative[1] < 1e-5, relative


@pytest.mark.parametrize("form", ["edges", "dense"])
def test_implicit_scheme_refuses_a_non_symmetric_laplacian(form):
    random_walk = graph.laplacian(ADJACENCY, "random_walk", format=form)
    with pytest.raises(ValueError, match=r"`laplacian`.*symmetric Laplacian.*scheme=\"explicit\""):
        GraphDiffusion(2, 0.5, scheme="implicit")(u0(), random_walk)
    GraphDiffusion(2, 0.5)(u0(), random_walk)  # the explicit scheme needs no symmetry
    symmetric = graph.laplacian(ADJACENCY, "symmetric", format=form)
    GraphDiffusion(2, 0.5, scheme="implicit")(u0(), symmetric)


# --- Explicit scheme: the stability guard ------------------------------------------------


def test_stability_is_checked_on_the_first_concrete_laplacian_when_lambda_max_is_not_given():
    layer = GraphDiffusion(20, 1.01 * 2 / LAMBDA_MAX)
    with pytest.warns(UserWarning, match=r"Unstable explicit diffusion.*sigma2 <= "):
        layer(u0(), EDGES)
    assert layer.stable_sigma2_limit() == pytest.approx(2 / LAMBDA_MAX, rel=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer(u0(), EDGES)  # the same graph is checked once
        GraphDiffusion(20, 0.99 * 2 / LAMBDA_MAX)(u0(), EDGES)
        GraphDiffusion(20, 0.99 * 2 / LAMBDA_MAX)(u0(), DENSE)


def test_a_learned_sigma2_is_kept_inside_the_stable_range():
    layer = GraphDiffusion(4, 0.9 * 2 / LAMBDA_MAX, trainable_sigma2=True, lambda_max=LAMBDA_MAX)
    layer(u0(), EDGES)
    optimizer = keras.optimizers.SGD(1.0)
    optimizer.apply_gradients(
        [(keras.ops.convert_to_tensor(-10.0), layer.sigma2_weight)]
    )  # pushes sigma2 up
    assert float(convert_to_numpy(layer.sigma2_weight)) == pytest.approx(2 / LAMBDA_MAX, rel=1e-6)
    optimizer.apply_gradients([(keras.ops.convert_to_tensor(10.0), layer.sigma2_weight)])
    assert float(convert_to_numpy(layer.sigma2_weight)) == 0.0
    # Without lambda_max, the first concrete Laplacian sets the limit (by Lanczos).
    estimated = GraphDiffusion(4, 0.1, trainable_sigma2=True)
    assert estimated.stable_sigma2_limit() is None
    estimated(u0(), EDGES)
    assert estimated.stable_sigma2_limit() == pytest.approx(2 / LAMBDA_MAX, rel=1e-4)


def test_numpy_scalars_are_accepted_like_python_ones():
    layer = GraphDiffusion(
        np.int64(3),
        np.float32(0.25),
        solver_iterations=np.int32(5),
        lambda_max=np.float64(LAMBDA_MAX),
    )
    assert (layer.num_steps, layer.solver_iterations) == (3, 5)
    assert isinstance(layer.num_steps, int) and layer.sigma2 == 0.25
    np.testing.assert_allclose(
        convert_to_numpy(layer(u0(), EDGES)), convert_to_numpy(GraphDiffusion(3, 0.25)(u0(), EDGES))
    )


JAX_GRADIENTS = """
import numpy as np, jax, jax.numpy as jnp, keras, keras_cd
from keras_cd import graph
assert keras.backend.backend() == "jax"
rng = np.random.default_rng(0)
A = np.triu(rng.random((12, 12)) < 0.3, 1)
L = graph.laplacian((A + A.T).astype(float), "coin", format="scipy").toarray()
L = (L + L.T) / 2
receivers, senders = np.nonzero(L)
w0 = L[receivers, senders].astype("float32")
u0 = rng.normal(size=(12, 3)).astype("float32")
target = rng.normal(size=(12, 3)).astype("float32")
layer = keras_cd.GraphDiffusion(2, 0.7, scheme="implicit", trainable_sigma2=True,
                                solver_iterations=30)
layer(u0, (senders, receivers, w0))

def loss(sigma2, u, w):
    out, _ = layer.stateless_call([sigma2], [], u, (senders, receivers, w))
    return jnp.sum(target * out)

def reference(sigma2, u, w):
    m = jnp.eye(12) + sigma2 * jnp.zeros((12, 12)).at[receivers, senders].add(w)
    return jnp.sum(target * jnp.linalg.solve(m, jnp.linalg.solve(m, u)))

args = (jnp.float32(0.7), jnp.asarray(u0), jnp.asarray(w0))
for got in (jax.grad(loss, (0, 1, 2))(*args), jax.jit(jax.grad(loss, (0, 1, 2)))(*args)):
    for a, b in zip(got, jax.grad(reference, (0, 1, 2))(*args)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-5)
print("jax gradients ok")
"""


@pytest.mark.slow  # end to end (a fresh process or a whole search): make test-slow
def test_implicit_gradients_on_the_jax_backend():
    run_on_backend(JAX_GRADIENTS, "jax gradients ok")


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
def test_a_batch_of_graphs_diffuses_each_graph_alone(scheme):
    """One disjoint-union graph == every graph on its own (no leak between graphs)."""
    sizes = [30, 12, 21]
    graphs = [graph.laplacian(random_graph(n, density=0.2, seed=n), "coin") for n in sizes]
    values = [np.random.default_rng(n).normal(size=(n, 3)).astype("float32") for n in sizes]
    layer = GraphDiffusion(6, 0.3, scheme=scheme, solver_iterations=40)
    union = graph.disjoint_union(graphs, sizes)
    batched = convert_to_numpy(layer(np.concatenate(values), union))
    alone = np.concatenate([convert_to_numpy(layer(v, g)) for v, g in zip(values, graphs)])
    np.testing.assert_allclose(batched, alone, rtol=1e-5, atol=1e-6)


def test_dropout_before_each_step_is_unbiased_seeded_and_off_at_inference():
    u = u0(channels=2)
    plain = convert_to_numpy(GraphDiffusion(5, 0.2)(u, EDGES))
    layer = GraphDiffusion(5, 0.2, dropout=0.25, seed=7)
    np.testing.assert_allclose(convert_to_numpy(layer(u, EDGES)), plain, rtol=1e-6)  # inference
    np.testing.assert_allclose(convert_to_numpy(layer(u, EDGES, training=False)), plain, rtol=1e-6)
    first = convert_to_numpy(layer(u, EDGES, training=True))
    assert not np.allclose(first, plain)
    again = GraphDiffusion(5, 0.2, dropout=0.25, seed=7)
    np.testing.assert_array_equal(convert_to_numpy(again(u, EDGES, training=True)), first)
    # u <- S D(u) is linear in u and D is unbiased: E[output] = S^K u
    # 400 draws in one call: u repeated along the channels (dropout is elementwise).
    tiled = convert_to_numpy(layer(np.tile(u, (1, 400)), EDGES, training=True))
    draws = tiled.reshape(len(u), 400, u.shape[1]).transpose(1, 0, 2)
    z = (draws.mean(axis=0) - plain) / (draws.std(axis=0) / np.sqrt(len(draws)))
    # mean of z^2 over the 60 entries: about 1 without bias (0.6 to 1.2 over 8 seeds on
    # TensorFlow and PyTorch; neighbours share dropped entries, so it spreads wider than
    # for 60 independent entries); a 5% bias in the kept entries' scale gives about 10.
    assert np.mean(z**2) < 2.0
    # one step: entries of the input dropped at rate 0.25, kept ones scaled by 4/3
    one = GraphDiffusion(1, 0.0, dropout=0.25, seed=1)  # sigma2 0: S = I
    zero = (np.zeros(0, "int32"), np.zeros(0, "int32"), np.zeros(0, "float32"))  # no edges
    out = convert_to_numpy(one(np.ones((4000, 1), "float32"), zero, training=True))
    np.testing.assert_allclose(np.unique(out), [0.0, 4 / 3], rtol=1e-6)
    assert abs((out == 0).mean() - 0.25) < 0.03
    config = layer.get_config()
    assert config["dropout"] == 0.25 and config["seed"] == 7
    assert GraphDiffusion.from_config(config).dropout == 0.25
