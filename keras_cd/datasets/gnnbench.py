"""Citation graphs in the "gnnbench" npz layout (Shchur et al., 2018).

The node-classification data of COIN (Wang, Bao & Shi, arXiv 2403.15726):
Cora, CiteSeer and PubMed, whose adjacency matrix gives the graph Laplacian L
of the heat equation u_t = -L u (`keras_cd.graph.laplacian`) and whose
features feed the base classifier. [`load_gnnbench`][keras_cd.datasets.load_gnnbench]
reads a file into a [`GraphData`][keras_cd.datasets.GraphData] with the
standard preprocessing; [`random_split`][keras_cd.datasets.random_split] draws
Shchur et al.'s per-class split. `REQUIRED` lists the arrays a file must hold
(besides the labels).
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

# The arrays of a gnnbench file besides the labels: the adjacency and attribute CSR parts.
REQUIRED = (
    "adj_data",
    "adj_indices",
    "adj_indptr",
    "adj_shape",
    "attr_data",
    "attr_indices",
    "attr_indptr",
    "attr_shape",
)


@dataclasses.dataclass
class GraphData:
    """A node-classification graph after the standard preprocessing.

    Returned by `load_gnnbench`; a dataclass, each argument kept as the
    attribute of the same name.

    Args:
        adjacency: (N, N) `scipy.sparse.csr_matrix`, symmetric, 0/1, without
            self-loops.
        features: (N, F) float32 `scipy.sparse.csr_matrix`, binary rows
            normalized to sum 1 (all-zero rows stay zero).
        labels: (N,) int64 array of classes 0 .. C - 1.
        class_names: list of C str, the name of each class.
        nodes: (N,) array, the indices of the kept nodes in the original file.

    Example:
        >>> import numpy as np, scipy.sparse as sp, keras_cd
        >>> data = keras_cd.datasets.GraphData(
        ...     sp.csr_matrix((2, 2)), sp.csr_matrix((2, 3)), np.array([0, 2]), ["a", "b", "c"],
        ...     np.arange(2),
        ... )
        >>> data.num_classes
        3
    """

    adjacency: sp.csr_matrix  # (N, N), symmetric, 0/1, no self-loops
    features: sp.csr_matrix  # (N, F) float32, binary rows normalized to sum 1
    labels: np.ndarray  # (N,) int64
    class_names: list[str]
    nodes: np.ndarray  # indices of the kept nodes in the original file

    @property
    def num_classes(self) -> int:
        """The number of classes C: the largest label + 1."""
        return int(self.labels.max()) + 1


def _csr(archive, prefix, path):
    try:
        return sp.csr_matrix(
            (archive[f"{prefix}_data"], archive[f"{prefix}_indices"], archive[f"{prefix}_indptr"]),
            shape=tuple(archive[f"{prefix}_shape"]),
        )
    except (ValueError, IndexError) as error:
        raise ValueError(
            f"Malformed gnnbench file {path!r}: the {prefix}_* arrays do not form a "
            f"CSR matrix ({error}). Re-download the file."
        ) from error


def load_gnnbench(path: str | os.PathLike) -> GraphData:
    """Loads Cora, CiteSeer or PubMed from a gnnbench `.npz` file.

    Applies the protocol of Shchur et al. (and of the COIN code): the graph is
    made undirected and unweighted, self-loops are dropped, only the largest
    connected component is kept (2485 of Cora's 2708 nodes), and the features
    are binarized and row-normalized. Classes left without a node are
    dropped and the others renumbered 0 .. C - 1. Files come from the
    gnnbench repository (github.com/shchur/gnn-benchmark, `data/npz/`); the
    labels may be stored as `labels` (one int per node) or as one-hot CSR
    parts `labels_*`.

    Args:
        path: str or path-like, the `.npz` file.

    Returns:
        A `GraphData`.

    Raises:
        FileNotFoundError: if there is no file at `path`.
        ValueError: if the file is not a readable `.npz` archive, lacks one
            of the `REQUIRED` arrays or the labels, holds arrays that do not
            form CSR matrices, or its parts disagree on the node count.

    Example:
        With a downloaded file:

        ```python
        data = keras_cd.datasets.load_gnnbench("data/cora.npz")
        train, validation, test = keras_cd.datasets.random_split(data.labels, seed=0)
        ```

        The layout, on a file of four nodes (edges 0 -> 1 -> 2, node 3 alone):

        >>> import os, tempfile, numpy as np, scipy.sparse as sp, keras_cd
        >>> adjacency = sp.csr_matrix(([1.0, 1.0], ([0, 1], [1, 2])), shape=(4, 4))
        >>> attributes = sp.csr_matrix(np.array([[1, 1, 0], [0, 2, 0], [0, 0, 1], [1, 0, 0.0]]))
        >>> arrays = {"labels": np.array([0, 1, 1, 2])}
        >>> for prefix, matrix in (("adj", adjacency), ("attr", attributes)):
        ...     for part in ("data", "indices", "indptr", "shape"):
        ...         arrays[f"{prefix}_{part}"] = np.asarray(getattr(matrix, part))
        >>> path = os.path.join(tempfile.mkdtemp(), "tiny.npz")
        >>> np.savez(path, **arrays)
        >>> data = keras_cd.datasets.load_gnnbench(path)
        >>> data.nodes.tolist()  # the largest connected component
        [0, 1, 2]
        >>> data.adjacency.toarray().tolist()  # undirected
        [[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
        >>> data.features.toarray().tolist()  # binarized, rows summing to 1
        [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
        >>> data.labels.tolist(), data.num_classes  # class 2 left with node 3
        ([0, 1, 1], 2)
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No gnnbench file at {path!r}. Download e.g. cora.npz from "
            "https://github.com/shchur/gnn-benchmark/tree/master/data/npz and pass its path."
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise ValueError(
            f"Malformed gnnbench file {path!r}: not a readable .npz archive ({error})."
        ) from error
    with archive:
        missing = [key for key in REQUIRED if key not in archive.files]
        if missing or ("labels" not in archive.files and "labels_data" not in archive.files):
            raise ValueError(
                f"Malformed gnnbench file {path!r}: missing arrays "
                f"{missing or ['labels']}. Expected the keys {list(REQUIRED)} + labels."
            )
        adjacency = _csr(archive, "adj", path)
        features = _csr(archive, "attr", path)
        if "labels" in archive.files:
            labels = np.asarray(archive["labels"])
        else:
            labels = np.asarray(_csr(archive, "labels", path).argmax(axis=1)).ravel()
        names = list(archive["class_names"]) if "class_names" in archive.files else None
    size = adjacency.shape[0]
    if adjacency.shape != (size, size) or features.shape[0] != size or labels.shape != (size,):
        raise ValueError(
            f"Malformed gnnbench file {path!r}: adjacency {adjacency.shape}, features "
            f"{features.shape} and labels {labels.shape} disagree on the node count."
        )
    adjacency = ((adjacency + adjacency.T) > 0).astype(np.float32).tocsr()
    adjacency.setdiag(0)
    adjacency.eliminate_zeros()
    _, component = connected_components(adjacency, directed=False)
    nodes = np.flatnonzero(component == np.argmax(np.bincount(component)))
    adjacency = adjacency[nodes][:, nodes].tocsr()
    features = (features[nodes] != 0).astype(np.float32).tocsr()
    row_sums = np.asarray(features.sum(axis=1)).ravel()
    features = (
        sp.diags(np.where(row_sums > 0, 1.0 / np.maximum(row_sums, 1.0), 0.0)) @ features
    ).tocsr()
    labels = labels[nodes].astype(np.int64)
    present = np.unique(labels)  # classes may vanish with the small components
    labels = np.searchsorted(present, labels)
    class_names = (
        [str(names[c]) for c in present] if names is not None else [str(c) for c in present]
    )
    return GraphData(adjacency, features.astype(np.float32), labels, class_names, nodes)


def random_split(
    labels: ArrayLike, train_per_class: int = 20, val_per_class: int = 30, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draws Shchur et al.'s random split of the nodes.

    Per class, `train_per_class` training and `val_per_class` validation
    nodes, drawn uniformly; all the other nodes are for test.

    Args:
        labels: (N,) int array of classes 0 .. C - 1.
        train_per_class: int, training nodes per class. Defaults to `20`.
        val_per_class: int, validation nodes per class. Defaults to `30`.
        seed: int, seed of `np.random.default_rng`. Defaults to `0`.

    Returns:
        `(train, validation, test)`: three sorted int arrays of node
        indices, disjoint and together covering every node.

    Raises:
        ValueError: if a class has fewer than
            `train_per_class + val_per_class` nodes.

    Example:
        >>> import numpy as np, keras_cd
        >>> labels = np.repeat([0, 1], 5)
        >>> train, validation, test = keras_cd.datasets.random_split(labels, 2, 1, seed=0)
        >>> len(train), len(validation), len(test)
        (4, 2, 4)
        >>> np.bincount(labels[train]).tolist()  # 2 per class
        [2, 2]
    """
    labels = np.asarray(labels)
    need = train_per_class + val_per_class
    counts = np.bincount(labels)
    small = [int(c) for c in np.flatnonzero(counts < need)]
    if small:
        raise ValueError(
            f"Impossible split: classes {small} have {[int(counts[c]) for c in small]} nodes, "
            f"fewer than train_per_class + val_per_class = {need}. Lower the per-class counts "
            "or drop those classes."
        )
    rng = np.random.default_rng(seed)
    train, validation = [], []
    for c in range(len(counts)):
        chosen = rng.permutation(np.flatnonzero(labels == c))[:need]
        train.append(chosen[:train_per_class])
        validation.append(chosen[train_per_class:])
    train, validation = np.sort(np.concatenate(train)), np.sort(np.concatenate(validation))
    test = np.setdiff1d(np.arange(len(labels)), np.concatenate([train, validation]))
    return train, validation, test
