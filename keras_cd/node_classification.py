"""Semi-supervised node classification with COIN: many runs on one graph, fast.

`NodeClassificationTrainer` holds a graph (`keras_cd.datasets.GraphData`),
its Laplacian as an edge list, one COIN model (`keras_cd.models.coin_classifier`)
and one XLA-compiled training epoch, and trains it from fresh weights for
each (split, initialisation) of a protocol: full-batch Adam, coupled weight
decay, early stopping on validation loss and accuracy, the weights of the
lowest validation loss restored, then test accuracy. A run costs its epochs,
not a new trace and compilation. TensorFlow backend (XLA, sparse features).
"""

import dataclasses
import time

import numpy as np

from keras_cd import _validation


@dataclasses.dataclass(frozen=True)
class RunResult:
    """One training run: accuracies in [0, 1], epochs trained, wall seconds."""

    test_accuracy: float
    validation_accuracy: float
    epochs: int
    seconds: float


class NodeClassificationTrainer:
    """Trains COIN on one graph for any number of splits and initialisations.

    Args:
        data: a `keras_cd.datasets.GraphData` (e.g. from `load_gnnbench`).
        num_steps, sigma2, scheme, trainable_sigma2, hidden_units, dropout,
            input_dropout, weight_decay, readout_weight_decay: as in
            `keras_cd.models.coin_classifier` (its Laplacian is the paper's
            `normalization="coin"`, whose lambda_max the trainer computes
            once and passes on, so an unstable explicit step warns).
        learning_rate: float > 0, Adam's. Defaults to `0.01`.
        patience: int >= 1, epochs without improvement of validation loss
            or accuracy before stopping. Defaults to `50`.
        max_epochs: int >= 1. Defaults to `1000`.

    Example:

    ```python
    data = keras_cd.datasets.load_gnnbench("cora.npz")
    trainer = keras_cd.node_classification.NodeClassificationTrainer(data)
    result = trainer.run(split_seed=0, init_seed=0)   # RunResult(test_accuracy=...)
    ```
    """

    def __init__(
        self,
        data,
        num_steps=20,
        sigma2=0.35,
        scheme="explicit",
        trainable_sigma2=False,
        hidden_units=64,
        dropout=0.5,
        input_dropout=None,
        weight_decay=5e-4,
        readout_weight_decay=None,
        learning_rate=0.01,
        patience=50,
        max_epochs=1000,
    ):
        import keras
        import tensorflow as tf

        from keras_cd import graph

        self.patience = _validation.positive_int("patience", patience, "Use e.g. 50.")
        self.max_epochs = _validation.positive_int("max_epochs", max_epochs, "Use e.g. 1000.")
        learning_rate = _validation.positive_float("learning_rate", learning_rate, "Use 0.01.")
        self.data = data
        self.lambda_max = graph.largest_eigenvalue(
            graph.laplacian(data.adjacency, "coin", format="scipy")
        )
        edges = graph.laplacian(data.adjacency, "coin", format="edges")
        # Sparse features (1.3% nonzero on Cora), projected through their nonzeros,
        # so that the whole epoch compiles with XLA.
        coo = data.features.tocoo()
        features = tf.sparse.reorder(
            tf.sparse.SparseTensor(
                np.stack([coo.row, coo.col], 1).astype("int64"),
                coo.data.astype("float32"),
                coo.shape,
            )
        )
        self.inputs = [features] + [tf.constant(a) for a in edges]
        self.labels = tf.constant(data.labels)
        self._settings = dict(
            num_steps=num_steps,
            sigma2=sigma2,
            scheme=scheme,
            trainable_sigma2=trainable_sigma2,
            hidden_units=hidden_units,
            dropout=dropout,
            input_dropout=input_dropout,
            weight_decay=weight_decay,
            readout_weight_decay=readout_weight_decay,
        )
        self.model = self._build(0)
        self.optimizer = keras.optimizers.Adam(learning_rate)
        self.optimizer.build(self.model.trainable_weights)
        self._fresh_optimizer = [np.asarray(v) for v in self.optimizer.variables]
        self._loss = keras.losses.SparseCategoricalCrossentropy()
        self._epoch = tf.function(self._train_epoch, jit_compile=True)

    def _build(self, seed):
        """A COIN model for this graph with the weights that `seed` initialises."""
        from keras_cd.models import coin_classifier

        return coin_classifier(
            self.data.features.shape[1],
            self.data.num_classes,
            lambda_max=self.lambda_max,
            sparse_features=True,
            seed=seed,
            **self._settings,
        )

    def _evaluate(self, probabilities, index):
        import tensorflow as tf

        target, predicted = tf.gather(self.labels, index), tf.gather(probabilities, index)
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(predicted, -1), target), "float32"))
        return self._loss(target, predicted), accuracy

    def _train_epoch(self, train, validation, test):
        import tensorflow as tf

        model, weights = self.model, self.model.trainable_weights
        with tf.GradientTape() as tape:
            probabilities = model(self.inputs, training=True)
            loss = self._loss(tf.gather(self.labels, train), tf.gather(probabilities, train))
            loss += tf.add_n(model.losses) if model.losses else 0.0  # weight decay
        self.optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        probabilities = model(self.inputs, training=False)
        return self._evaluate(probabilities, validation) + self._evaluate(probabilities, test)

    def _reinitialize(self, init_seed):
        """Fresh seeded weights, dropout stream and optimizer state, same compiled epoch."""
        fresh = self._build(init_seed)
        self.model.set_weights(fresh.get_weights())
        from keras_cd._noise import random_seed_states

        for variable, value in zip(random_seed_states(self.model), random_seed_states(fresh)):
            variable.assign(value)
        for variable, value in zip(self.optimizer.variables, self._fresh_optimizer):
            variable.assign(value)

    def run(self, split_seed, init_seed):
        """One run on the split `random_split(labels, seed=split_seed)`; a `RunResult`."""
        import tensorflow as tf

        from keras_cd import datasets

        split_seed = _validation.integer("split_seed", split_seed, "Use e.g. 0.")
        init_seed = _validation.integer("init_seed", init_seed, "Use e.g. 0.")
        masks = [tf.constant(i) for i in datasets.random_split(self.data.labels, seed=split_seed)]
        self._reinitialize(init_seed)
        start = time.perf_counter()
        # best = (-val loss, val accuracy): the weights of the lowest loss are restored
        best, best_weights = (-np.inf, -np.inf), None
        best_loss, best_accuracy, waited, epochs = np.inf, -np.inf, 0, 0
        for epoch in range(1, self.max_epochs + 1):
            epochs = epoch
            val_loss, val_accuracy, _, _ = (float(v) for v in self._epoch(*masks))
            improved = val_loss < best_loss or val_accuracy > best_accuracy
            best_loss, best_accuracy = min(best_loss, val_loss), max(best_accuracy, val_accuracy)
            if (-val_loss, val_accuracy) > best:
                best, best_weights = (-val_loss, val_accuracy), self.model.get_weights()
            waited = 0 if improved else waited + 1
            if waited >= self.patience:
                break
        self.model.set_weights(best_weights)
        probabilities = self.model(self.inputs, training=False)
        _, validation_accuracy = self._evaluate(probabilities, masks[1])
        _, test_accuracy = self._evaluate(probabilities, masks[2])
        return RunResult(
            float(test_accuracy), float(validation_accuracy), epochs, time.perf_counter() - start
        )
