"""Graph Laplacians from adjacency matrices (scipy.sparse), and their spectra.

The diffusion half of COIN (Wang, Bao & Shi, arXiv 2403.15726) is the graph
heat equation u_t = -L u. This module builds the Laplacian L from an
adjacency matrix ([`laplacian`][keras_cd.graph.laplacian], with the
normalizations of `NORMALIZATIONS` and the output formats of `FORMATS`) and
bounds its largest eigenvalue, which limits the explicit Euler step
u <- u - sigma2 L u to sigma2 * lambda_max <= 2
([`gershgorin_bound`][keras_cd.graph.gershgorin_bound],
[`largest_eigenvalue`][keras_cd.graph.largest_eigenvalue]);
[`is_symmetric`][keras_cd.graph.is_symmetric] tells whether the implicit
scheme's conjugate-gradient solver applies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

# The normalizations of `laplacian` (see its docstring for the formulas).
NORMALIZATIONS = ("coin", "symmetric", "random_walk", "none")
# The output formats of `laplacian`: an edge list, a dense array or a scipy CSR matrix.
FORMATS = ("edges", "dense", "scipy")


def _as_csr(adjacency):
    if sp.issparse(adjacency):
        matrix = sp.csr_matrix(adjacency, dtype=np.float64)
    else:
        matrix = sp.csr_matrix(np.asarray(adjacency, dtype=np.float64))
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(
            f"Invalid value for `adjacency`: expected a square (N, N) matrix. "
            f"Received: shape {matrix.shape}. Pass the graph's adjacency matrix."
        )
    if matrix.nnz and (not np.all(np.isfinite(matrix.data)) or matrix.data.min() < 0):
        raise ValueError(
            "Invalid value for `adjacency`: expected finite non-negative edge "
            "weights. Received: negative or non-finite entries. Use |weights|."
        )
    return matrix


def _inverse_power(degrees, power):
    result = np.zeros_like(degrees)
    positive = degrees > 0
    result[positive] = degrees[positive] ** power  # isolated nodes: 0, not inf
    return result


def _to_format(matrix, format):
    matrix = sp.coo_matrix(matrix)
    if format == "scipy":
        return matrix.tocsr()
    if format == "dense":
        return matrix.toarray().astype(np.float32)
    # Every node's diagonal entry is listed, an explicit 0 for an isolated
    # node, so the edge list carries its node count (largest index + 1) even
    # when the first, middle or last nodes have no edges.
    size = matrix.shape[0]
    diagonal = np.arange(size)
    matrix = sp.coo_matrix(
        (
            np.concatenate([matrix.data, np.zeros(size)]),
            (np.concatenate([matrix.row, diagonal]), np.concatenate([matrix.col, diagonal])),
        ),
        shape=matrix.shape,
    )
    matrix.sum_duplicates()
    keep = (matrix.data != 0) | (matrix.row == matrix.col)
    rows, cols, data = matrix.row[keep], matrix.col[keep], matrix.data[keep]
    order = np.lexsort((cols, rows))  # sorted by receiver
    return (
        cols[order].astype(np.int32),
        rows[order].astype(np.int32),
        data[order].astype(np.float32),
    )


def num_nodes_of(matrix, num_nodes=None, name="laplacian"):
    """Returns the node count N of a Laplacian (dense, scipy.sparse or edge list).

    A matrix knows its N. An edge list `(senders, receivers, weights)` from
    this package lists every node's diagonal entry, so N = largest index + 1;
    for edge lists made by hand, where nodes without entries may trail, pass
    `num_nodes`.

    Args:
        matrix: (N, N) array, scipy.sparse matrix or edge list.
        num_nodes: `None` or int, the node count of an edge list. For a
            matrix it must equal N.
        name: str, the argument's name in error messages.

    Returns:
        int, N.

    Raises:
        ValueError: when a tuple `matrix` does not have 3 items, `num_nodes`
            is neither None nor an int, or `num_nodes` is smaller than an edge
            list's largest node index + 1, or differs from a matrix's N.

    Example:
        >>> import numpy as np
        >>> from keras_cd.graph.laplacian import num_nodes_of
        >>> edges = (np.array([0, 1]), np.array([1, 0]), np.array([-1.0, -1.0]))
        >>> num_nodes_of(edges), num_nodes_of(edges, num_nodes=5)  # 3 trailing isolated nodes
        (2, 5)
    """
    if isinstance(matrix, tuple):
        if len(matrix) != 3:
            raise ValueError(
                f"Invalid value for `{name}`: expected an edge list (senders, receivers, "
                f"weights), a scipy.sparse matrix or an (N, N) array. Received: a sequence "
                f'of {len(matrix)} items. Use keras_cd.graph.laplacian(adjacency, format="edges").'
            )
        senders, receivers = (np.asarray(a) for a in matrix[:2])
        smallest = int(max(senders.max(initial=-1), receivers.max(initial=-1))) + 1
    else:
        smallest = None
        shape = np.shape(matrix) if not sp.issparse(matrix) else matrix.shape
    if num_nodes is None:
        return smallest if smallest is not None else int(shape[0])
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, (int, np.integer)):
        raise ValueError(
            f"Invalid value for `num_nodes`: expected None or an int. Received: "
            f"num_nodes={num_nodes!r}."
        )
    num_nodes = int(num_nodes)
    if smallest is not None and num_nodes < smallest:
        raise ValueError(
            f"Invalid value for `num_nodes`: the edge list `{name}` has node ids up to "
            f"{smallest - 1}, so it needs num_nodes >= {smallest}. Received: "
            f"num_nodes={num_nodes}. Pass the graph's node count."
        )
    if smallest is None and num_nodes != shape[0]:
        raise ValueError(
            f"Invalid value for `num_nodes`: `{name}` is a {tuple(shape)} matrix. Received: "
            f"num_nodes={num_nodes}. Omit num_nodes for a matrix, or pass {shape[0]}."
        )
    return num_nodes


def laplacian(
    adjacency: ArrayLike | sp.spmatrix | sp.sparray,
    normalization: str = "coin",
    self_loops: bool = True,
    format: str = "edges",
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | np.ndarray | sp.csr_matrix:
    """Returns the graph Laplacian L of an adjacency matrix, for `GraphDiffusion`.

    L is the generator of the graph heat equation u_t = -L u that
    [`GraphDiffusion`][keras_cd.layers.GraphDiffusion] integrates. With
    A_tilde = A + I (`self_loops=True`) or A, D its degree matrix and
    A_hat = D^-1/2 A_tilde D^-1/2:

    - `"coin"`: L = diag(rowsum A_hat) - A_hat, as in the COIN reference code;
    - `"symmetric"`: L = I - A_hat;
    - `"random_walk"`: L = I - D^-1 A_tilde;
    - `"none"`: L = D - A_tilde.

    All are positive semi-definite ("random_walk" is similar to "symmetric");
    "coin" and "none" have zero row sums (L 1 = 0), so diffusion with them
    conserves mass and constants are steady states.

    An isolated node (degree 0) gets D^-1/2 = D^-1 = 0, not an infinity.

    Args:
        adjacency: (N, N) scipy.sparse matrix or array of non-negative weights.
        normalization: one of `"coin"`, `"symmetric"`, `"random_walk"`,
            `"none"`. Defaults to `"coin"`.
        self_loops: bool, add I to A before normalizing. Defaults to `True`.
        format: `"edges"` for `(senders, receivers, weights)` (int32, int32,
            float32; the nonzeros of L sorted by receiver, plus every node's
            diagonal entry, an explicit 0 for an isolated node, so that the
            largest index is N - 1 and the list carries its node count),
            `"dense"` for an (N, N) float32 array, `"scipy"` for a CSR matrix
            (float64). Defaults to `"edges"`.

    Returns:
        L in the chosen `format`: a tuple of three (E,) arrays, an (N, N)
        array or an (N, N) `scipy.sparse.csr_matrix`.

    Raises:
        ValueError: if `normalization` is not one of `NORMALIZATIONS`,
            `format` is not one of `FORMATS`, `adjacency` is not square, or
            it holds negative or non-finite weights.

    Example:
        >>> import numpy as np, keras_cd
        >>> path = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
        >>> L = keras_cd.graph.laplacian(path, "none", format="dense")
        >>> L.tolist()
        [[1.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 1.0]]
        >>> coin = keras_cd.graph.laplacian(path, format="dense")  # the default, "coin"
        >>> bool(np.allclose(coin.sum(axis=1), 0, atol=1e-6))  # L 1 = 0: mass is conserved
        True
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"Invalid value for `normalization`: expected one of {list(NORMALIZATIONS)}. "
            f"Received: normalization={normalization!r}. Use 'coin' for the paper's."
        )
    if format not in FORMATS:
        raise ValueError(
            f"Invalid value for `format`: expected one of {list(FORMATS)}. "
            f"Received: format={format!r}. Use 'edges' for large sparse graphs."
        )
    matrix = _as_csr(adjacency)
    size = matrix.shape[0]
    identity = sp.identity(size, format="csr")
    if self_loops:
        matrix = matrix + identity
    degrees = np.asarray(matrix.sum(axis=1)).ravel()
    if normalization == "none":
        result = sp.diags(degrees) - matrix
    elif normalization == "random_walk":
        result = identity - sp.diags(_inverse_power(degrees, -1.0)) @ matrix
    else:
        scale = sp.diags(_inverse_power(degrees, -0.5))
        normalized = scale @ matrix @ scale
        if normalization == "symmetric":
            result = identity - normalized
        else:
            result = sp.diags(np.asarray(normalized.sum(axis=1)).ravel()) - normalized
    return _to_format(result, format)


def _as_scipy(matrix, num_nodes=None, name="laplacian"):
    if isinstance(matrix, tuple):
        size = num_nodes_of(matrix, num_nodes, name)
        senders, receivers, weights = (np.asarray(a) for a in matrix)
        return sp.csr_matrix((weights.astype(np.float64), (receivers, senders)), shape=(size, size))
    if num_nodes is not None:
        num_nodes_of(matrix, num_nodes, name)
    return (
        sp.csr_matrix(matrix, dtype=np.float64)
        if sp.issparse(matrix)
        else sp.csr_matrix(np.asarray(matrix, dtype=np.float64))
    )


def gershgorin_bound(
    matrix: ArrayLike | sp.spmatrix | sp.sparray | tuple[ArrayLike, ArrayLike, ArrayLike],
) -> float:
    """Returns Gershgorin's upper bound on the largest eigenvalue: `max_i sum_j |L_ij|`.

    Every eigenvalue of L lies in a disc centered at a diagonal entry L_ii of
    radius `sum_{j != i} |L_ij|`, so `lambda_max(L) <= max_i sum_j |L_ij|`. The
    bound costs one pass over the nonzeros; when sigma2 * bound <= 2 it
    already proves an explicit diffusion step stable.

    Args:
        matrix: (N, N) Laplacian: dense array, scipy.sparse matrix or edge
            list `(senders, receivers, weights)`.

    Returns:
        float, the bound (0.0 for an empty graph).

    Example:
        >>> import numpy as np, keras_cd
        >>> path = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
        >>> L = keras_cd.graph.laplacian(path, "none", format="scipy")
        >>> keras_cd.graph.gershgorin_bound(L)  # row 1: |-1| + 2 + |-1|; lambda_max is 3
        4.0
    """
    matrix = _as_scipy(matrix)
    return float(np.max(np.asarray(abs(matrix).sum(axis=1)).ravel(), initial=0.0))


def largest_eigenvalue(
    matrix: ArrayLike | sp.spmatrix | sp.sparray | tuple[ArrayLike, ArrayLike, ArrayLike],
    tolerance: float = 1e-6,
) -> float:
    """Returns the largest eigenvalue of a Laplacian, by Lanczos.

    Uses scipy's `eigsh` for a symmetric L, `eigs` (largest real part)
    otherwise, and a dense eigensolver for graphs of at most 64 nodes. Explicit
    diffusion steps u <- u - sigma2 L u are stable when
    sigma2 * lambda_max <= 2: pass the result as `lambda_max` to
    [`GraphDiffusion`][keras_cd.layers.GraphDiffusion] to check it.

    Args:
        matrix: (N, N) Laplacian: dense array, scipy.sparse matrix or edge
            list `(senders, receivers, weights)`.
        tolerance: float, relative accuracy asked of Lanczos (unused for
            graphs of at most 64 nodes). Defaults to `1e-6`.

    Returns:
        float, lambda_max(L) (for a non-symmetric L, the largest real part).

    Example:
        >>> import numpy as np, keras_cd
        >>> path = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
        >>> L = keras_cd.graph.laplacian(path, "none", format="scipy")
        >>> round(keras_cd.graph.largest_eigenvalue(L), 6)  # the spectrum is 0, 1, 3
        3.0
    """
    matrix = _as_scipy(matrix)
    symmetric = abs(matrix - matrix.T).max() <= 1e-9 if matrix.nnz else True
    if matrix.shape[0] <= 64:
        values = (
            np.linalg.eigvalsh(matrix.toarray())
            if symmetric
            else np.linalg.eigvals(matrix.toarray()).real
        )
        return float(values.max())
    from scipy.sparse.linalg import eigs, eigsh

    if not symmetric:  # "random_walk": real spectrum, similar to "symmetric"
        return float(
            eigs(matrix, k=1, which="LR", tol=tolerance, return_eigenvectors=False)[0].real
        )
    return float(eigsh(matrix, k=1, which="LA", tol=tolerance, return_eigenvectors=False)[0])


def stability_lambda_max(matrix, sigma2, exact=False):
    """Returns lambda_max(L) for the explicit step's stability check, as cheaply as it may be.

    Gershgorin's O(edges) bound when it already proves `sigma2` stable
    (sigma2 * bound <= 2; no eigensolver needed), else the largest eigenvalue
    by Lanczos.

    Args:
        matrix: (N, N) Laplacian: dense array, scipy.sparse matrix or edge
            list.
        sigma2: float, the explicit step size to check.
        exact: bool, always return the eigenvalue (for a learned sigma2,
            whose limit 2 / lambda_max matters). Defaults to `False`.

    Returns:
        float, an upper bound on lambda_max that proves `sigma2` stable, or
        lambda_max itself.

    Example:
        >>> import numpy as np, keras_cd
        >>> from keras_cd.graph.laplacian import stability_lambda_max
        >>> path = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
        >>> L = keras_cd.graph.laplacian(path, "none", format="scipy")  # lambda_max = 3
        >>> stability_lambda_max(L, 0.5)  # Gershgorin's 4 proves 0.5 * 4 <= 2
        4.0
        >>> round(stability_lambda_max(L, 0.6), 6)  # 0.6 * 4 > 2: the eigenvalue
        3.0
    """
    bound = gershgorin_bound(matrix)
    if not exact and sigma2 * bound <= 2:
        return bound
    return largest_eigenvalue(matrix)


def is_symmetric(
    matrix: ArrayLike | sp.spmatrix | sp.sparray | tuple[ArrayLike, ArrayLike, ArrayLike],
    tolerance: float = 1e-6,
) -> bool:
    """Returns whether a Laplacian (dense, scipy.sparse or edge list) equals its transpose.

    Entries are compared relative to the largest one:
    max |L - L^T| <= tolerance * max |L|. The implicit scheme of
    [`GraphDiffusion`][keras_cd.layers.GraphDiffusion] needs a symmetric L;
    every normalization but `"random_walk"` gives one for an undirected graph.

    Args:
        matrix: (N, N) Laplacian: dense array, scipy.sparse matrix or edge
            list `(senders, receivers, weights)`.
        tolerance: float, relative tolerance. Defaults to `1e-6`.

    Returns:
        A Python bool; an empty matrix is symmetric.

    Example:
        >>> import numpy as np, keras_cd
        >>> star = np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0]])
        >>> keras_cd.graph.is_symmetric(keras_cd.graph.laplacian(star, "symmetric"))
        True
        >>> keras_cd.graph.is_symmetric(keras_cd.graph.laplacian(star, "random_walk"))
        False
    """
    matrix = _as_scipy(matrix)
    if not matrix.nnz:
        return True
    return bool(abs(matrix - matrix.T).max() <= tolerance * abs(matrix).max())
