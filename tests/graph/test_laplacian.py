import numpy as np
import pytest
import scipy.sparse as sp

from keras_cd import graph


def random_graph(size=40, density=0.1, seed=0, weighted=False):
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((size, size)) < density, 1) * (
        rng.random((size, size)) + 0.5 if weighted else 1
    )
    return upper + upper.T


def dense(edges, size):
    senders, receivers, weights = edges
    matrix = np.zeros((size, size))
    np.add.at(matrix, (receivers, senders), weights)
    return matrix


@pytest.mark.parametrize("normalization", graph.NORMALIZATIONS)
@pytest.mark.parametrize("self_loops", [True, False])
def test_definitions_against_numpy(normalization, self_loops):
    a = random_graph(weighted=True)
    a_tilde = a + np.eye(len(a)) if self_loops else a
    d = a_tilde.sum(1)
    inv_sqrt = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0)
    a_hat = inv_sqrt[:, None] * a_tilde * inv_sqrt[None, :]
    expected = {
        "coin": np.diag(a_hat.sum(1)) - a_hat,
        "symmetric": np.eye(len(a)) - a_hat,
        "random_walk": np.eye(len(a))
        - np.where(d > 0, 1 / np.where(d > 0, d, 1), 0)[:, None] * a_tilde,
        "none": np.diag(d) - a_tilde,
    }[normalization]
    for format in ("dense", "scipy", "edges"):
        result = graph.laplacian(sp.csr_matrix(a), normalization, self_loops, format=format)
        matrix = {
            "dense": lambda r: r,
            "scipy": lambda r: r.toarray(),
            "edges": lambda r: dense(r, len(a)),
        }[format](result)
        np.testing.assert_allclose(matrix, expected, atol=1e-6)


@pytest.mark.parametrize("normalization", ["coin", "none"])
def test_constants_are_in_the_kernel(normalization):
    matrix = graph.laplacian(random_graph(), normalization, format="dense")
    np.testing.assert_allclose(matrix @ np.ones(len(matrix)), 0, atol=1e-6)  # L 1 = 0


@pytest.mark.parametrize("normalization", graph.NORMALIZATIONS)
def test_positive_semidefinite_and_bounded_by_gershgorin(normalization):
    matrix = graph.laplacian(random_graph(60, seed=2), normalization, format="scipy")
    eigenvalues = np.linalg.eigvals(matrix.toarray()).real
    assert eigenvalues.min() > -1e-6
    assert graph.largest_eigenvalue(matrix) == pytest.approx(eigenvalues.max(), rel=1e-5)
    assert graph.gershgorin_bound(matrix) >= eigenvalues.max() - 1e-9


def test_edges_are_sorted_by_receiver_and_typed():
    senders, receivers, weights = graph.laplacian(random_graph(), "coin")
    assert senders.dtype == receivers.dtype == np.int32 and weights.dtype == np.float32
    assert np.all(np.diff(receivers) >= 0)


def test_isolated_nodes_do_not_produce_infinities():
    a = np.zeros((3, 3))
    a[0, 1] = a[1, 0] = 1
    for normalization in graph.NORMALIZATIONS:
        matrix = graph.laplacian(a, normalization, self_loops=False, format="dense")
        assert np.all(np.isfinite(matrix))


def test_cora_lambda_max_is_just_past_the_reference_stability_limit(cora_path):
    from keras_cd import datasets

    data = datasets.load_gnnbench(cora_path)
    lambda_max = graph.largest_eigenvalue(graph.laplacian(data.adjacency, "coin", format="scipy"))
    assert lambda_max == pytest.approx(5.78, abs=0.01)
    assert 0.35 * lambda_max > 2  # the paper's sigma2 is past explicit Euler's limit


@pytest.mark.parametrize(
    "kwargs, name", [({"normalization": "laplace"}, "normalization"), ({"format": "coo"}, "format")]
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"Invalid value for `{name}`"):
        graph.laplacian(random_graph(), **kwargs)
    with pytest.raises(ValueError, match="square"):
        graph.laplacian(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        graph.laplacian(-random_graph())


@pytest.mark.parametrize("normalization", graph.NORMALIZATIONS)
@pytest.mark.parametrize("self_loops", [True, False])
@pytest.mark.parametrize("isolated", [0, 3, 6])
def test_edge_lists_keep_isolated_nodes(normalization, self_loops, isolated):
    """An isolated first, middle or last node stays a node of the edge list:
    the dense Laplacian, the diffusion and the rows of P are those of the matrix."""
    a = random_graph(7, density=0.9, seed=4)
    a[isolated, :] = a[:, isolated] = 0
    expected = graph.laplacian(a, normalization, self_loops, format="dense")
    edges = graph.laplacian(a, normalization, self_loops, format="edges")
    assert max(edges[0].max(), edges[1].max()) == len(a) - 1  # the list carries N
    np.testing.assert_allclose(dense(edges, len(a)), expected, atol=1e-6)
    values = np.random.default_rng(0).normal(size=(len(a), 2))
    np.testing.assert_allclose(
        graph.diffuse(edges, values, 3, 0.3), graph.diffuse(expected, values, 3, 0.3), atol=1e-6
    )
    rows = graph.diffusion_rows(edges, [isolated, 1], 3, 0.3)
    assert rows.shape == (2, len(a))
    np.testing.assert_allclose(
        rows.toarray(), graph.diffusion_rows(expected, [isolated, 1], 3, 0.3).toarray(), atol=1e-6
    )


def test_hand_made_edge_lists_take_num_nodes():
    """A hand-made edge list whose last nodes have no entries: `num_nodes` says N."""
    path = (np.array([0, 1]), np.array([1, 0]), np.array([-1.0, -1.0]))  # nodes 2, 3: isolated
    rows = graph.diffusion_rows(path, [0, 3], 1, 0.5, num_nodes=4)
    assert rows.shape == (2, 4)
    np.testing.assert_allclose(rows.toarray(), [[1, 0.5, 0, 0], [0, 0, 0, 1]])
    values = np.arange(4.0)
    np.testing.assert_allclose(graph.diffuse(path, values, 1, 0.5), [0.5, 1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="num_nodes >= 2"):
        graph.diffusion_rows(path, [0], 1, 0.5, num_nodes=1)
    with pytest.raises(ValueError, match="Omit num_nodes for a matrix"):
        graph.diffusion_rows(np.eye(3), [0], 1, 0.5, num_nodes=4)
