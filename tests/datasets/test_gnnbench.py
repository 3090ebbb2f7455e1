import numpy as np
import pytest
import scipy.sparse as sp

from keras_cd.datasets import load_gnnbench, random_split


def write_gnnbench(path, adjacency, features, labels, **extra):
    adjacency, features = sp.csr_matrix(adjacency), sp.csr_matrix(features)
    arrays = {
        "adj_data": adjacency.data,
        "adj_indices": adjacency.indices,
        "adj_indptr": adjacency.indptr,
        "adj_shape": np.array(adjacency.shape),
        "attr_data": features.data,
        "attr_indices": features.indices,
        "attr_indptr": features.indptr,
        "attr_shape": np.array(features.shape),
        "labels": np.asarray(labels),
        **extra,
    }
    np.savez(path, **arrays)
    return path


def toy(tmp_path):
    # Nodes 0-3: a directed, weighted path with a self-loop; node 4-5: a second component.
    adjacency = np.zeros((6, 6))
    adjacency[0, 1], adjacency[1, 2], adjacency[3, 2], adjacency[1, 1], adjacency[4, 5] = (
        3,
        1,
        1,
        1,
        1,
    )
    features = np.array([[2, 0, 1], [0, 0, 0], [1, 1, 1], [0, 5, 0], [1, 0, 0], [0, 1, 0]])
    return write_gnnbench(
        tmp_path / "toy.npz",
        adjacency,
        features,
        [1, 1, 3, 3, 0, 0],
        class_names=np.array(["a", "b", "c", "d"]),
    )


def test_preprocessing_of_the_standard_protocol(tmp_path):
    data = load_gnnbench(toy(tmp_path))
    assert data.nodes.tolist() == [0, 1, 2, 3]  # largest connected component
    a = data.adjacency.toarray()
    np.testing.assert_array_equal(a, a.T)  # undirected
    assert set(np.unique(a)) <= {0.0, 1.0} and np.all(np.diag(a) == 0)  # unweighted, no loops
    features = data.features.toarray()
    np.testing.assert_allclose(features[0], [0.5, 0, 0.5])  # binarised, row-normalised
    np.testing.assert_allclose(features[1], 0)  # an empty row stays empty
    assert data.labels.tolist() == [0, 0, 1, 1] and data.class_names == ["b", "d"]
    assert data.num_classes == 2


def test_cora(cora_path):
    data = load_gnnbench(cora_path)
    assert data.adjacency.shape == (2485, 2485) and data.adjacency.nnz // 2 == 5069
    assert data.features.shape == (2485, 1433) and data.num_classes == 7
    np.testing.assert_allclose(np.asarray(data.features.sum(axis=1)).ravel(), 1.0, rtol=1e-5)
    train, validation, test = random_split(data.labels, seed=0)
    assert len(train) == 140 and len(validation) == 210 and len(test) == 2485 - 350
    assert np.all(np.bincount(data.labels[train]) == 20) and np.all(
        np.bincount(data.labels[validation]) == 30
    )


def test_random_split_is_a_seeded_partition():
    labels = np.repeat(np.arange(3), 60)
    train, validation, test = random_split(labels, seed=4)
    assert sorted(np.concatenate([train, validation, test]).tolist()) == list(range(180))
    again = random_split(labels, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip((train, validation, test), again))
    assert not np.array_equal(train, random_split(labels, seed=5)[0])


def test_impossible_split_is_a_clear_error():
    labels = np.array([0] * 60 + [1] * 49)
    with pytest.raises(ValueError, match=r"Impossible split: classes \[1\] have \[49\] nodes"):
        random_split(labels)


def test_bad_paths_and_malformed_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="No gnnbench file"):
        load_gnnbench(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_gnnbench(tmp_path / "text.npz")
    np.savez(tmp_path / "partial.npz", adj_data=np.ones(1))
    with pytest.raises(ValueError, match="missing arrays"):
        load_gnnbench(tmp_path / "partial.npz")
    write_gnnbench(tmp_path / "mismatch.npz", np.eye(4), np.eye(3), [0, 1, 2])
    with pytest.raises(ValueError, match="disagree on the node count"):
        load_gnnbench(tmp_path / "mismatch.npz")
