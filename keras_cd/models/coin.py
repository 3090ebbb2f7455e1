"""COIN: a residual base classifier followed by heat diffusion on the data graph.

The node-classification model of Wang, Bao & Shi (arXiv 2403.15726): a base
model f maps node features to class scores by one residual (convection) step
in feature space, and the class probabilities are then smoothed along the
data graph by the heat equation

    u_t = -L u,    u(0) = softmax(f(X)),

the diffusion half of the convection-diffusion equation on the data manifold.
This module holds the base model
[`ResidualBaseClassifier`][keras_cd.models.ResidualBaseClassifier], the model
factory [`coin_classifier`][keras_cd.models.coin_classifier], and `GRAPHS`,
the ways the graph can be passed to the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
from keras import ops

from keras_cd import _random, _validation
from keras_cd.layers.graph_diffusion import GraphDiffusion, warn_if_unstable
from keras_cd.layers.precomputed_diffusion import (
    PrecomputedDiffusion,
    is_sparse,
    sparse_matmul,
    sparse_parts,
)

if TYPE_CHECKING:
    import scipy.sparse
    from numpy.typing import ArrayLike

# How `coin_classifier` takes the graph: an edge list, a dense or sparse Laplacian, or
# precomputed rows of the diffusion operator (see `coin_classifier`'s `graph` argument).
GRAPHS = ("edges", "dense", "sparse", "rows")


def _project(inputs, kernel, dropout, seed_generator, training):
    """`Dropout(dropout)(x) @ kernel` for a dense or a sparse `x`.

    A sparse x (a tf.SparseTensor or a JAX BCOO) is projected through its
    nonzeros only (`sparse_matmul`), so it compiles under XLA; dropout on the
    nonzeros is dropout on x, since dropped zeros stay zero.
    """
    sparse = is_sparse(inputs)
    values = ops.cast(sparse_parts(inputs)[1] if sparse else inputs, kernel.dtype)
    if training and dropout:
        values = _random.dropout(values, dropout, seed_generator)
    return sparse_matmul(inputs, kernel, values) if sparse else ops.matmul(values, kernel)


@keras.saving.register_keras_serializable(package="keras_cd")
class ResidualBaseClassifier(keras.layers.Layer):
    """COIN's base model f: a residual step in feature space, then a linear head.

    The convection half of COIN: one forward Euler step along a learned
    velocity field in feature space, read out linearly as class scores.

    The reference code's base network is

        h = x + relu(x W1 + b1),          f(x) = h W2 + b2   (class scores)

    with W1 of size F x F. `hidden_units=None` builds exactly that (slow for
    wide features: F^2 weights). With `hidden_units=H` the velocity field
    relu(x W1 + b1) V has rank H (W1: F x H, V: H x F) and

        f(x) = x W2 + relu(x W1 + b1) U + b2,      U = V W2  (H x C),

    where U is learned directly: the same functions, with `C * H` read-out
    weights instead of `H * F`. Neither form builds the (N, F) matrix h, so a
    sparse bag-of-words x costs only its nonzeros (`keras.Input(...,
    sparse=True)`, TensorFlow backend). Accuracy and speed of both forms on
    Cora: `benchmarks/RESULTS.md`. `residual=False` drops the skip x W2,
    leaving the two-layer perceptron f(x) = relu(x W1 + b1) U + b2 (APPNP's
    base network).

    Args:
        num_classes: int >= 2, width of f.
        hidden_units: int >= 1 or None, rank of the velocity field; None for
            the full-width reference network. Defaults to `64`.
        dropout: float in [0, 1), dropout on relu(x W1 + b1). Defaults to `0.5`.
        input_dropout: float in [0, 1), dropout on x. Defaults to `0.5`.
        seed: int or None, seed of the initial weights and of the dropout
            masks: the same seed gives the same run. Defaults to `None`.
        kernel_regularizer: regularizer of the input kernel [W1 | W2].
            Defaults to `None`.
        readout_regularizer: regularizer of the rank-H read-out U (unused
            when `hidden_units=None`). Defaults to `None`.
        residual: bool, keep the skip x W2. Defaults to `True`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: (N, F) features, dense or sparse.
        training: bool, turns dropout on. Defaults to `None` (off).

    Input shape:
        `(nodes, features)`, with a known number of features.

    Output shape:
        `(nodes, num_classes)` scores (logits).

    Raises:
        ValueError: if `num_classes` is not an int >= 2, `hidden_units` is
            neither None nor an int >= 1, a dropout rate is not in [0, 1),
            `seed` is neither None nor an int, `residual` is not a bool, or
            `residual=False` with `hidden_units=None` (at construction); if
            the number of features is unknown (when the layer is built).

    Example:
        >>> import numpy as np, keras, keras_cd
        >>> base = keras_cd.models.ResidualBaseClassifier(3, hidden_units=4, seed=0)
        >>> x = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
        >>> scores = keras.ops.convert_to_numpy(base(x))
        >>> scores.shape
        (5, 3)
        >>> kernel, b1, readout, b2 = (
        ...     keras.ops.convert_to_numpy(w)
        ...     for w in (base.kernel, base.hidden_bias, base.readout, base.bias)
        ... )
        >>> W1, W2 = kernel[:, :4], kernel[:, 4:]
        >>> expected = x @ W2 + np.maximum(x @ W1 + b1, 0) @ readout + b2
        >>> bool(np.allclose(scores, expected, atol=1e-5))  # f(x) = x W2 + relu(x W1 + b1) U + b2
        True
    """

    def __init__(
        self,
        num_classes: int,
        hidden_units: int | None = 64,
        dropout: float = 0.5,
        input_dropout: float = 0.5,
        seed: int | None = None,
        kernel_regularizer: keras.regularizers.Regularizer | str | dict | None = None,
        readout_regularizer: keras.regularizers.Regularizer | str | dict | None = None,
        residual: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_classes = _validation.integer(
            "num_classes", num_classes, "Use the number of classes, e.g. 7.", minimum=2
        )
        self.hidden_units = (
            None
            if hidden_units is None
            else _validation.integer(
                "hidden_units",
                hidden_units,
                "Use e.g. 64, or None for the full-width reference network.",
                minimum=1,
                expected="an integer >= 1 or None",
            )
        )
        self.dropout = _validation.rate("dropout", dropout)
        self.input_dropout = _validation.rate("input_dropout", input_dropout)
        self.seed = _validation.optional_seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.readout_regularizer = keras.regularizers.get(readout_regularizer)
        self.residual = _validation.boolean("residual", residual)
        if not self.residual and self.hidden_units is None:
            _validation.invalid(
                "hidden_units",
                "an integer >= 1 when residual=False",
                None,
                "Use e.g. hidden_units=64 for a two-layer perceptron.",
            )

    def _initializer(self, offset):
        """Glorot uniform, seeded from `seed` (a distinct stream per weight) when given."""
        return keras.initializers.GlorotUniform(
            None if self.seed is None else self.seed * 1009 + offset
        )

    def build(self, input_shape) -> None:
        """Creates the kernel [W1 | W2], the biases and the read-out U."""
        features = input_shape[-1]
        if features is None:
            raise ValueError(
                f"Invalid input shape for `{type(self).__name__}`: expected a known "
                f"number of features. Received: input_shape={tuple(input_shape)}."
            )
        hidden = features if self.hidden_units is None else self.hidden_units
        # One kernel [W1 | W2] so that x is read (and dropped out) once.
        skip = self.num_classes if self.residual else 0
        self.kernel = self.add_weight(
            name="kernel",
            shape=(features, hidden + skip),
            initializer=self._initializer(1),
            regularizer=self.kernel_regularizer,
        )
        self.hidden_bias = self.add_weight(name="hidden_bias", shape=(hidden,), initializer="zeros")
        self.readout = (
            None
            if self.hidden_units is None
            else self.add_weight(
                name="readout",
                shape=(hidden, self.num_classes),
                initializer=self._initializer(2),
                regularizer=self.readout_regularizer,
            )
        )
        self.bias = self.add_weight(name="bias", shape=(self.num_classes,), initializer="zeros")

    def call(self, inputs, training: bool | None = None):
        """Returns the class scores f(x), (N, num_classes)."""
        projected = _project(inputs, self.kernel, self.input_dropout, self.seed_generator, training)
        hidden = self.hidden_bias.shape[0]
        activation = ops.relu(projected[:, :hidden] + self.hidden_bias)
        if training and self.dropout:
            activation = _random.dropout(activation, self.dropout, self.seed_generator)
        readout = self.kernel[:, hidden:] if self.readout is None else self.readout  # W2 or U
        scores = ops.matmul(activation, readout) + self.bias
        return projected[:, hidden:] + scores if self.residual else scores

    def compute_output_shape(self, input_shape) -> tuple:
        """Returns `(nodes, num_classes)`."""
        return (input_shape[0], self.num_classes)

    def get_config(self) -> dict:
        """Returns the layer's config: the base layer's plus every constructor argument."""
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "hidden_units": self.hidden_units,
                "dropout": self.dropout,
                "input_dropout": self.input_dropout,
                "seed": self.seed,
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "readout_regularizer": keras.regularizers.serialize(self.readout_regularizer),
                "residual": self.residual,
            }
        )
        return config


def coin_classifier(
    num_features: int,
    num_classes: int,
    num_steps: int = 20,
    sigma2: float = 0.35,
    hidden_units: int | None = 64,
    dropout: float = 0.5,
    input_dropout: float | None = None,
    graph: str = "edges",
    scheme: str = "explicit",
    lambda_max: float | None = None,
    trainable_sigma2: bool = False,
    sparse_features: bool = False,
    laplacian: ArrayLike
    | scipy.sparse.spmatrix
    | scipy.sparse.sparray
    | tuple[ArrayLike, ArrayLike, ArrayLike]
    | None = None,
    seed: int | None = None,
    weight_decay: float = 0.0,
    readout_weight_decay: float | None = None,
    name: str = "coin",
) -> keras.Model:
    """COIN: a residual base classifier followed by heat diffusion on the data graph.

    The base model f (`ResidualBaseClassifier`) maps node features to class
    scores by one residual step in feature space and a linear head,

        h = x + relu(x W1 + b1) V,   f(x) = h W2 + b2   (dropout on x and on the relu),

    with a velocity field of rank `hidden_units` (None: V = I, W1 F x F, the
    reference code's network exactly), and the network returns u(T), where u
    solves the graph heat equation

        u_t = -L u,   u(0) = softmax(f(X)),   T = num_steps * sigma2

    (`keras_cd.GraphDiffusion`): the base model's class probabilities are
    smoothed along the graph, the diffusion half of the convection-diffusion
    equation on the data manifold. With a Laplacian whose rows sum to zero
    (`normalization="coin"`) every node's output still sums to one; with small
    enough steps (sigma2 * max_i L_ii <= 1 for explicit ones, any for
    implicit ones) the outputs also stay non-negative. `num_steps=0` is the
    plain residual classifier.

    Reference:
        - [Wang, Bao & Shi, 2024](https://arxiv.org/abs/2403.15726)

    Args:
        num_features: int >= 1, feature width F.
        num_classes: int >= 2, number of classes.
        num_steps: int >= 0, diffusion steps. Defaults to `20`.
        sigma2: float >= 0, diffusion step size. Defaults to `0.35`.
        hidden_units: int or None, rank of the velocity field (None: full
            width F, the reference network). Defaults to `64`.
        dropout: float in [0, 1), dropout rate on relu(x W1 + b1).
            Defaults to `0.5`.
        input_dropout: float in [0, 1) or None, dropout rate on the
            features. Defaults to `None`: the value of `dropout`.
        graph: `"edges"` (inputs senders, receivers, weights), `"dense"`
            (an (N, N) Laplacian input), `"sparse"` (the same as a sparse
            tensor, TensorFlow backend) or `"rows"`: an (R, N) input P[rows]
            of precomputed diffusion rows (`keras_cd.graph.diffusion_rows`
            with this num_steps, sigma2 and scheme on the "coin" Laplacian),
            applied by `keras_cd.layers.PrecomputedDiffusion`, and the model
            returns the R rows' probabilities; the fast path when only some
            nodes are read and sigma2 is fixed. Defaults to `"edges"`.
        scheme: `"explicit"` or `"implicit"`, the time-stepping scheme of the
            diffusion (see `GraphDiffusion`). Defaults to `"explicit"`.
        lambda_max: float or None, the largest eigenvalue of the Laplacians
            the model will see, for the stability check of the explicit
            scheme. Defaults to `None` (estimated from `laplacian` when
            given, else from the first concrete Laplacian it is called with).
        trainable_sigma2: bool, learn sigma2 (not with `graph="rows"`).
            Defaults to `False`.
        sparse_features: bool, take the features as a sparse tensor and
            project them through their nonzeros only (TensorFlow backend;
            compiles under XLA, but a sparse input does not export to ONNX).
            Defaults to `False`.
        laplacian: optional, the Laplacian the model will be used with (edge
            list, dense array or scipy.sparse matrix), read once here to
            guard the explicit scheme when `lambda_max` is not given: its
            Gershgorin bound when that proves sigma2 stable, else its largest
            eigenvalue (Lanczos), so an unstable sigma2 warns at construction
            and a learned sigma2 is kept in the stable range. With
            `scheme="implicit"` it is checked for symmetry instead. Defaults
            to `None`.
        seed: int or None, seed of every random piece (initial weights and
            dropout masks): the same seed and data give the same run.
            Defaults to `None`.
        weight_decay: float >= 0, coupled L2 decay of the base model's input
            kernel (the gradient gains `weight_decay * w`, as Adam's
            `weight_decay` in PyTorch; the reference uses 5e-4), as
            regularization losses in `model.losses`. Defaults to `0.0`.
        readout_weight_decay: float >= 0 or None, the same for the read-out
            U (0 decays the first layer only, as GCN). Defaults to `None`:
            the value of `weight_decay`.
        name: str, model name. Defaults to `"coin"`.

    Returns:
        A `keras.Model` with inputs `[features, senders, receivers, weights]`
        (or `[features, laplacian]`) and (N, num_classes) float32 class
        probabilities, or inputs `[features, diffusion_rows]` and
        (R, num_classes) ones.

    Raises:
        ValueError: if `graph` is not one of `GRAPHS`, `num_features` is not
            an int >= 1, `trainable_sigma2=True` with `graph="rows"`,
            `weight_decay` or `readout_weight_decay` is negative, a given
            `laplacian` is not symmetric with `scheme="implicit"`, or an
            argument of the base model or of `GraphDiffusion` is invalid.

    Warns:
        UserWarning: with `scheme="explicit"`, when sigma2 * lambda_max > 2
            for the given `lambda_max` or `laplacian`.

    Example:
        >>> import numpy as np, keras, keras_cd
        >>> path = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
        >>> senders, receivers, weights = keras_cd.graph.laplacian(path)  # "coin", L 1 = 0
        >>> model = keras_cd.models.coin_classifier(4, 2, num_steps=5, sigma2=0.2, seed=0)
        >>> features = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
        >>> probabilities = model([features, senders, receivers, weights])
        >>> probabilities = keras.ops.convert_to_numpy(probabilities)
        >>> probabilities.shape, bool(np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6))
        ((3, 2), True)
    """
    if graph not in GRAPHS:
        raise ValueError(
            f"Invalid value for `graph`: expected one of {list(GRAPHS)}. "
            f"Received: graph={graph!r}. Use 'edges' for sparse graphs."
        )
    num_features = _validation.positive_int(
        "num_features", num_features, "Use the width of the node features."
    )
    features = keras.Input((num_features,), sparse=sparse_features, name="features")
    if graph == "rows" and trainable_sigma2:
        raise ValueError(
            "Invalid value for `trainable_sigma2`: precomputed diffusion rows fix sigma2. "
            "Received: trainable_sigma2=True with graph='rows'. Use graph='edges' to learn "
            "sigma2."
        )
    if graph == "edges":
        operand = (
            keras.Input((), dtype="int32", name="senders"),
            keras.Input((), dtype="int32", name="receivers"),
            keras.Input((), name="weights"),
        )
        graph_inputs = list(operand)
    else:
        operand = keras.Input(
            (None,),
            sparse=graph == "sparse",
            name="diffusion_rows" if graph == "rows" else "laplacian",
        )
        graph_inputs = [operand]
    input_dropout = dropout if input_dropout is None else input_dropout
    if laplacian is not None and num_steps:
        laplacian = tuple(laplacian) if isinstance(laplacian, list) else laplacian
        if scheme == "implicit":
            GraphDiffusion.check_symmetric(laplacian, "coin_classifier")
        elif lambda_max is None:
            from keras_cd.graph.laplacian import stability_lambda_max

            lambda_max = stability_lambda_max(laplacian, sigma2, exact=trainable_sigma2)
    # Validates num_classes, hidden_units, the dropout rates and the seed.
    weight_decay = _validation.non_negative_float("weight_decay", weight_decay, "Use e.g. 5e-4.")
    readout_weight_decay = (
        weight_decay
        if readout_weight_decay is None
        else _validation.non_negative_float(
            "readout_weight_decay", readout_weight_decay, "Use e.g. 5e-4, or 0."
        )
    )

    def l2(decay):  # coupled: the gradient gains decay * w
        return keras.regularizers.L2(decay / 2) if decay else None

    base = ResidualBaseClassifier(
        num_classes,
        hidden_units,
        dropout=dropout,
        input_dropout=input_dropout,
        seed=seed,
        kernel_regularizer=l2(weight_decay),
        readout_regularizer=l2(readout_weight_decay),
        name="base",
    )
    scores = base(features)
    probabilities = keras.layers.Softmax(dtype="float32", name="base_probabilities")(scores)
    if graph == "rows":
        if scheme == "explicit":  # the rows were computed with these settings
            warn_if_unstable(name, num_steps, sigma2, lambda_max, stacklevel=2)
        outputs = PrecomputedDiffusion(dtype="float32", name="graph_diffusion")(
            probabilities, operand
        )
        return keras.Model([features] + graph_inputs, outputs, name=name)
    outputs = GraphDiffusion(
        num_steps,
        sigma2,
        trainable_sigma2=trainable_sigma2,
        scheme=scheme,
        lambda_max=lambda_max,
        dtype="float32",
        name="graph_diffusion",
    )(probabilities, operand)
    return keras.Model([features] + graph_inputs, outputs, name=name)
