"""keras_cd.few_shot: the sampler, the reference preprocessing and graph, COIN, the baselines.

COIN is checked against the reference network trained step by step in
weight space (autodiff, PyTorch's SGD written out, explicit diffusion
steps), the graph against a direct NumPy construction, the preprocessing
against closed forms; the harness against reading the query labels.
"""

import os
import pickle

import keras
import numpy as np
import pytest
from keras import ops

from keras_cd import _backend, few_shot

WAY, SHOT, QUERIES = 3, 2, 3


def clustered(classes=12, per_class=25, width=10, noise=0.6, seed=0):
    """Rows around one centre per class; classes 0-3 base, 4-5 val, the rest novel."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), per_class)
    centres = rng.normal(size=(classes, width))
    features = centres[labels] + noise * rng.normal(size=(len(labels), width))
    splits = np.where(labels < 4, "base", np.where(labels < 6, "val", "novel"))
    return features.astype("float32"), labels, splits


@pytest.fixture(scope="module")
def data():
    return few_shot.FeatureSet(*clustered())


@pytest.fixture(scope="module")
def episode(data):
    return few_shot.sample_tasks(data, WAY, SHOT, QUERIES, num_tasks=5, seed=7)


# ---------------------------------------------------------------- the sampler


def test_sampler_draws_disjoint_support_and_queries_of_the_requested_split(data):
    tasks, query_labels = few_shot.sample_tasks(data, 4, 3, 5, num_tasks=50, seed=1)
    novel = set(data.classes("novel").tolist())
    assert tasks.support.shape == (50, 12) and tasks.query.shape == query_labels.shape == (50, 20)
    for t in range(50):
        rows = np.concatenate([tasks.support[t], tasks.query[t]])
        assert len(set(rows.tolist())) == len(rows)  # no row twice, support and query disjoint
        assert set(data.labels[rows].tolist()) <= novel and set(data.split[rows]) == {"novel"}
        assert len(set(tasks.classes[t].tolist())) == 4
        # label i is the class classes[t, i], for the support and the (hidden) query labels
        np.testing.assert_array_equal(
            data.labels[tasks.support[t]], tasks.classes[t][tasks.support_labels[t]]
        )
        np.testing.assert_array_equal(
            data.labels[tasks.query[t]], tasks.classes[t][query_labels[t]]
        )
        assert np.bincount(query_labels[t], minlength=4).tolist() == [5] * 4
    val, _ = few_shot.sample_tasks(data, 2, 1, 3, num_tasks=10, seed=1, split="val")
    assert set(data.split[val.support.ravel()]) == {"val"}


def test_sampler_is_seeded_per_task(data):
    first, labels = few_shot.sample_tasks(data, WAY, SHOT, QUERIES, num_tasks=20, seed=3)
    again, labels_again = few_shot.sample_tasks(data, WAY, SHOT, QUERIES, num_tasks=20, seed=3)
    other, _ = few_shot.sample_tasks(data, WAY, SHOT, QUERIES, num_tasks=20, seed=4)
    prefix, prefix_labels = few_shot.sample_tasks(data, WAY, SHOT, QUERIES, num_tasks=6, seed=3)
    for a, b in (
        (first.support, again.support),
        (first.query, again.query),
        (labels, labels_again),
    ):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first.seeds, again.seeds)
    assert not np.array_equal(first.query, other.query)
    # task i depends on (seed, i) only: a shorter run draws the first tasks of a longer one
    np.testing.assert_array_equal(first.query[:6], prefix.query)
    np.testing.assert_array_equal(labels[:6], prefix_labels)
    # the queries are shuffled: their positions say nothing of their class
    assert any(np.any(np.diff(row) < 0) for row in labels)


# ---------------------------------------------------------- the preprocessing


def test_center_normalize_is_cl2n():
    features = np.array([[3.0, 4.0, 1.0], [1.0, 1.0, 1.0], [-2.0, 1.0, 1.0]])
    mean = np.array([0.0, 0.0, 1.0])
    expected = np.array([[0.6, 0.8, 0.0], [1 / np.sqrt(2), 1 / np.sqrt(2), 0.0], [-2, 1, 0]])
    expected[2] /= np.sqrt(5)
    np.testing.assert_allclose(few_shot.center_normalize(features, mean), expected, atol=1e-7)
    rows = np.random.default_rng(0).normal(size=(4, 7, 5))
    out = few_shot.center_normalize(rows, rows[0, 0])
    np.testing.assert_allclose(np.linalg.norm(out[:, 1:], axis=-1), 1, atol=1e-6)
    assert np.all(out[0, 0] == 0)  # the base mean itself: 0, not NaN


def test_the_query_shift_moves_the_query_mean_onto_the_support_mean():
    rng = np.random.default_rng(1)
    support, query = rng.normal(size=(6, 4, 3)), rng.normal(size=(6, 9, 3)) + 5
    shifted = few_shot.shift_queries(support, query)
    np.testing.assert_allclose(shifted.mean(axis=1), support.mean(axis=1), atol=1e-5)
    eta = support.mean(axis=1) - query.mean(axis=1)
    np.testing.assert_allclose(shifted, query + eta[:, None, :], atol=1e-5)
    np.testing.assert_allclose(  # a translation: differences between queries are kept
        shifted[:, 1:] - shifted[:, :1], query[:, 1:] - query[:, :1], atol=1e-5
    )


def test_preprocess_is_cl2n_then_the_shift(episode):
    tasks, _ = episode
    support, query = few_shot.preprocess(tasks)
    raw_s = tasks.features[tasks.support] - tasks.base_mean
    raw_q = tasks.features[tasks.query] - tasks.base_mean
    s = raw_s / np.linalg.norm(raw_s, axis=-1, keepdims=True)
    q = raw_q / np.linalg.norm(raw_q, axis=-1, keepdims=True)
    np.testing.assert_allclose(support, s, atol=1e-6)
    np.testing.assert_allclose(
        query, q + s.mean(1, keepdims=True) - q.mean(1, keepdims=True), atol=1e-6
    )
    np.testing.assert_allclose(few_shot.preprocess(tasks, shift=False)[1], q, atol=1e-6)


# ----------------------------------------------------------------- the graph


def direct_reference_laplacian(points, num_neighbors=8, bandwidth_neighbor=4):
    """The reference construction in plain NumPy loops, float64; each point its own neighbour."""
    points = np.asarray(points, np.float64)
    n = len(points)
    distances = np.array([[np.linalg.norm(a - b) for b in points] for a in points])
    weights = np.zeros((n, n))
    for i in range(n):
        ordered = np.sort(distances[i])  # ordered[0] = 0: the point itself
        cutoff, bandwidth = ordered[num_neighbors - 1], ordered[bandwidth_neighbor - 1]
        for j in range(n):
            if distances[i, j] < cutoff:
                weights[i, j] = np.exp(-((distances[i, j] / bandwidth) ** 2))
    degrees = weights.sum(axis=1)
    normalized = weights / np.sqrt(np.outer(degrees, degrees))
    symmetric = (normalized + normalized.T) / 2
    return np.diag(symmetric.sum(axis=1)) - symmetric


def test_the_reference_graph_matches_a_direct_construction():
    points = np.random.default_rng(2).normal(size=(3, 24, 6)).astype("float32")
    batch = few_shot.reference_laplacian(points)
    for p, laplacian in zip(points, batch):
        expected = direct_reference_laplacian(p)
        np.testing.assert_allclose(laplacian, expected, atol=2e-6)
        np.testing.assert_allclose(few_shot.reference_laplacian(p), expected, atol=2e-6)
        # 6 other neighbours per point before symmetrisation: the self counts among the 8
        off = ~np.eye(len(p), dtype=bool)
        assert np.allclose(laplacian.sum(axis=1), 0, atol=1e-6) and np.allclose(
            laplacian, laplacian.T
        )
        assert (np.abs(expected[off]) > 0).sum() >= 6 * len(p) // 2
    other = few_shot.reference_laplacian(points[0], num_neighbors=5, bandwidth_neighbor=2)
    np.testing.assert_allclose(other, direct_reference_laplacian(points[0], 5, 2), atol=2e-6)


def test_the_self_neighbour_convention_against_the_package_graph():
    """The reference's 8 / 4 (self included) are the package's 6 / 3 (self excluded): the
    same edges, but different weights (the reference's degrees carry the self-loop's 1)."""
    from keras_cd.graph import gaussian_knn_graph

    points = np.random.default_rng(3).normal(size=(30, 5)).astype("float32")
    reference = few_shot.reference_laplacian(points)
    package = few_shot.package_laplacian(points, num_neighbors=6, bandwidth_neighbor=3)
    off = ~np.eye(30, dtype=bool)
    np.testing.assert_array_equal(reference[off] != 0, package[off] != 0)
    assert not np.allclose(reference, package, atol=1e-3)
    # the package option is keras_cd.graph.gaussian_knn_graph itself
    np.testing.assert_allclose(
        few_shot.package_laplacian(points), gaussian_knn_graph(points, format="dense"), atol=1e-6
    )


# ------------------------------------------------ COIN against weight space


def weight_space_coin(points, laplacian, support_labels, weights, num_steps, epochs=100):
    """The reference network and PyTorch's SGD, step by step, with autodiff, in weight space."""
    w1, b1, w2, b2 = (ops.convert_to_tensor(w[0]) for w in weights)
    x = ops.convert_to_tensor(points)
    lap = ops.convert_to_tensor(laplacian.astype("float32"))
    targets = ops.convert_to_tensor(np.eye(WAY, dtype="float32")[support_labels])
    num_support = len(support_labels)

    def outputs(params):
        w1, b1, w2, b2 = params
        hidden = x + ops.relu(ops.matmul(x, ops.transpose(w1)) + b1)
        u = ops.softmax(ops.matmul(hidden, ops.transpose(w2)) + b2, axis=-1)
        for _ in range(num_steps):
            u = u - 0.5 * ops.matmul(lap, u)
        return u

    def loss(params):
        u = outputs(params)[:num_support]
        return -ops.sum(targets * ops.log(u)) / num_support, None

    gradient = _backend.value_and_grad(loss)

    def step(params, velocities, rate):  # PyTorch's SGD: momentum, coupled weight decay
        _, grads = gradient(params)
        velocities = [0.9 * v + g + 1e-4 * p for v, g, p in zip(velocities, grads, params)]
        return [p - rate * v for p, v in zip(params, velocities)], velocities

    step = _backend.compile(step)
    params, velocities = [w1, b1, w2, b2], [ops.zeros_like(p) for p in (w1, b1, w2, b2)]
    for epoch in range(epochs):
        rate = 0.1 * (0.1 if epoch >= epochs // 2 else 1) * (0.1 if epoch >= 3 * epochs // 4 else 1)
        params, velocities = step(params, velocities, ops.convert_to_tensor(rate, "float32"))
    return _backend.numpy(outputs(params))[num_support:]


@pytest.mark.parametrize("num_steps", [10, 0])
def test_coin_trains_exactly_the_reference_network(episode, num_steps):
    tasks, _ = episode
    task = tasks[1:2]
    support, query = few_shot.preprocess(task)
    points = np.concatenate([support, query], axis=1)[0]
    weights = few_shot.initial_weights(task.seeds, points.shape[1], WAY)
    expected = weight_space_coin(
        points, direct_reference_laplacian(points), task.support_labels[0], weights, num_steps
    )
    model = few_shot.TransductiveCOIN(num_steps=num_steps, batch_size=2)
    probabilities = model.predict_proba(task)[0]
    np.testing.assert_allclose(probabilities, expected, atol=2e-5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)  # L 1 = 0
    assert expected.std() > 0.05  # trained, not uniform


@pytest.fixture(scope="module")
def small_coin():
    return few_shot.TransductiveCOIN(epochs=30, batch_size=4)


def test_coin_gives_a_task_the_same_result_in_any_batch(data, episode, small_coin):
    tasks, _ = episode
    whole = small_coin.predict_proba(tasks)  # batches of 4: the second padded
    alone = np.concatenate([small_coin.predict_proba(tasks[i : i + 1]) for i in (3, 4)])
    np.testing.assert_allclose(whole[3:], alone, atol=1e-5)
    other, _ = few_shot.sample_tasks(data, 4, 1, 4, num_tasks=3, seed=0)  # another shape
    assert small_coin.predict_proba(other).shape == (3, 16, 4)
    np.testing.assert_allclose(small_coin.predict_proba(tasks), whole, atol=1e-6)


def test_coin_is_equivariant_to_the_query_order(episode, small_coin):
    tasks, _ = episode
    order = np.random.default_rng(0).permutation(tasks.query.shape[1])
    permuted = few_shot.Tasks(**{**tasks.__dict__, "query": tasks.query[:, order]})
    np.testing.assert_allclose(
        small_coin.predict_proba(permuted), small_coin.predict_proba(tasks)[:, order], atol=1e-5
    )


def test_the_package_graph_option_runs_and_differs(episode):
    tasks, _ = episode
    reference = few_shot.TransductiveCOIN(epochs=30, batch_size=8)
    package = few_shot.TransductiveCOIN(epochs=30, batch_size=8, graph="package")
    a, b = reference.predict_proba(tasks), package.predict_proba(tasks)
    assert a.shape == b.shape and not np.allclose(a, b, atol=1e-4)


# ------------------------------------------- query labels are never read


def test_query_labels_are_never_read_before_scoring(episode):
    tasks, query_labels = episode
    methods = {
        "coin": few_shot.TransductiveCOIN(epochs=30, batch_size=8),
        "coin without diffusion": few_shot.TransductiveCOIN(num_steps=0, epochs=30, batch_size=8),
        "simpleshot": few_shot.NearestClassMean(),
        "simpleshot shifted": few_shot.NearestClassMean(shift=True),
        "logistic": few_shot.LogisticRegression(shift=True),
    }
    rng = np.random.default_rng(0)
    shuffled = rng.permuted(query_labels, axis=1)
    garbage = rng.integers(0, WAY, size=query_labels.shape)
    first = few_shot.evaluate(methods, tasks, query_labels)
    for labels in (shuffled, garbage):
        again = few_shot.evaluate(methods, tasks, labels)
        for name in methods:
            np.testing.assert_array_equal(first[name].predictions, again[name].predictions)
            np.testing.assert_allclose(
                again[name].accuracies, 100 * (first[name].predictions == labels).mean(axis=1)
            )
    assert all(first[name].mean > 60 for name in methods)  # 3 well-separated classes


# --------------------------------------------------------------- baselines


def test_nearest_class_mean_in_closed_form():
    features = np.array([[0, 1], [1, 0], [0.9, 0.1], [0.1, 0.9], [1, 0.2], [0.2, 1]], "float32")
    tasks = few_shot.Tasks(
        features=features,
        base_mean=np.zeros(2, "float32"),
        support=np.array([[0, 1]]),
        support_labels=np.array([[0, 1]]),
        query=np.array([[2, 3, 4, 5]]),
        classes=np.array([[0, 1]]),
        seeds=np.zeros(1, np.uint64),
        way=2,
        shot=1,
        queries=2,
    )
    np.testing.assert_array_equal(few_shot.NearestClassMean()(tasks), [[1, 0, 1, 0]])


def test_logistic_regression_is_scikit_learns(episode):
    sklearn = pytest.importorskip("sklearn.linear_model")
    tasks, _ = episode
    model = few_shot.LogisticRegression(C=0.7, shift=True)
    probabilities = model.predict_proba(tasks)
    support, query = few_shot.preprocess(tasks, shift=True)
    for t in range(len(tasks)):
        fitted = sklearn.LogisticRegression(C=0.7, tol=1e-10, max_iter=10000)
        fitted.fit(support[t], tasks.support_labels[t])
        np.testing.assert_allclose(probabilities[t], fitted.predict_proba(query[t]), atol=1e-4)


# ---------------------------------------------------------- the harness


def test_confidence_interval_and_paired_comparison_in_closed_form():
    assert few_shot.confidence_interval([50.0, 100.0, 50.0, 100.0]) == pytest.approx((75.0, 24.5))
    a = few_shot.MethodResult("a", np.zeros((4, 1)), np.array([60.0, 80.0, 70.0, 50.0]), 1.0)
    b = few_shot.MethodResult("b", np.zeros((4, 1)), np.array([50.0, 80.0, 80.0, 40.0]), 2.0)
    c = few_shot.paired_comparison(a, b)
    differences = np.array([10.0, 0.0, -10.0, 10.0])
    assert (c["wins"], c["ties"], c["losses"], c["tasks"]) == (2, 1, 1, 4)
    assert c["mean"] == pytest.approx(2.5)
    assert c["ci95"] == pytest.approx(1.96 * differences.std() / 2)
    lines = few_shot.format_table({"a": a, "b": b}, summarize=("a",))
    assert lines[1].endswith("accuracy: 65.00 ± 10.96 over 4 tasks") and "accuracy:" not in lines[2]


def test_initial_weights_are_pytorchs_default_and_per_task():
    weights = few_shot.initial_weights(np.array([5, 9], np.uint64), 16, 3)
    assert [w.shape for w in weights] == [(2, 16, 16), (2, 16), (2, 3, 16), (2, 3)]
    assert all(np.abs(w).max() <= 0.25 for w in weights)  # U(-1/sqrt(16), 1/sqrt(16))
    w1 = weights[0]
    assert w1.max() > 0.24 and w1.min() < -0.24 and abs(w1.mean()) < 0.02
    assert w1.std() == pytest.approx(0.25 / np.sqrt(3), rel=0.1)
    again = few_shot.initial_weights(np.array([9], np.uint64), 16, 3)
    for w, w_again in zip(weights, again):
        np.testing.assert_array_equal(w[1], w_again[0])


# ------------------------------------------------- malformed feature files


def write(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize("missing", ["features", "labels", "split"])
def test_a_file_missing_an_array_is_named(tmp_path, missing):
    features, labels, split = clustered()
    arrays = {"features": features, "labels": labels, "split": split}
    del arrays[missing]
    with pytest.raises(ValueError, match=f"missing array `{missing}`"):
        few_shot.load_features(write(tmp_path / "f.npz", **arrays))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.update(features=a["features"][:, 0]), "`features` must be a 2-D"),
        (lambda a: a.update(features=a["features"][None]), "`features` must be a 2-D"),
        (lambda a: a.update(labels=a["labels"][:-1]), "`labels` must be a 1-D integer array"),
        (lambda a: a.update(labels=a["labels"] + 0.5), "`labels` must be a 1-D integer array"),
        (lambda a: a.update(split=a["split"][1:]), "`split` must be a 1-D string array"),
        (lambda a: a["split"].__setitem__(0, "test"), r"`split` has values \['test'\]"),
        (lambda a: a["split"].__setitem__(0, "novel"), "class 0 has rows in splits"),
        (lambda a: a["features"].__setitem__((7, 2), np.nan), r"1 rows with NaN .*\[7\]"),
        (lambda a: a["features"].__setitem__((3, 0), np.inf), r"NaN or infinite .*\[3\]"),
        (lambda a: a.update(split=np.where(a["split"] == "base", "val", a["split"])), "no row"),
        (lambda a: a.update(base_mean=np.zeros(3)), r"`base_mean` must be a finite \(10,\)"),
    ],
)
def test_malformed_arrays_give_named_errors(tmp_path, change, message):
    features, labels, split = clustered()
    arrays = {"features": features, "labels": labels, "split": split.astype("<U5")}
    change(arrays)
    with pytest.raises(ValueError, match=message):
        few_shot.load_features(write(tmp_path / "f.npz", **arrays))


def test_a_class_with_too_few_rows_is_named(tmp_path):
    features, labels, split = clustered()
    keep = ~((labels == 9) & (np.arange(len(labels)) % 25 >= 4))  # class 9 keeps 4 rows
    path = write(
        tmp_path / "f.npz", features=features[keep], labels=labels[keep], split=split[keep]
    )
    data = few_shot.load_features(path)
    few_shot.sample_tasks(data, WAY, 1, 3, num_tasks=2)  # 4 rows suffice for 1 + 3
    with pytest.raises(ValueError, match=r"shot \+ queries = 5 rows .*: 9 \(4\)"):
        few_shot.sample_tasks(data, WAY, 2, 3, num_tasks=2)
    with pytest.raises(ValueError, match="has 6 classes. Received: way=7"):
        few_shot.sample_tasks(data, 7, 1, 1, num_tasks=2)


def test_pickles_need_an_explicit_opt_in(tmp_path):
    features, labels, split = clustered()
    novel = split == "novel"
    per_class = {int(c): list(features[labels == c]) for c in np.unique(labels[novel])}
    base_mean = features[split == "base"].mean(axis=0)
    for name, value in (("x_embedded_feature.plk", per_class), ("x_base_mean.plk", base_mean)):
        with open(tmp_path / name, "wb") as handle:
            pickle.dump(value, handle)
    paths = (tmp_path / "x_embedded_feature.plk", tmp_path / "x_base_mean.plk")
    with pytest.raises(ValueError, match="allow_pickle=True"):
        few_shot.load_reference_features(*paths)
    with pytest.raises(ValueError, match="unpickling runs code"):
        few_shot.load_features(paths[0])
    data = few_shot.load_reference_features(*paths, allow_pickle=True)
    assert set(data.split) == {"novel"} and len(data.features) == novel.sum()
    np.testing.assert_allclose(data.base_mean, base_mean)
    # an object array in an .npz is refused, not unpickled
    objects = write(
        tmp_path / "o.npz", features=features, labels=labels, split=split.astype(object)
    )
    with pytest.raises(ValueError, match="stored as Python objects"):
        few_shot.load_features(objects)
    with pytest.raises(FileNotFoundError, match="not found"):
        few_shot.load_features(tmp_path / "absent.npz")


def test_save_and_load_round_trip(tmp_path):
    features, labels, split = clustered()
    saved = few_shot.save_features(tmp_path / "f.npz", features, labels, split)
    loaded = few_shot.load_features(tmp_path / "f.npz")
    for name in ("features", "labels", "split", "base_mean"):
        np.testing.assert_array_equal(getattr(saved, name), getattr(loaded, name))
    np.testing.assert_allclose(loaded.base_mean, features[:100].mean(axis=0), atol=1e-6)
    assert not os.path.exists(tmp_path / "g.npz")
    with pytest.raises(ValueError):
        few_shot.save_features(tmp_path / "g.npz", features, labels[:-1], split)
    assert not os.path.exists(tmp_path / "g.npz")  # nothing written for an invalid set


# ------------------------------------------------------ feature extraction


def test_extract_features_reads_the_last_layers_input_and_an_image_folder(tmp_path):
    model = keras.Sequential(
        [keras.Input((6, 6, 3)), keras.layers.Flatten(), keras.layers.Dense(5, name="features")]
        + [keras.layers.Dense(2, name="classifier")]
    )
    rng = np.random.default_rng(0)
    for name, count in (("cat", 2), ("dog", 3), ("owl", 1)):
        os.makedirs(tmp_path / name)
        for i in range(count):
            image = rng.integers(0, 256, size=(6, 6, 3)).astype("uint8")
            keras.utils.save_img(tmp_path / name / f"{i}.png", image)
    batches, labels = few_shot.image_folder(str(tmp_path), ["dog", "owl", "cat"], (6, 6), 4)
    assert labels.tolist() == [0, 0, 0, 1, 2, 2]
    images = np.concatenate(
        list(few_shot.image_folder(str(tmp_path), ["dog", "owl", "cat"], (6, 6))[0])
    )
    data = few_shot.extract_features(model, batches, labels, {0: "base", 1: "novel", 2: "novel"})
    expected = keras.Model(model.inputs, model.get_layer("features").output).predict(
        images, verbose=0
    )
    # float32 features computed in batches of 4 against one batch of 6 (values up to ~200)
    np.testing.assert_allclose(data.features, expected, rtol=1e-4, atol=1e-3)
    assert data.split.tolist() == ["base"] * 3 + ["novel"] * 3
    with pytest.raises(ValueError, match="sub-folders"):
        few_shot.image_folder(str(tmp_path), ["emu"], (6, 6))
