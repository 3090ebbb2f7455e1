"""A whole training run in one compiled call, on every Keras backend.

The paper's graph experiments (Wang, Bao & Shi, 2024) are reported over
hundreds of runs of small models; this is what makes each run cheap. Both
trainers (`keras_cd.node_classification`, `keras_cd.forecasting`)
train a small model full-batch for up to `max_epochs` epochs. `CompiledRun`
does every epoch of a run in one `keras.ops.while_loop` over the model's
state, written once with `keras.ops`, `Model.stateless_call` and
`Optimizer.stateless_apply`; `keras_cd._backend` supplies the gradient and
the compiler (TensorFlow: `tf.function(jit_compile=True)`, JAX: `jax.jit`,
PyTorch: eager), so a run costs its arithmetic, not a Python round trip per
epoch (on PyTorch the loop runs in Python).

One epoch: a gradient step on the training loss (plus the model's own
losses, e.g. weight decay), then, when the run validates, the validation
loss and accuracy in inference mode. Early stopping as the reference code of
the node-classification protocol: stop after `patience` epochs in which
neither the validation loss fell nor the accuracy rose; the weights kept are
those of the lowest validation loss (ties: the higher accuracy), the run's
initial weights until an epoch is kept. Without validation the run trains
`max_epochs` epochs and keeps the last weights. Either way the loop stops
after the first epoch whose training loss (or validation loss or accuracy)
is not finite; the caller reports that run as failed.
"""

import keras
import numpy as np
from keras import ops

from keras_cd import _backend


class CompiledRun:
    """Trains `model` with `optimizer` for one run per call.

    On JAX the weights, the optimizer's state and the random-seed states are
    the loop's values (`Model.stateless_call`, `Optimizer.stateless_apply`);
    on TensorFlow (whose optimizers have no `stateless_apply`) and PyTorch
    they stay in the model's variables, updated in place by the optimizer,
    with the kept weights in variables of their own.

    Args:
        model: a built Keras model.
        optimizer: a Keras optimizer built on `model.trainable_variables`.
        loss: `loss(outputs, targets) -> scalar`, in `keras.ops` (the model's
            own losses are added to it).
        max_epochs: int >= 1.
        patience: int >= 1, or None to train `max_epochs` epochs without
            validation. Defaults to `None`.
        metrics: `metrics(outputs, targets) -> (loss, accuracy)` on the
            validation data (required with `patience`). Defaults to `None`.
        jit_compile: bool, on TensorFlow whether the run is compiled with
            XLA (faster runs, a slower first call) or as a plain graph. JAX
            always compiles with XLA; PyTorch runs eagerly. Defaults to
            `True`.

    Raises:
        ValueError: if `patience` is given without `metrics`.
    """

    def __init__(
        self, model, optimizer, loss, max_epochs, patience=None, metrics=None, jit_compile=True
    ):
        if patience is not None and metrics is None:
            raise ValueError("Invalid `metrics`: early stopping (`patience`) needs them.")
        self.model, self.optimizer = model, optimizer
        self.loss, self.metrics = loss, metrics
        self.max_epochs, self.patience = int(max_epochs), patience
        self._stateless = _backend.name() == "jax"
        self._kept = []
        if not self._stateless and patience is not None:
            self._kept = [
                keras.Variable(_backend.numpy(v.value), trainable=False, name=f"kept_{i}")
                for i, v in enumerate(model.trainable_variables)
            ]
        self._compiled = _backend.compile(self._run, jit=bool(jit_compile))

    def _total_loss(self, outputs, targets, losses):
        value = ops.cast(self.loss(outputs, targets), "float32")
        for extra in losses:
            value = value + ops.cast(extra, "float32")
        return value

    def _objective(self, trainable, non_trainable, inputs, targets):
        outputs, non_trainable, losses = self.model.stateless_call(
            trainable, non_trainable, inputs, training=True, return_losses=True
        )
        return self._total_loss(outputs, targets, losses), non_trainable

    def _step(self, weights, train):
        """One gradient step: (training loss, weights)."""
        if self._stateless:
            trainable, non_trainable, optimizer_variables, kept = weights
            gradient = _backend.value_and_grad(self._objective)
            (loss, non_trainable), grads = gradient(trainable, non_trainable, *train)
            trainable, optimizer_variables = self.optimizer.stateless_apply(
                optimizer_variables, grads, trainable
            )
            return loss, (trainable, non_trainable, optimizer_variables, kept)
        inputs, targets = train
        variables = self.model.trainable_variables

        def objective():
            outputs = self.model(inputs, training=True)
            return self._total_loss(outputs, targets, self.model.losses)

        loss, grads = _backend.variables_value_and_grad(objective, variables)
        self.optimizer.apply(grads, variables)
        return loss, weights

    def _infer(self, weights, inputs):
        if self._stateless:
            trainable, non_trainable = weights[:2]
            return self.model.stateless_call(trainable, non_trainable, inputs, training=False)[0]
        with _backend.no_grad():
            return self.model(inputs, training=False)

    def _keep(self, weights, keep):
        if self._stateless:
            trainable, non_trainable, optimizer_variables, kept = weights
            kept = [ops.where(keep, w, b) for w, b in zip(trainable, kept)]
            return (trainable, non_trainable, optimizer_variables, kept)
        for kept, variable in zip(self._kept, self.model.trainable_variables):
            kept.assign(ops.where(keep, variable.value, kept.value))
        return weights

    def _run(self, state, train, validation):
        epochs = ops.arange(self.max_epochs)
        inf = ops.convert_to_tensor(np.inf, "float32")

        def body(count, healthy, loss, best, kept, waited, weights, history):
            loss, weights = self._step(weights, train)
            healthy = ops.isfinite(loss)
            if self.patience is None:
                return count + 1, healthy, loss, best, kept, waited, weights, history
            outputs = self._infer(weights, validation[0])
            val_loss, val_accuracy = (
                ops.cast(m, "float32") for m in self.metrics(outputs, validation[1])
            )
            healthy = healthy & ops.isfinite(val_loss) & ops.isfinite(val_accuracy)
            improved = (val_loss < best[0]) | (val_accuracy > best[1])
            keep = (val_loss < kept[0]) | ((val_loss == kept[0]) & (val_accuracy > kept[1]))
            weights = self._keep(weights, keep)
            here = epochs == count
            history = (
                ops.where(here, val_loss, history[0]),
                ops.where(here, val_accuracy, history[1]),
            )
            best = (ops.minimum(best[0], val_loss), ops.maximum(best[1], val_accuracy))
            kept = (ops.where(keep, val_loss, kept[0]), ops.where(keep, val_accuracy, kept[1]))
            waited = ops.where(improved, 0, waited + 1)
            return count + 1, healthy, loss, best, kept, waited, weights, history

        def running(count, healthy, loss, best, kept, waited, weights, history):
            going = (count < self.max_epochs) & healthy
            if self.patience is not None:
                going = going & (waited < self.patience)
            return going

        if self._stateless:
            trainable, non_trainable, optimizer_variables = state
            weights = (list(trainable), list(non_trainable), list(optimizer_variables))
            weights = weights + (list(trainable),)
        else:
            for kept, variable in zip(self._kept, self.model.trainable_variables):
                kept.assign(variable.value)  # never a previous run's weights
            weights = ops.convert_to_tensor(0, "int32")  # the state is in the variables
        zero = ops.convert_to_tensor(0, "int32")
        history = (ops.zeros((self.max_epochs,), "float32"),) * 2
        loop = (
            zero,
            ops.convert_to_tensor(True),
            ops.convert_to_tensor(0.0, "float32"),
            (inf, -inf),
            (inf, -inf),
            zero,
            weights,
            history,
        )
        count, _, loss, _, _, _, weights, history = ops.while_loop(running, body, loop)
        return count, loss, weights, history

    def __call__(self, train, validation=None):
        """Trains one run from the model's and the optimizer's current state.

        Args:
            train: `(inputs, targets)` of the training loss.
            validation: `(inputs, targets)` of the validation metrics
                (with `patience`), else None.

        Returns:
            `(epochs, last training loss, validation losses, validation
            accuracies)` as NumPy values, the histories of length `epochs`
            (empty without validation). The model then holds the kept
            weights (the last ones without validation), and its
            random-seed states have advanced.
        """
        model, optimizer = self.model, self.optimizer
        state = None
        if self._stateless:
            state = (
                [v.value for v in model.trainable_variables],
                [v.value for v in model.non_trainable_variables],
                [v.value for v in optimizer.variables],
            )
        count, loss, weights, history = self._compiled(state, tuple(train), validation)
        if self._stateless:
            trainable, non_trainable, optimizer_variables, kept = weights
            final = trainable if self.patience is None else kept
            for variable, value in zip(model.non_trainable_variables, non_trainable):
                variable.assign(value)
            for variable, value in zip(optimizer.variables, optimizer_variables):
                variable.assign(value)
        else:  # the variables hold the last weights
            final = [v.value for v in self._kept]  # empty without validation
        for variable, value in zip(model.trainable_variables, final):
            variable.assign(value)
        count = int(_backend.numpy(count))
        losses, accuracies = (
            _backend.numpy(h)[: count if self.patience is not None else 0] for h in history
        )
        return count, float(_backend.numpy(loss)), losses, accuracies
