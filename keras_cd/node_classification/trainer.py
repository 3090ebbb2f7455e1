"""Semi-supervised node classification: one method, one graph, many runs, fast.

`NodeClassificationTrainer` holds a graph (`keras_cd.datasets.GraphData`), a
method (`keras_cd.node_classification.METHODS`: COIN or a baseline) with its
propagation precomputed, one model and ONE XLA-compiled training run: every
epoch (full-batch Adam, coupled weight decay, then the validation loss and
accuracy), early stopping and the bookkeeping of the best weights happen in a
single compiled `tf.while_loop`, so a run costs its arithmetic, not a Python
round trip per epoch. Each run starts from fresh seeded weights, early-stops
when neither validation loss nor accuracy improved for `patience` epochs,
restores the weights of the lowest validation loss and is then evaluated once
with the propagation applied exactly to the whole graph. A run whose
training loss or validation loss or accuracy becomes NaN or infinite stops
there and raises `RunFailedError` naming the split, the initialisation and
the epoch: no weights or figures of a failed run are ever reported, and none
of another run's (each run's best weights start as its own initial ones).
TensorFlow backend.
"""

import dataclasses
import time

import numpy as np

from keras_cd import _validation
from keras_cd._protocol import RunFailedError, finite
from keras_cd.node_classification.methods import CLASSES, settings_for

_FIX = (
    "Lower the learning rate or sigma2 (an unstable explicit step diverges), or check the "
    "features for NaN or infinity."
)


@dataclasses.dataclass(frozen=True)
class RunResult:
    """One training run: accuracies in [0, 1] (test: None when not evaluated),
    epochs trained, wall seconds (training and evaluation)."""

    test_accuracy: float
    validation_accuracy: float
    epochs: int
    seconds: float


class NodeClassificationTrainer:
    """Trains one method on one graph for any number of splits and initialisations.

    Args:
        data: a `keras_cd.datasets.GraphData` (e.g. from `load_gnnbench`).
        method: `"coin"` (default), `"appnp"` or `"sgc"`; see
            `keras_cd.node_classification.methods`.
        patience: int >= 1, epochs without improvement of validation loss
            or accuracy before stopping. Defaults to `50`.
        max_epochs: int >= 1. Defaults to `1000`.
        **settings: the method's hyperparameters, defaults in
            `keras_cd.node_classification.METHODS[method]`; for COIN those of
            `keras_cd.models.coin_classifier` (num_steps, sigma2, scheme,
            trainable_sigma2, hidden_units, dropout, input_dropout,
            weight_decay, readout_weight_decay) and `learning_rate` (Adam's).

    With a fixed sigma2, training reads the diffusion only at the training and
    validation nodes, through their rows of the exact operator
    (`keras_cd.graph.diffusion_rows`, once per split); `trainable_sigma2=True`
    trains through `keras_cd.GraphDiffusion` on the whole graph instead.

    Example:

    ```python
    data = keras_cd.datasets.load_gnnbench("cora.npz")
    trainer = keras_cd.node_classification.NodeClassificationTrainer(data, sigma2=0.3)
    result = trainer.run(split_seed=0, init_seed=0)   # RunResult(test_accuracy=...)
    ```
    """

    def __init__(self, data, method="coin", patience=50, max_epochs=1000, **settings):
        import keras
        import tensorflow as tf

        self.patience = _validation.positive_int("patience", patience, "Use e.g. 50.")
        self.max_epochs = _validation.positive_int("max_epochs", max_epochs, "Use e.g. 1000.")
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
        self.optimizer.build(self.model.trainable_weights)
        self._fresh_optimizer = [np.asarray(v) for v in self.optimizer.variables]
        self._best = [tf.Variable(w, trainable=False) for w in self.model.trainable_weights]
        self._loss = keras.losses.SparseCategoricalCrossentropy()
        self._fit = tf.function(self._fit_run, jit_compile=True)
        self._split = (None, None)  # (seed, inputs) of the last split
        self.history = None

    def copy(self):
        """A new trainer with the same data, method and settings (its own model)."""
        return type(self)(
            self.data, self.method_name, self.patience, self.max_epochs, **self.settings
        )

    @property
    def lambda_max(self):
        """lambda_max of COIN's Laplacian for the explicit scheme, else None."""
        return getattr(self.method, "lambda_max", None)

    def _outputs(self, inputs, index, training):
        import tensorflow as tf

        probabilities = self.model(inputs[0] if len(inputs) == 1 else inputs, training=training)
        return probabilities if index is None else tf.gather(probabilities, index)

    def _metrics(self, labels, probabilities):
        import tensorflow as tf

        correct = tf.equal(tf.argmax(probabilities, -1), labels)
        return self._loss(labels, probabilities), tf.reduce_mean(tf.cast(correct, "float32"))

    def _fit_run(self, train, validation):
        """All epochs of one run in one compiled loop; returns the epochs trained,
        the training loss of the last epoch and the validation loss and accuracy
        after each epoch (padded to max_epochs).

        Early stopping as the reference code: stop after `patience` epochs in
        which neither the validation loss fell nor the accuracy rose; the
        weights kept are those of the lowest validation loss (ties: the higher
        accuracy), the run's initial weights until an epoch is kept. The loop
        also stops after the first epoch whose training loss, validation loss
        or accuracy is not finite (`run` then raises).
        """
        import tensorflow as tf

        (train_inputs, train_index, train_labels) = train
        (val_inputs, val_index, val_labels) = validation
        weights = self.model.trainable_weights
        for best, weight in zip(self._best, weights):  # never a previous run's weights
            best.assign(weight)

        def epoch(
            count,
            healthy,
            loss,
            best_loss,
            best_accuracy,
            kept_loss,
            kept_accuracy,
            waited,
            history,
        ):
            with tf.GradientTape() as tape:
                probabilities = self._outputs(train_inputs, train_index, True)
                loss = self._loss(train_labels, probabilities)
                if self.model.losses:  # weight decay
                    loss += tf.add_n(self.model.losses)
            self.optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
            val_loss, val_accuracy = self._metrics(
                val_labels, self._outputs(val_inputs, val_index, False)
            )
            healthy = (
                tf.math.is_finite(loss)
                & tf.math.is_finite(val_loss)
                & tf.math.is_finite(val_accuracy)
            )
            improved = (val_loss < best_loss) | (val_accuracy > best_accuracy)
            keep = (val_loss < kept_loss) | (
                (val_loss == kept_loss) & (val_accuracy > kept_accuracy)
            )
            for best, weight in zip(self._best, weights):
                best.assign(tf.where(keep, weight, best))
            history = tuple(h.write(count, v) for h, v in zip(history, (val_loss, val_accuracy)))
            return (
                count + 1,
                healthy,
                loss,
                tf.minimum(best_loss, val_loss),
                tf.maximum(best_accuracy, val_accuracy),
                tf.where(keep, val_loss, kept_loss),
                tf.where(keep, val_accuracy, kept_accuracy),
                tf.where(improved, 0, waited + 1),
                history,
            )

        def running(count, healthy, *rest):
            waited = rest[-2]
            return (count < self.max_epochs) & (waited < self.patience) & healthy

        inf = tf.constant(np.inf, "float32")
        history = tuple(tf.TensorArray("float32", size=self.max_epochs) for _ in range(2))
        state = (
            tf.constant(0),
            tf.constant(True),
            tf.constant(0.0),
            inf,
            -inf,
            inf,
            -inf,
            tf.constant(0),
            history,
        )
        state = tf.while_loop(running, epoch, state)
        for best, weight in zip(self._best, weights):
            weight.assign(best)
        return (state[0], state[2]) + tuple(h.stack() for h in state[-1])

    def _reinitialize(self, init_seed):
        """Fresh seeded weights, dropout stream and optimizer state, same compiled run."""
        from keras_cd._protocol import restart

        restart(self.model, self.method.build(init_seed), self.optimizer, self._fresh_optimizer)

    def _split_inputs(self, split_seed):
        """The split and its inputs, computed once per split and reused across inits."""
        import tensorflow as tf

        from keras_cd import datasets

        if self._split[0] != split_seed:
            train, validation, test = datasets.random_split(self.labels, seed=split_seed)
            parts = []
            for nodes, (inputs, index) in zip(
                (train, validation), self.method.split_inputs(train, validation)
            ):
                parts.append(
                    (
                        [x if hasattr(x, "dense_shape") else tf.constant(x) for x in inputs],
                        None if index is None else tf.constant(index),
                        tf.constant(self.labels[nodes]),
                    )
                )
            self._split = (split_seed, ((train, validation, test), parts))
        return self._split[1]

    def run(self, split_seed, init_seed, evaluate_test=True):
        """One run on the split `random_split(labels, seed=split_seed)`; a `RunResult`.

        With `evaluate_test=False` (model selection) the test nodes' labels are
        never read and `test_accuracy` is None.
        """
        split_seed = _validation.integer("split_seed", split_seed, "Use e.g. 0.")
        init_seed = _validation.integer("init_seed", init_seed, "Use e.g. 0.")
        start = time.perf_counter()
        (train, validation, test), (train_part, val_part) = self._split_inputs(split_seed)
        self._reinitialize(init_seed)
        epochs, loss, losses, accuracies = self._fit(tuple(train_part), tuple(val_part))
        epochs = int(epochs)
        self.history = {  # of the last run
            "validation_loss": np.asarray(losses)[:epochs].tolist(),
            "validation_accuracy": np.asarray(accuracies)[:epochs].tolist(),
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
