"""Transductive COIN for few-shot tasks: many tasks trained at once in one compiled loop.

The paper's few-shot method (Wang, Bao & Shi, 2024): on each task, a
residual classifier of the backbone's features whose class probabilities
then take explicit diffusion steps u <- (I - sigma2 L) u over the task's
Gaussian kNN graph of support and query points, trained on the support
labels through the diffusion. `TransductiveCOIN` runs the reference
procedure for a batch of tasks at once; `initial_weights` gives each task
its seeded initial weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from keras import ops

from keras_cd import _backend, _validation
from keras_cd.few_shot.graph import GRAPHS, check_neighbors, laplacian_ops, package_laplacian
from keras_cd.few_shot.preprocessing import preprocess

if TYPE_CHECKING:
    from keras_cd.few_shot.tasks import Tasks

TINY = 1e-30  # log(u) of a probability the explicit steps drove to <= 0 (the reference: NaN)


def initial_weights(
    seeds: Sequence[int] | np.ndarray, num_features: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Initial weights of each task's network, distributed as PyTorch's `nn.Linear` default.

    Every weight and bias ~ U(-1/sqrt(F), 1/sqrt(F)) (F the input width of
    both layers), drawn from the task's own seed (NumPy's SFC64 generator:
    W1 alone is F^2 numbers per task), so that a task starts from the same
    weights in any batch and on any backend.

    Args:
        seeds: (T,) ints, one per task.
        num_features: int, F.
        num_classes: int, C.

    Returns:
        `(W1, b1, W2, b2)`: float32 (T, F, F), (T, F), (T, C, F), (T, C).

    Example:
    >>> import numpy as np, keras_cd
    >>> w1, b1, w2, b2 = keras_cd.few_shot.initial_weights([7, 8], num_features=4, num_classes=3)
    >>> w1.shape, w2.shape, bool(np.abs(w1).max() <= 1 / np.sqrt(4))
    ((2, 4, 4), (2, 3, 4), True)
    >>> bool(np.all(keras_cd.few_shot.initial_weights([8], 4, 3)[0][0] == w1[1]))  # per task
    True
    """
    size = len(seeds)
    shapes = ((num_features, num_features), (num_features,), (num_classes, num_features))
    shapes += ((num_classes,),)
    weights = [np.empty((size,) + shape, np.float32) for shape in shapes]
    for task, seed in enumerate(seeds):
        rng = np.random.Generator(np.random.SFC64(int(seed)))
        for array in weights:
            rng.random(out=array[task], dtype=np.float32)
    bound = np.float32(1.0 / np.sqrt(num_features))
    for array in weights:  # U[0, 1) -> U[-bound, bound)
        array *= 2 * bound
        array -= bound
    return tuple(weights)


class TransductiveCOIN:
    """COIN on few-shot tasks: a residual classifier whose outputs diffuse over the task's graph.

    The reference procedure of Wang, Bao & Shi for each task: CL2N
    features with the query shift (`keras_cd.few_shot.preprocess`), the
    Laplacian L of the Gaussian kNN graph over support + queries
    (`keras_cd.few_shot.reference_laplacian`), and the network

        h = x + relu(W1 x + b1),    u(0) = softmax(W2 h + b2),
        u(k+1) = u(k) - sigma2 * L u(k),   k < num_steps,

    (W1 F x F) trained on the support's labels only, by minimizing the mean
    of -log u_i[y_i] over the support rows with PyTorch's SGD (momentum,
    coupled weight decay on every weight and bias, learning rate divided by
    10 at half and three quarters of the epochs), from PyTorch's default
    initial weights. A query is labeled argmax u. `num_steps=0` is the
    base classifier alone ("COIN without diffusion").

    Many tasks train at once: a batch of `batch_size` tasks is one compiled
    call (`keras.ops.while_loop` over the epochs; `tf.function` with XLA,
    `jax.jit`, or eager PyTorch), every weight with the task as a leading
    axis. W1 is trained in function space: only Z = X W1^T (N x F, the
    pre-activations of the task's N points) enters the outputs, and SGD's
    update of W1 (gradient dZ^T X, momentum, weight decay, all linear in
    W1) is, multiplied by X^T, the update

        V_Z <- momentum * V_Z + (X X^T) dZ + weight_decay * Z,    Z <- Z - lr * V_Z,

    exact in exact arithmetic and N^2 F instead of 2 N F^2 multiply-adds
    per step (N = 80 points against F = 512 or 640 features for the
    reference's backbones). The same network and optimizer step by step in
    weight space is the test.

    Reference:
        - [Wang, Bao & Shi, 2024](https://arxiv.org/abs/2403.15726),
          the few-shot experiment (fewshot/ in the authors' code).

    Args:
        num_steps: int >= 0, explicit diffusion steps. Defaults to `10`.
        sigma2: float >= 0, step size of each. Defaults to `0.5`.
        epochs: int >= 1, SGD steps on each task's support. Defaults to
            `100`.
        learning_rate: float > 0, SGD's. Defaults to `0.1`.
        momentum: float in [0, 1), SGD's. Defaults to `0.9`.
        weight_decay: float >= 0, coupled, on every weight and bias.
            Defaults to `1e-4`.
        graph: `"reference"` or `"package"` (see `keras_cd.few_shot.graph`).
            Defaults to `"reference"`.
        num_neighbors: int, the kNN graph's neighbors. Defaults to `8`.
        bandwidth_neighbor: int, the neighbor whose distance is the
            Gaussian's bandwidth. Defaults to `4`.
        shift: bool, the query shift. Defaults to `True`.
        batch_size: int >= 1, tasks per compiled call. Defaults to `8`.

    Call arguments:
        tasks: a `keras_cd.few_shot.Tasks`; calling the method is
            `predict(tasks)`, the (T, way * queries) int predictions.

    Raises:
        ValueError: for an invalid argument.

    Example:
    >>> import numpy as np, keras_cd
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat(np.arange(8), 20)
    >>> features = rng.normal(size=(8, 16))[labels] + 0.5 * rng.normal(size=(160, 16))
    >>> data = keras_cd.few_shot.FeatureSet(features, labels, np.where(labels < 3, "base", "novel"))
    >>> tasks, query_labels = keras_cd.few_shot.sample_tasks(
    ...     data, way=3, shot=1, queries=5, num_tasks=4)
    >>> coin = keras_cd.few_shot.TransductiveCOIN(epochs=10, num_neighbors=6, bandwidth_neighbor=3)
    >>> probabilities = coin.predict_proba(tasks)  # u_T of each query
    >>> probabilities.shape, bool(np.allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5))
    ((4, 15, 3), True)
    >>> float((coin(tasks) == query_labels).mean()) > 0.6  # chance: 1/3
    True
    """

    def __init__(
        self,
        num_steps: int = 10,
        sigma2: float = 0.5,
        epochs: int = 100,
        learning_rate: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        graph: str = "reference",
        num_neighbors: int = 8,
        bandwidth_neighbor: int = 4,
        shift: bool = True,
        batch_size: int = 8,
    ) -> None:
        self.num_steps = _validation.non_negative_int("num_steps", num_steps, "Use e.g. 10.")
        self.sigma2 = _validation.non_negative_float("sigma2", sigma2, "Use e.g. 0.5.")
        self.epochs = _validation.positive_int("epochs", epochs, "Use e.g. 100.")
        self.learning_rate = _validation.positive_float("learning_rate", learning_rate, "Use 0.1.")
        self.momentum = _validation.number(
            "momentum", momentum, "Use e.g. 0.9.", low=0, high=1, high_open=True
        )
        self.weight_decay = _validation.non_negative_float("weight_decay", weight_decay, "1e-4.")
        self.graph = _validation.one_of("graph", graph, GRAPHS, 'Use graph="reference".')
        self.num_neighbors, self.bandwidth_neighbor = check_neighbors(
            num_neighbors, bandwidth_neighbor
        )
        self.shift = _validation.boolean("shift", shift)
        self.batch_size = _validation.positive_int("batch_size", batch_size, "Use e.g. 8.")
        self._compiled = {}  # one per task shape: the loop needs N, F, way as Python ints

    def _learning_rate(self, epoch):
        rate = ops.convert_to_tensor(self.learning_rate, "float32")
        for milestone in (int(0.5 * self.epochs), int(0.75 * self.epochs)):
            rate = rate * ops.where(epoch >= milestone, 0.1, 1.0)  # PyTorch's MultiStepLR
        return rate

    def _forward(self, points, z, b1, w2, b2):
        pre = z + b1[:, None, :]
        hidden = points + ops.relu(pre)
        scores = ops.matmul(hidden, ops.transpose(w2, (0, 2, 1))) + b2[:, None, :]
        return pre, hidden, ops.softmax(scores, axis=-1)

    def _train(self, points, laplacian, targets, w1, b1, w2, b2):
        """Trains a batch of tasks; the query rows' diffused probabilities."""
        size, num_support = points.shape[1], targets.shape[1]
        if laplacian is None:
            laplacian = laplacian_ops(points, self.num_neighbors, self.bandwidth_neighbor)
        propagation = None
        if self.num_steps:
            step = ops.eye(size, dtype="float32")[None] - self.sigma2 * laplacian
            propagation = step
            for _ in range(self.num_steps - 1):
                propagation = ops.matmul(step, propagation)  # (I - sigma2 L)^num_steps
        # Without diffusion only the support rows reach the loss.
        active = size if self.num_steps else num_support
        transposed = ops.transpose(points, (0, 2, 1))
        kernel = ops.matmul(points, transposed[:, :, :active])  # (X X^T)[:, :active]
        z = ops.matmul(points, ops.transpose(w1, (0, 2, 1)))
        trained = points[:, :active]
        mixing = None if propagation is None else propagation[:, :num_support]
        mixing_t = None if mixing is None else ops.transpose(mixing, (0, 2, 1))
        momentum, decay = self.momentum, self.weight_decay

        def body(epoch, state):
            z, velocity_z, b1, velocity_b1, w2, velocity_w2, b2, velocity_b2 = state
            rate = self._learning_rate(epoch)
            pre, hidden, p = self._forward(trained, z[:, :active], b1, w2, b2)
            u = p if mixing is None else ops.matmul(mixing, p)
            grad_u = -targets / ops.maximum(u, TINY) / num_support
            grad_p = grad_u if mixing is None else ops.matmul(mixing_t, grad_u)
            grad_scores = p * (grad_p - ops.sum(grad_p * p, axis=-1, keepdims=True))
            grad_w2 = ops.matmul(ops.transpose(grad_scores, (0, 2, 1)), hidden)
            # dS W2 as `way` broadcast multiply-adds, fused with the relu mask (on CPU a
            # batched dot with an inner dimension of 5 is slower).
            grad_hidden = grad_scores[:, :, :1] * w2[:, None, 0]
            for c in range(1, w2.shape[1]):
                grad_hidden = grad_hidden + grad_scores[:, :, c : c + 1] * w2[:, None, c]
            grad_z = ops.where(pre > 0, grad_hidden, 0.0)
            grad_b1 = ops.sum(grad_z, axis=1)
            grad_b2 = ops.sum(grad_scores, axis=1)
            velocity_z = momentum * velocity_z + ops.matmul(kernel, grad_z) + decay * z
            state = [z - rate * velocity_z, velocity_z]
            for value, grad, velocity in (
                (b1, grad_b1, velocity_b1),
                (w2, grad_w2, velocity_w2),
                (b2, grad_b2, velocity_b2),
            ):
                velocity = momentum * velocity + grad + decay * value
                state += [value - rate * velocity, velocity]
            return epoch + 1, tuple(state)

        state = (z, ops.zeros_like(z), b1, ops.zeros_like(b1))
        state += (w2, ops.zeros_like(w2), b2, ops.zeros_like(b2))
        start = ops.convert_to_tensor(0, "int32")
        _, state = ops.while_loop(lambda epoch, _: epoch < self.epochs, body, (start, state))
        z, _, b1, _, w2, _, b2, _ = state
        p = self._forward(points, z, b1, w2, b2)[2]
        u = p if propagation is None else ops.matmul(propagation, p)
        return u[:, num_support:]

    def predict_proba(self, tasks: Tasks) -> np.ndarray:
        """Each query's diffused class probabilities u_T, for every task.

        The explicit steps keep each row's sum at 1 (L has zero row sums),
        though a large sigma2 can drive entries below 0.

        Args:
            tasks: a `keras_cd.few_shot.Tasks`.

        Returns:
            (T, way * queries, way) float32 array.

        Raises:
            ValueError: when a task has fewer points than `num_neighbors`
                (the reference graph).
        """
        size = tasks.way * (tasks.shot + tasks.queries)
        if self.graph == "reference" and self.num_steps:
            check_neighbors(self.num_neighbors, self.bandwidth_neighbor, size)
        outputs = []
        for start in range(0, len(tasks), self.batch_size):
            index = np.arange(start, start + self.batch_size)
            batch = tasks[np.minimum(index, len(tasks) - 1)]  # the last batch padded
            support, query = preprocess(batch, self.shift)
            points = np.concatenate([support, query], axis=1)
            laplacian = None
            if self.num_steps and self.graph == "package":
                laplacian = package_laplacian(points, self.num_neighbors, self.bandwidth_neighbor)
            weights = initial_weights(batch.seeds, points.shape[2], tasks.way)
            batch_targets = np.eye(tasks.way, dtype=np.float32)[batch.support_labels]
            arrays = [points, laplacian, batch_targets, *weights]
            key = (points.shape, batch_targets.shape, laplacian is None)
            if key not in self._compiled:
                self._compiled[key] = _backend.compile(self._train)
            with _backend.no_grad():
                arrays = [None if a is None else ops.convert_to_tensor(a) for a in arrays]
                result = _backend.numpy(self._compiled[key](*arrays))
            outputs.append(result[: len(tasks) - start])
        return np.concatenate(outputs)

    def predict(self, tasks: Tasks) -> np.ndarray:
        """Each query's predicted label, argmax u_T, for every task.

        Args:
            tasks: a `keras_cd.few_shot.Tasks`.

        Returns:
            (T, way * queries) int array, labels in [0, way).
        """
        return self.predict_proba(tasks).argmax(axis=-1)

    __call__ = predict
