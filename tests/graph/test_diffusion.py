"""keras_cd.graph.diffuse / diffusion_rows: the exact diffusion operator offline."""

import numpy as np
import pytest
import scipy.sparse as sp
from keras.ops import convert_to_numpy
from scipy.linalg import expm

from keras_cd import GraphDiffusion, graph
from tests.graph.test_laplacian import random_graph

ADJACENCY = random_graph(40, density=0.12, seed=5)


def dense_operator(laplacian, num_steps, sigma2, scheme, teleport=0.0):
    """P written out with dense matrices, the closed form to check against."""
    size = laplacian.shape[0]
    step = (
        np.eye(size) - sigma2 * laplacian
        if scheme == "explicit"
        else np.linalg.inv(np.eye(size) + sigma2 * laplacian)
    )
    if not teleport:
        return np.linalg.matrix_power(step, num_steps)
    # APPNP's closed form: (1-a)^K S^K + a sum_{k<K} (1-a)^k S^k
    result = (1 - teleport) ** num_steps * np.linalg.matrix_power(step, num_steps)
    for k in range(num_steps):
        result += teleport * (1 - teleport) ** k * np.linalg.matrix_power(step, k)
    return result


@pytest.mark.parametrize("normalization", ["coin", "symmetric", "random_walk", "none"])
@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
@pytest.mark.parametrize("teleport", [0.0, 0.1])
def test_rows_and_products_are_the_closed_form(normalization, scheme, teleport):
    laplacian = graph.laplacian(ADJACENCY, normalization, format="scipy")
    sigma2 = 0.1 if normalization == "none" else 0.3
    expected = dense_operator(laplacian.toarray(), 7, sigma2, scheme, teleport)
    rows = np.array([3, 0, 39, 3, 17])  # any order, repeats allowed
    got = graph.diffusion_rows(laplacian, rows, 7, sigma2, scheme, teleport, block_size=2)
    assert got.shape == (5, 40) and got.dtype == np.float32
    np.testing.assert_allclose(got.toarray(), expected[rows], rtol=1e-5, atol=1e-7)
    values = np.random.default_rng(0).normal(size=(40, 3))
    product = graph.diffuse(laplacian, values, 7, sigma2, scheme, teleport)
    np.testing.assert_allclose(product, expected @ values, rtol=1e-10, atol=1e-12)


def test_zero_steps_is_the_identity_and_mass_is_conserved():
    laplacian = graph.laplacian(ADJACENCY, "coin", format="edges")  # an edge list works too
    np.testing.assert_array_equal(
        graph.diffusion_rows(laplacian, [4, 2], 0, 0.3).toarray(), np.eye(40)[[4, 2]]
    )
    rows = graph.diffusion_rows(laplacian, np.arange(40), 20, 0.3).toarray()
    # L 1 = 0 for "coin": P 1 = 1 (every node's output is a weighted mean)
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("scheme, order", [("explicit", 1), ("implicit", 1)])
def test_converges_to_the_heat_kernel_at_first_order(scheme, order):
    """K steps of size t/K approach expm(-tL); the error halves as K doubles."""
    laplacian = graph.laplacian(ADJACENCY, "coin", format="scipy")
    exact = expm(-1.5 * laplacian.toarray())
    values = np.random.default_rng(1).normal(size=40)
    errors = [
        np.abs(graph.diffuse(laplacian, values, k, 1.5 / k, scheme) - exact @ values).max()
        for k in (16, 32, 64, 128)
    ]
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    np.testing.assert_allclose(rates, order, atol=0.1)


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
def test_rows_equal_the_graph_diffusion_layer_on_a_random_graph(scheme):
    edges = graph.laplacian(random_graph(300, density=0.02, seed=2), "coin")
    u = np.random.default_rng(0).random((300, 7)).astype("float32")
    layer = GraphDiffusion(10, 0.3, scheme=scheme, solver_iterations=60)
    full = convert_to_numpy(layer(u, edges))
    rows = np.arange(0, 300, 7)
    P = graph.diffusion_rows(edges, rows, 10, 0.3, scheme)
    np.testing.assert_allclose(P @ u, full[rows], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
def test_rows_equal_the_graph_diffusion_layer_on_cora(scheme, cora_path):
    from keras_cd import datasets

    data = datasets.load_gnnbench(cora_path)
    edges = graph.laplacian(data.adjacency, "coin")
    u = np.random.default_rng(0).dirichlet(np.ones(7), size=data.labels.size).astype("float32")
    steps, sigma2 = (20, 0.3) if scheme == "explicit" else (4, 1.75)
    full = convert_to_numpy(
        GraphDiffusion(steps, sigma2, scheme=scheme, solver_iterations=80)(u, edges)
    )
    rows = np.random.default_rng(1).choice(data.labels.size, 350, replace=False)
    P = graph.diffusion_rows(edges, rows, steps, sigma2, scheme)
    np.testing.assert_allclose(P @ u, full[rows], rtol=1e-4, atol=2e-6)


def test_a_tolerance_keeps_the_rows_sparse_within_the_dropped_mass():
    path = sp.diags([np.ones(59)], [1], shape=(60, 60))
    grid = sp.kronsum(path + path.T, path + path.T)  # 60 x 60 grid: far nodes get tiny mass
    laplacian = graph.laplacian(grid, "coin", format="scipy")
    rows = np.arange(0, 3600, 90)
    exact = graph.diffusion_rows(laplacian, rows, 20, 0.3)
    pruned = graph.diffusion_rows(laplacian, rows, 20, 0.3, tolerance=1e-6)
    assert sp.issparse(pruned) and pruned.nnz < 0.5 * exact.nnz
    error = abs(exact - pruned).sum(axis=1).max()  # 1-norm of each row's error
    # at most what could have been dropped: 20 steps x the row's support x 1e-6
    assert 0 < error < 20 * exact.getnnz(axis=1).max() * 1e-6


def test_bad_arguments_are_named():
    laplacian = graph.laplacian(ADJACENCY, "coin", format="scipy")
    with pytest.raises(ValueError, match="Invalid value for `rows`: expected node indices"):
        graph.diffusion_rows(laplacian, [0, 40], 2, 0.1)
    with pytest.raises(ValueError, match="Invalid value for `rows`"):
        graph.diffusion_rows(laplacian, [[0]], 2, 0.1)
    with pytest.raises(ValueError, match="Invalid value for `scheme`"):
        graph.diffuse(laplacian, np.ones(40), 2, 0.1, scheme="rk4")
    with pytest.raises(ValueError, match="Invalid value for `values`: expected shape"):
        graph.diffuse(laplacian, np.ones(41), 2, 0.1)
    with pytest.raises(ValueError, match="Invalid value for `teleport`"):
        graph.diffuse(laplacian, np.ones(40), 2, 0.1, teleport=1.5)
    with pytest.raises(ValueError, match="Invalid value for `num_steps`"):
        graph.diffusion_rows(laplacian, [0], -1, 0.1)


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
def test_rows_streamed_to_a_file_equal_the_sparse_rows(tmp_path, scheme):
    laplacian = graph.laplacian(ADJACENCY, "coin", format="scipy")
    rows = np.array([5, 1, 39, 5, 22, 8, 0])
    expected = graph.diffusion_rows(laplacian, rows, 6, 0.3, scheme).toarray()
    path = tmp_path / "rows.npy"
    written = graph.diffusion_rows(laplacian, rows, 6, 0.3, scheme, block_size=3, out=path)
    assert isinstance(written, np.memmap) and written.shape == (7, 40)
    np.testing.assert_array_equal(np.asarray(written), expected)
    np.testing.assert_array_equal(np.load(path), expected)  # a plain .npy file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.npy"]  # no temporary left


def test_a_write_killed_midway_leaves_the_old_file(tmp_path, monkeypatch):
    from keras_cd.graph import diffusion

    laplacian = graph.laplacian(ADJACENCY, "coin", format="scipy")
    path = tmp_path / "rows.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(ValueError, match="`out`: expected None or a path ending in '.npy'"):
        graph.diffusion_rows(laplacian, [0], 2, 0.1, out=tmp_path / "rows.npz")
    iterate, calls = diffusion._iterate, []

    def fail_on_the_second_block(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # a kill after the first block was written
        return iterate(*args, **kwargs)

    monkeypatch.setattr(diffusion, "_iterate", fail_on_the_second_block)
    with pytest.raises(KeyboardInterrupt):
        graph.diffusion_rows(laplacian, np.arange(10), 2, 0.1, block_size=4, out=path)
    np.testing.assert_array_equal(np.load(path), np.zeros(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.npy"]
