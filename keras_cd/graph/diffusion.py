"""Exact graph diffusion offline (scipy.sparse): P u and rows of the operator P.

COIN's diffusion half (Wang, Bao & Shi, arXiv 2403.15726) integrates the
graph heat equation u_t = -L u. With a fixed step size the diffusion of
`keras_cd.GraphDiffusion` is a fixed linear map u_T = P u_0. One step S is

    explicit:  S = I - sigma2 L          implicit:  S = (I + sigma2 L)^-1

and `num_steps` steps with teleport alpha (0 for COIN's heat diffusion) are

    u_{k+1} = (1 - alpha) S u_k + alpha u_0,      P = p_K(S),

which with L = I - A_hat (`normalization="symmetric"`) and sigma2 = 1 is
APPNP's personalized-PageRank propagation (alpha = 0.1) and, without
teleport, SGC's A_hat^K. Training a model whose loss reads only a few nodes
needs only those rows of P: `diffusion_rows` computes them once per graph
(K sparse products on a block of unit vectors, or K sparse LU solves for the
implicit scheme), and `keras_cd.layers.PrecomputedDiffusion` applies them;
[`diffuse`][keras_cd.graph.diffuse] applies P to values on every node.
`SCHEMES` lists the time-stepping schemes.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from keras_cd import _validation
from keras_cd.graph.laplacian import _as_scipy

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

# Time-stepping schemes, as in `keras_cd.GraphDiffusion`.
SCHEMES = ("explicit", "implicit")


def _check(num_steps, sigma2, scheme, teleport):
    num_steps = _validation.non_negative_int("num_steps", num_steps, "Use e.g. 20.")
    sigma2 = _validation.non_negative_float("sigma2", sigma2, "Use e.g. 0.35.")
    _validation.one_of("scheme", scheme, SCHEMES, "Use 'explicit' (the paper's) or 'implicit'.")
    teleport = _validation.number(
        "teleport", teleport, "Use 0 for heat diffusion or e.g. 0.1 for APPNP.", low=0, high=1
    )
    return num_steps, sigma2, teleport


def _operator(laplacian, name, num_nodes=None):
    matrix = _as_scipy(laplacian, num_nodes, name)
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(
            f"Invalid value for `{name}`: expected a square (N, N) Laplacian. "
            f"Received: shape {matrix.shape}. Use `keras_cd.graph.laplacian(adjacency)`."
        )
    return matrix


def _step(matrix, sigma2, scheme):
    """Returns the map v -> S v on a dense (N, b) block, S one step of the scheme."""
    if scheme == "explicit":
        return lambda values: values - sigma2 * (matrix @ values)
    from scipy.sparse.linalg import splu

    # One sparse LU factorization, reused by every step and block.
    factor = splu(sp.csc_matrix(sp.identity(matrix.shape[0]) + sigma2 * matrix))
    return factor.solve


def _iterate(step, initial, num_steps, teleport, tolerance=0.0):
    values = initial
    for _ in range(num_steps):
        values = step(values)
        if teleport:
            values = (1 - teleport) * values + teleport * initial
        if tolerance:
            values = _prune(values, tolerance)
    return values


def _prune(values, tolerance):
    if sp.issparse(values):
        values = values.tocsc()
        values.data[np.abs(values.data) <= tolerance] = 0
        values.eliminate_zeros()
        return values
    return np.where(np.abs(values) > tolerance, values, 0.0)


def diffuse(
    laplacian: ArrayLike | sp.spmatrix | sp.sparray | tuple[ArrayLike, ArrayLike, ArrayLike],
    values: ArrayLike | sp.spmatrix | sp.sparray,
    num_steps: int,
    sigma2: float,
    scheme: str = "explicit",
    teleport: float = 0.0,
    num_nodes: int | None = None,
) -> np.ndarray:
    """Applies the diffusion operator to values on every node: P @ values.

    Computes u_K from u_0 = `values` by K steps

        u_{k+1} = (1 - teleport) S u_k + teleport u_0

    with S = I - sigma2 L (explicit) or (I + sigma2 L)^-1 (implicit, one
    sparse LU factorization), in float64. It is what `keras_cd.GraphDiffusion(num_steps, sigma2,
    scheme=scheme)` computes (teleport 0), exactly rather than with CG.

    Args:
        laplacian: (N, N) Laplacian: scipy.sparse matrix, dense array or edge
            list `(senders, receivers, weights)` (`keras_cd.graph.laplacian`).
        values: (N,) or (N, C) array or scipy.sparse matrix, u_0.
        num_steps: int >= 0, K.
        sigma2: float >= 0, step size.
        scheme: `"explicit"` or `"implicit"`. Defaults to `"explicit"`.
        teleport: float in [0, 1], alpha (APPNP's restart probability).
            Defaults to `0.0` (heat diffusion).
        num_nodes: `None` or int, N for an edge-list `laplacian`. Defaults
            to `None`: the number of rows of `values` (every node has one).

    Returns:
        A float64 array of the shape of `values`: P u_0.

    Raises:
        ValueError: if `num_steps` is not an int >= 0, `sigma2` is negative,
            `scheme` is not one of `SCHEMES`, `teleport` is not in [0, 1],
            `laplacian` is not square (or `num_nodes` does not fit it), or
            `values` does not have one row per node.

    Example:
        >>> import numpy as np, keras_cd
        >>> L = keras_cd.graph.laplacian(np.ones((3, 3)) - np.eye(3), "none", format="scipy")
        >>> u = keras_cd.graph.diffuse(L, np.array([3.0, 0.0, 0.0]), 2, 0.1)
        >>> u.round(2).tolist()  # (I - 0.1 L)^2 u_0
        [1.98, 0.51, 0.51]
        >>> float(u.sum())  # L 1 = 0 and L symmetric: the mass is conserved
        3.0
    """
    num_steps, sigma2, teleport = _check(num_steps, sigma2, scheme, teleport)
    values = values.toarray() if sp.issparse(values) else np.asarray(values)
    if num_nodes is None and isinstance(laplacian, tuple) and values.ndim in (1, 2):
        num_nodes = values.shape[0]  # an edge list's isolated last nodes have values too
    matrix = _operator(laplacian, "laplacian", num_nodes)
    if values.ndim not in (1, 2) or values.shape[0] != matrix.shape[0]:
        raise ValueError(
            f"Invalid value for `values`: expected shape ({matrix.shape[0]},) or "
            f"({matrix.shape[0]}, C), one row per node of the Laplacian. "
            f"Received: shape {values.shape}."
        )
    step = _step(matrix, sigma2, scheme) if num_steps else None
    return _iterate(step, values.astype(np.float64), num_steps, teleport)


def diffusion_rows(
    laplacian: ArrayLike | sp.spmatrix | sp.sparray | tuple[ArrayLike, ArrayLike, ArrayLike],
    rows: ArrayLike,
    num_steps: int,
    sigma2: float,
    scheme: str = "explicit",
    teleport: float = 0.0,
    tolerance: float = 0.0,
    block_size: int = 128,
    out: str | os.PathLike | None = None,
    num_nodes: int | None = None,
) -> sp.csr_matrix | np.ndarray:
    """Returns rows of the diffusion operator P (see `diffuse`) for chosen nodes.

    (P u_0)[rows] = P[rows] @ u_0 for any u_0: a model whose loss and metrics
    read only these nodes needs P[rows], not K sparse products per step of
    training. The rows are P^T's columns, P^T = p_K(S^T), computed by the
    same K steps with L^T on unit vectors, `block_size` nodes at a time
    (memory: a few (N, block_size) float64 blocks).

    With `tolerance=0` (the default) the result is exact (float64 arithmetic,
    stored as float32; only exact zeros are left out). On large graphs, where
    K-hop neighborhoods cover the graph and P[rows] is dense, `tolerance > 0`
    drops entries of magnitude <= tolerance after every step, which keeps
    the blocks sparse (they are stored sparse for the explicit scheme without
    `out`): while S is non-expansive in the 1-norm (explicit with
    sigma2 * max L_ii <= 1 on a Laplacian with zero row sums; implicit), a
    row's error in the 1-norm is at most the sum of what was dropped from it.

    Where the rows are dense anyway (an expander graph: a random graph of
    1M nodes is covered by 20 hops of almost every node), pass `out`, a
    `.npy` path: each block is written to that file as soon as it is
    computed (atomically: a temporary sibling renamed into place at the
    end), so memory stays a few blocks however many rows are asked for, and
    the rows come back memory-mapped.

    Args:
        laplacian: (N, N) Laplacian, as for `diffuse`.
        rows: 1-D int array (or list) of node indices in [0, N).
        num_steps: int >= 0, K.
        sigma2: float >= 0, step size.
        scheme: `"explicit"` or `"implicit"`. Defaults to `"explicit"`.
        teleport: float in [0, 1], alpha (APPNP's restart probability).
            Defaults to `0.0` (heat diffusion).
        tolerance: float >= 0, see above. Defaults to `0.0` (exact).
        block_size: int >= 1, nodes per block. Defaults to `128`.
        out: `None` or a path ending in `.npy`: write the rows there as a
            dense float32 (len(rows), N) array. Defaults to `None`.
        num_nodes: `None` or int, N for an edge-list `laplacian` made by
            hand whose last nodes may have no entries. Defaults to `None`:
            the matrix's N, or for an edge list its largest node index + 1
            (exact for `keras_cd.graph.laplacian`'s edge lists, which list
            every node's diagonal).

    Returns:
        A `scipy.sparse.csr_matrix` of shape (len(rows), N), float32; with
        `out`, the dense rows read back from that file
        (`np.load(out, mmap_mode="r")`).

    Raises:
        ValueError: if `num_steps`, `sigma2`, `scheme` or `teleport` is
            invalid (as for `diffuse`), `tolerance` is negative, `block_size`
            is not an int >= 1, `laplacian` is not square (or `num_nodes`
            does not fit it), `rows` is not a 1-D array of node indices in
            [0, N), or `out` does not end in `.npy`.

    Example:
        >>> import numpy as np, keras_cd
        >>> L = keras_cd.graph.laplacian(np.ones((3, 3)) - np.eye(3), "none", format="scipy")
        >>> P0 = keras_cd.graph.diffusion_rows(L, [0], 2, 0.1)
        >>> P0.shape
        (1, 3)
        >>> u0 = np.array([3.0, 0.0, 0.0])
        >>> (P0 @ u0).round(2).tolist()  # row 0 of diffuse(L, u0, 2, 0.1)
        [1.98]
    """
    num_steps, sigma2, teleport = _check(num_steps, sigma2, scheme, teleport)
    tolerance = _validation.non_negative_float("tolerance", tolerance, "Use 0 for exact rows.")
    block_size = _validation.positive_int("block_size", block_size, "Use e.g. 128.")
    matrix = _operator(laplacian, "laplacian", num_nodes)
    size = matrix.shape[0]
    rows = np.asarray(rows)
    if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer) and rows.size:
        raise ValueError(
            f"Invalid value for `rows`: expected a 1-D array of node indices. "
            f"Received: {rows.dtype} array of shape {rows.shape}."
        )
    rows = rows.astype(np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= size):
        raise ValueError(
            f"Invalid value for `rows`: expected node indices in [0, {size}). "
            f"Received: indices from {rows.min()} to {rows.max()}."
        )
    if out is not None and not os.fspath(out).endswith(".npy"):
        raise ValueError(
            f"Invalid value for `out`: expected None or a path ending in '.npy'. "
            f"Received: {out!r}. Use e.g. out='rows.npy'."
        )
    transpose = sp.csr_matrix(matrix.T)
    step = _step(transpose, sigma2, scheme) if num_steps else None
    sparse = tolerance > 0 and scheme == "explicit" and out is None

    def blocks():
        for start in range(0, rows.size, block_size):
            chosen = rows[start : start + block_size]
            unit = sp.csc_matrix(
                (np.ones(chosen.size), (chosen, np.arange(chosen.size))), shape=(size, chosen.size)
            )
            initial = unit if sparse else unit.toarray()
            yield _iterate(step, initial, num_steps, teleport, tolerance).T

    if out is not None:
        return _write_rows(out, (rows.size, size), blocks())
    parts = [sp.csr_matrix(block, dtype=np.float32) for block in blocks()]
    if not parts:
        return sp.csr_matrix((0, size), dtype=np.float32)
    result = sp.vstack(parts, format="csr")
    result.eliminate_zeros()
    return result


def _write_rows(path, shape, blocks):
    """Streams (b, N) blocks into one float32 .npy file; returns it memory-mapped."""
    from keras_cd._atomic import atomic_path

    with atomic_path(os.fspath(path), suffix=".npy") as temporary, open(temporary, "wb") as file:
        header = {"descr": "<f4", "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(file, header)
        for block in blocks:
            dense = block.toarray() if sp.issparse(block) else block
            np.ascontiguousarray(dense, dtype="<f4").tofile(file)
    return np.load(path, mmap_mode="r")
