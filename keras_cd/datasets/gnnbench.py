"""Citation graphs in the "gnnbench" npz layout (Shchur et al., 2018)."""

import dataclasses
import os

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

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
    """A node-classification graph after the standard preprocessing."""

    adjacency: sp.csr_matrix  # (N, N), symmetric, 0/1, no self-loops
    features: sp.csr_matrix  # (N, F) float32, binary rows normalised to sum 1
    labels: np.ndarray  # (N,) int64
    class_names: list
    nodes: np.ndarray  # indices of the kept nodes in the original file

    @property
    def num_classes(self):
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


def load_gnnbench(path):
    """Loads Cora, CiteSeer or PubMed from a gnnbench `.npz` file.

    Applies the protocol of Shchur et al. (and of the COIN code): the graph is
    made undirected and unweighted, self-loops are dropped, only the largest
    connected component is kept (2485 of Cora's 2708 nodes), and the features
    are binarised and row-normalised. Files come from the gnnbench
    repository (github.com/shchur/gnn-benchmark, `data/npz/`).
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


def random_split(labels, train_per_class=20, val_per_class=30, seed=0):
    """Shchur et al.'s random split: per class `train_per_class` training and
    `val_per_class` validation nodes, all the rest for test.

    Returns `(train, validation, test)` index arrays.
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
