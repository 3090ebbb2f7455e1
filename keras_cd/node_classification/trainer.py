"""Semi-supervised node classification: one method, one graph, many runs, fast.

The paper's node-classification experiment (Wang, Bao & Shi, 2024): COIN
classifies each node from its features with a base network and diffuses the
class probabilities over the graph, the diffusion half of the
convection-diffusion equation, u_T = P softmax(f(X)) with P = (I - sigma2
L)^K. `NodeClassificationTrainer` holds a graph
(`keras_cd.datasets.GraphData`), a method
(`keras_cd.node_classification.METHODS`: COIN or a baseline) with its
propagation precomputed, one model and ONE compiled training run: every
epoch (full-batch Adam, coupled weight decay, then the validation loss and
accuracy), early stopping and the bookkeeping of the best weights happen in
a single compiled loop (`keras_cd._fit.CompiledRun`: `keras.ops.while_loop`
under `tf.function(jit_compile=True)` on TensorFlow, under `jax.jit` on JAX,
a Python loop on PyTorch), so a run costs its arithmetic, not a Python
round trip per epoch. Each run starts from fresh seeded weights,
early-stops when neither validation loss nor accuracy improved for
`patience` epochs, restores the weights of the lowest validation loss and
is then evaluated once with the propagation applied exactly to the whole
graph; it reports a `RunResult`. A run whose training loss or validation
loss or accuracy becomes NaN or infinite stops there and raises
`RunFailedError` naming the split, the initialization and the epoch: no
weights or figures of a failed run are ever reported, and none of another
run's (each run's best weights start as its own initial ones). Every Keras
backend: sparse bag-of-words features are a `tf.SparseTensor` on TensorFlow
and a `jax.experimental.sparse.BCOO` on JAX, both applied through their
nonzeros; Keras has no sparse inputs on PyTorch, which takes the features
dense.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_cd import _backend, _validation
from keras_cd._protocol import RunFailedError, finite
from keras_cd.node_classification.methods import CLASSES, settings_for

if TYPE_CHECKING:
    from keras_cd.datasets.gnnbench import GraphData

_FIX = (
    "Lower the learning rate or sigma2 (an unstable explicit step diverges), or check the "
    "features for NaN or infinity."
)


def _selected(probabilities, index):
    """The probabilities at `index` (None: all of them)."""
    from keras import ops

    return probabilities if index is None else ops.take(probabilities, index, axis=0)


def _training_loss(probabilities, targets):
    """Mean cross-entropy at the labeled nodes; `targets` is `(index, labels)`."""
    import keras
    from keras import ops

    index, labels = targets
    selected = _selected(probabilities, index)
    return ops.mean(keras.losses.sparse_categorical_crossentropy(labels, selected))


def _metrics(probabilities, targets):
    """(mean cross-entropy, accuracy) at the labeled nodes."""
    from keras import ops

    index, labels = targets
    selected = _selected(probabilities, index)
    correct = ops.cast(ops.argmax(selected, axis=-1), "int32") == ops.cast(labels, "int32")
    return _training_loss(probabilities, targets), ops.mean(ops.cast(correct, "float32"))


@dataclasses.dataclass(frozen=True)
class RunResult:
    """One node-classification run: its accuracies, epochs and wall seconds.

    Attributes:
        test_accuracy: float in [0, 1], or None when the test nodes were not
            evaluated (model selection).
        validation_accuracy: float in [0, 1].
        epochs: int, epochs trained before early stopping.
        seconds: float, wall-clock seconds of training and evaluation.

    Example:
    >>> import keras_cd
    >>> run = keras_cd.node_classification.RunResult(0.81, 0.79, 120, 1.5)
    >>> run.test_accuracy, run.epochs
    (0.81, 120)
    """

    test_accuracy: float | None
    validation_accuracy: float
    epochs: int
    seconds: float


class NodeClassificationTrainer:
    """Trains one method on one graph for any number of splits and initializations.

    COIN (`"coin"`, the default) predicts the class probabilities

        u_T = P softmax(f(X)),    P = (I - sigma2 L)^num_steps (explicit)
                                  or (I + sigma2 L)^-num_steps (implicit),

    with f a residual base network of the node features X and L the graph
    Laplacian; the baselines APPNP and SGC are other fixed propagations P
    (`keras_cd.node_classification.methods`). Each `run` draws a random
    split (20 training and 30 validation nodes per class), trains from
    seeded weights with early stopping in one compiled loop, and scores the
    test nodes once (see the module docstring).

    With a fixed sigma2, training reads the diffusion only at the training
    and validation nodes, through their rows of the exact operator
    (`keras_cd.graph.diffusion_rows`, once per split);
    `trainable_sigma2=True` trains through `keras_cd.GraphDiffusion` on the
    whole graph instead.

    Reference:
        - [Wang, Bao & Shi, 2024](https://arxiv.org/abs/2403.15726)

    Args:
        data: a `keras_cd.datasets.GraphData` (e.g. from `load_gnnbench`).
        method: `"coin"`, `"appnp"` or `"sgc"`; see
            `keras_cd.node_classification.methods`. Defaults to `"coin"`.
        patience: int >= 1, epochs without improvement of validation loss
            or accuracy before stopping. Defaults to `50`.
        max_epochs: int >= 1. Defaults to `1000`.
        jit_compile: bool, TensorFlow: compile each run with XLA (a few
            seconds once, then several times faster per run) or as a plain
            graph (quicker to build: for a handful of runs). JAX always
            compiles with XLA, PyTorch runs eagerly. Defaults to `True`.
        **settings: the method's hyperparameters, defaults in
            `keras_cd.node_classification.METHODS[method]`; for COIN those of
            `keras_cd.models.coin_classifier` (num_steps, sigma2, scheme,
            trainable_sigma2, hidden_units, dropout, input_dropout,
            weight_decay, readout_weight_decay) and `learning_rate` (Adam's).

    Attributes:
        settings: dict, the method's hyperparameters, defaults filled in.
        model: the Keras model trained by every run.
        history: dict or None, the last run's `validation_loss` and
            `validation_accuracy` per epoch.

    Raises:
        ValueError: for an invalid argument or setting.

    Example:
    Two communities of 60 nodes whose features alone are noisy:

    >>> import numpy as np, scipy.sparse as sp, keras_cd
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 60)
    >>> edges = np.triu(rng.random((120, 120)) < np.where(labels[:, None] == labels, 0.1, 0.01), 1)
    >>> features = np.eye(2)[labels] + rng.normal(size=(120, 2))
    >>> adjacency = sp.csr_matrix(edges + edges.T, dtype="float32")
    >>> data = keras_cd.datasets.GraphData(
    ...     adjacency, sp.csr_matrix(features, dtype="float32"), labels, ["a", "b"], np.arange(120))
    >>> trainer = keras_cd.node_classification.NodeClassificationTrainer(
    ...     data, num_steps=4, sigma2=0.3, hidden_units=8, max_epochs=40, patience=10,
    ...     jit_compile=False)
    >>> run = trainer.run(split_seed=0, init_seed=0)
    >>> again = trainer.run(split_seed=0, init_seed=0)  # the same seeds: the same run
    >>> run.test_accuracy > 0.7, run.test_accuracy == again.test_accuracy  # chance: 0.5
    (True, True)
    """

    def __init__(
        self,
        data: GraphData,
        method: str = "coin",
        patience: int = 50,
        max_epochs: int = 1000,
        jit_compile: bool = True,
        **settings: Any,
    ) -> None:
        import keras

        from keras_cd._fit import CompiledRun

        self.patience = _validation.positive_int("patience", patience, "Use e.g. 50.")
        self.max_epochs = _validation.positive_int("max_epochs", max_epochs, "Use e.g. 1000.")
        self.jit_compile = _validation.boolean("jit_compile", jit_compile)
        self.settings = settings_for(method, settings)
        self.method_name = method
        learning_rate = _validation.positive_float(
            "learning_rate", self.settings["learning_rate"], "Use e.g. 0.01."
        )
        self.data = data
        self.method = CLASSES[method](data, self.settings)
        self.labels = data.labels
        self.model = self.method.build(0)  # validates the settings
        self.optimizer = keras.optimizers.Adam(learning_rate)
        self.optimizer.build(self.model.trainable_variables)
        self._fresh_optimizer = _backend.numpy(list(self.optimizer.variables))
        self._fit = CompiledRun(
            self.model,
            self.optimizer,
            _training_loss,
            self.max_epochs,
            patience=self.patience,
            metrics=_metrics,
            jit_compile=self.jit_compile,
        )
        self._split = (None, None)  # (seed, inputs) of the last split
        self.history: dict[str, list[float]] | None = None

    def copy(self) -> NodeClassificationTrainer:
        """A new trainer with the same data, method and settings (its own model).

        Returns:
            A `NodeClassificationTrainer`; `run_protocol` gives one to each
            worker.
        """
        return type(self)(
            self.data,
            self.method_name,
            self.patience,
            self.max_epochs,
            self.jit_compile,
            **self.settings,
        )

    @property
    def lambda_max(self) -> float | None:
        """The largest eigenvalue of COIN's Laplacian for the explicit scheme, else None.

        The explicit step I - sigma2 L is stable when sigma2 * lambda_max <= 2.
        """
        return getattr(self.method, "lambda_max", None)

    def _reinitialize(self, init_seed):
        """Fresh seeded weights, dropout stream and optimizer state, same compiled run."""
        from keras_cd._protocol import restart

        restart(self.model, self.method.build(init_seed), self.optimizer, self._fresh_optimizer)

    def _split_inputs(self, split_seed):
        """The split and its inputs, computed once per split and reused across inits."""
        from keras import ops

        from keras_cd import datasets
        from keras_cd.layers.precomputed_diffusion import is_sparse

        if self._split[0] != split_seed:
            train, validation, test = datasets.random_split(self.labels, seed=split_seed)
            parts = []
            for nodes, (inputs, index) in zip(
                (train, validation), self.method.split_inputs(train, validation)
            ):
                inputs = [x if is_sparse(x) else ops.convert_to_tensor(x) for x in inputs]
                targets = (
                    None if index is None else ops.convert_to_tensor(index, "int32"),
                    ops.convert_to_tensor(self.labels[nodes], "int32"),
                )
                parts.append((inputs[0] if len(inputs) == 1 else inputs, targets))
            self._split = (split_seed, ((train, validation, test), parts))
        return self._split[1]

    def run(self, split_seed: int, init_seed: int, evaluate_test: bool = True) -> RunResult:
        """One run on the split `random_split(labels, seed=split_seed)`.

        Args:
            split_seed: int, the split's seed
                (`keras_cd.datasets.random_split`).
            init_seed: int, the initialization seed (weights and dropout).
            evaluate_test: bool, whether to score the test nodes. With
                False (model selection) the test nodes' labels are never
                read and `test_accuracy` is None. Defaults to `True`.

        Returns:
            A `RunResult`.

        Raises:
            RunFailedError: the training loss, the validation loss or
                accuracy, or the final predictions are not finite (nothing
                of the run is reported).
            ValueError: if a seed is not an integer.
        """
        split_seed = _validation.integer("split_seed", split_seed, "Use e.g. 0.")
        init_seed = _validation.integer("init_seed", init_seed, "Use e.g. 0.")
        start = time.perf_counter()
        (train, validation, test), (train_part, val_part) = self._split_inputs(split_seed)
        self._reinitialize(init_seed)
        epochs, loss, losses, accuracies = self._fit(train_part, val_part)
        self.history = {  # of the last run
            "validation_loss": losses.tolist(),
            "validation_accuracy": accuracies.tolist(),
        }
        figures = {
            "training loss": float(loss),
            "validation loss": self.history["validation_loss"][-1],
            "validation accuracy": self.history["validation_accuracy"][-1],
        }
        bad = {name: value for name, value in figures.items() if not finite(value)}
        if bad:
            reason = ", ".join(f"{name} = {value}" for name, value in bad.items())
            raise RunFailedError(split_seed, init_seed, epochs, reason, _FIX)
        probabilities = self.method.predict(self.model)
        nodes = np.concatenate([validation, test] if evaluate_test else [validation])
        if not np.all(np.isfinite(probabilities[nodes])):
            raise RunFailedError(
                split_seed, init_seed, epochs, "the final predictions are not finite", _FIX
            )
        predicted = np.argmax(probabilities, axis=1)
        validation_accuracy = float(np.mean(predicted[validation] == self.labels[validation]))
        test_accuracy = (
            float(np.mean(predicted[test] == self.labels[test])) if evaluate_test else None
        )
        return RunResult(test_accuracy, validation_accuracy, epochs, time.perf_counter() - start)
