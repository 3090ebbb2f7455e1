"""The forecasting networks: COIN for regression and its baselines.

COIN (Wang, Bao & Shi, 2024) turns a per-node regression network into a
graph method by diffusing its prediction over the graph: the diffusion half
of the convection-diffusion equation, discretized with explicit steps on
the graph Laplacian. Every network maps the nodes of a batch of snapshots, stacked graph after
graph (a disjoint union, `keras_cd.graph.disjoint_union`), with `lags`
features each, to one value per node. With x a node's features:

- `"coin"`: the base f(x) = x w + b + elu(x W1 + b1) v + c (a linear map plus
  a one-hidden-layer correction), then `num_steps` steps of
  u <- u - sigma2 L Dropout(u) on the day's Laplacian (`keras_cd.GraphDiffusion`
  with dropout): u_T = p(L) f(X). num_steps = 0 is the base alone.
- `"mlp"`: elu(x W1 + b1), dropout, then a linear read-out: no graph.
- `"gcn"`: two graph convolutions (Kipf & Welling, 2017), A_gcn (X W) + b with
  A_gcn = D^-1/2 (A^T + I) D^-1/2 (messages along the edges' direction, D the
  in-degrees + 1), elu and dropout between them.
- `"linear"`: ordinary least squares with an intercept on the observed
  training entries (what scikit-learn's `LinearRegression` fits), no network.

Weight decay is coupled L2 on every kernel and bias (PyTorch Adam's
`weight_decay`): the loss gains decay / 2 * ||w||^2.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_cd import _random, _validation
from keras_cd.layers.graph_diffusion import GraphDiffusion

METHODS = {
    "coin": {
        "num_steps": 10,
        "sigma2": 0.5,
        "hidden_units": 16,
        "dropout": 0.25,
        "weight_decay": 5e-4,
        "learning_rate": 0.01,
    },
    "mlp": {"hidden_units": 16, "dropout": 0.25, "weight_decay": 5e-4, "learning_rate": 0.01},
    "gcn": {"hidden_units": 16, "dropout": 0.25, "weight_decay": 5e-4, "learning_rate": 0.01},
    "linear": {},
}
"""dict of method name -> its default settings (`ForecastingTrainer(**settings)` overrides them).

`"coin"`: COIN; `"mlp"`, `"gcn"`: the neural baselines; `"linear"`: least
squares (no settings). `learning_rate` is Adam's; the others are
`forecasting_model`'s arguments.
"""

GRAPHS = {"coin": "laplacian", "gcn": "propagation", "mlp": None, "linear": None}


def settings_for(method, settings):
    """The method's defaults updated with `settings` (unknown names refused).

    Args:
        method: str, a name in `METHODS`.
        settings: dict, the settings to override.

    Returns:
        dict, `METHODS[method]` updated with `settings`.

    Raises:
        ValueError: for an unknown method or setting name.
    """
    from keras_cd._protocol import method_settings

    return method_settings(
        METHODS, method, settings, "Use 'coin', or 'mlp', 'gcn' or 'linear' for a baseline."
    )


@keras.saving.register_keras_serializable(package="keras_cd")
class GraphConvolution(keras.layers.Layer):
    """A graph convolution (Kipf & Welling, 2017) over an edge list: A (x W) + b.

    The GCN baseline of the forecasting experiment. With the edge list of a
    propagation matrix A (for GCN, A_gcn = D^-1/2 (A^T + I) D^-1/2), each
    node i receives

        y_i = sum_{edges (j -> i)} a_ji * (x_j W) + b,

    computed as a segment sum of the weighted messages, so a batch of
    graphs is one disjoint union.

    Reference:
        - [Kipf & Welling, 2017](https://arxiv.org/abs/1609.02907)

    Args:
        units: int >= 1, output features per node.
        seed: int or None, seed of the Glorot-uniform kernel. Defaults to
            `None`.
        regularizer: a Keras regularizer (or its name) of the kernel and the
            bias, or None. Defaults to `None`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: (nodes, features) tensor.
        graph: `(senders, receivers, weights)`, three (edges,) tensors: int
            senders j and receivers i, float weights a_ji.

    Input shape:
        (nodes, features), and the edge list.

    Output shape:
        (nodes, units).

    Example:
    >>> import numpy as np, keras, keras_cd
    >>> layer = keras_cd.forecasting.GraphConvolution(2, seed=0)
    >>> x = np.array([[1.0], [2.0], [3.0]], "float32")
    >>> graph = (np.array([0, 1]), np.array([1, 2]), np.array([1.0, 0.5], "float32"))
    >>> y = keras.ops.convert_to_numpy(layer(x, graph))
    >>> w = keras.ops.convert_to_numpy(layer.kernel)  # the bias starts at 0
    >>> bool(np.allclose(y, [[0, 0], 1.0 * w[0], 0.5 * 2.0 * w[0]]))
    True
    """

    def __init__(
        self,
        units: int,
        seed: int | None = None,
        regularizer: keras.regularizers.Regularizer | str | dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = _validation.positive_int("units", units, "Use e.g. 16.")
        self.seed = _validation.optional_seed("seed", seed)
        self.regularizer = keras.regularizers.get(regularizer)

    def build(self, inputs_shape, graph_shape=None) -> None:
        """Creates the kernel (features, units) and the bias (units,)."""
        self.kernel = self.add_weight(
            name="kernel",
            shape=(inputs_shape[-1], self.units),
            initializer=keras.initializers.GlorotUniform(self.seed),
            regularizer=self.regularizer,
        )
        self.bias = self.add_weight(
            name="bias", shape=(self.units,), initializer="zeros", regularizer=self.regularizer
        )

    def call(self, inputs, graph):
        """A (inputs W) + b over the edge list `graph`."""
        senders, receivers, weights = graph
        values = ops.matmul(inputs, self.kernel)
        messages = ops.expand_dims(weights, -1) * ops.take(values, senders, axis=0)
        return ops.segment_sum(messages, receivers, num_segments=ops.shape(inputs)[0]) + self.bias

    def compute_output_shape(self, inputs_shape, graph_shape=None) -> tuple:
        """(nodes, units)."""
        return (*inputs_shape[:-1], self.units)

    def get_config(self) -> dict:
        """The layer's config: `units`, `seed` and `regularizer` with the base layer's."""
        return {
            **super().get_config(),
            "units": self.units,
            "seed": self.seed,
            "regularizer": keras.regularizers.serialize(self.regularizer),
        }


def forecasting_model(
    method: str,
    lags: int = 8,
    hidden_units: int = 16,
    dropout: float = 0.25,
    num_steps: int = 10,
    sigma2: float = 0.5,
    weight_decay: float = 5e-4,
    seed: int | None = None,
) -> keras.Model:
    """The Keras model of `method`: COIN, or the MLP or GCN baseline.

    With x a node's `lags` features (see the module for the baselines):
    COIN's base f(x) = x w + b + elu(x W1 + b1) v + c, then `num_steps`
    explicit diffusion steps on the day's Laplacian L,

        u <- u - sigma2 * L Dropout(u),

    (`keras_cd.GraphDiffusion` with dropout); `num_steps=0` is the base
    alone, a model of the features only.

    Args:
        method: `"coin"`, `"mlp"` or `"gcn"`.
        lags: int >= 1, input features per node (days of history).
            Defaults to `8`.
        hidden_units: int >= 1, width of the hidden layer. Defaults to `16`.
        dropout: float in [0, 1), dropout rate (COIN: in every diffusion
            step). Defaults to `0.25`.
        num_steps: int >= 0, COIN's diffusion steps. Defaults to `10`.
        sigma2: float >= 0, COIN's step size. Defaults to `0.5`.
        weight_decay: float >= 0, coupled L2 decay on every kernel and bias
            (the loss gains decay / 2 * ||w||^2). Defaults to `5e-4`.
        seed: int or None, seeds every weight and dropout stream. Defaults
            to `None`.

    Returns:
        A `keras.Model` with inputs `features` (nodes, lags) and, for COIN
        (with diffusion) and GCN, the graph's edge list `senders`,
        `receivers`, `weights` (edges,): the Laplacian L for COIN, A_gcn
        for GCN. Output: (nodes, 1).

    Raises:
        ValueError: for an invalid argument.

    Example:
    >>> import numpy as np, keras, keras_cd
    >>> model = keras_cd.forecasting.forecasting_model("coin", lags=3, num_steps=2, seed=0)
    >>> [i.name for i in model.inputs]
    ['features', 'senders', 'receivers', 'weights']
    >>> base = keras_cd.forecasting.forecasting_model("coin", lags=3, num_steps=0, seed=0)
    >>> x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    >>> no_edges = (np.zeros(0, "int32"), np.zeros(0, "int32"), np.zeros(0, "float32"))
    >>> u = keras.ops.convert_to_numpy(model([x, *no_edges]))  # L = 0: u_T = f(X)
    >>> u.shape, bool(np.allclose(u, keras.ops.convert_to_numpy(base(x))))
    ((4, 1), True)
    """
    _validation.one_of("method", method, ("coin", "mlp", "gcn"), "Use 'coin', 'mlp' or 'gcn'.")
    lags = _validation.positive_int("lags", lags, "Use e.g. 8.")
    hidden_units = _validation.positive_int("hidden_units", hidden_units, "Use e.g. 16.")
    dropout = _validation.rate("dropout", dropout, "Use e.g. 0.25.")
    seed = _validation.optional_seed("seed", seed)
    decay = _validation.non_negative_float("weight_decay", weight_decay, "Use e.g. 5e-4.")
    l2 = keras.regularizers.L2(decay / 2) if decay else None

    def stream(offset):  # a distinct, seeded stream per weight and per dropout
        return None if seed is None else seed * 1009 + offset

    def dense(units, offset, name, activation=None):
        return keras.layers.Dense(
            units,
            activation=activation,
            kernel_initializer=keras.initializers.GlorotUniform(stream(offset)),
            kernel_regularizer=l2,
            bias_regularizer=l2,
            name=name,
        )

    features = keras.Input((lags,), name="features")
    graph = [
        keras.Input((), dtype="int32", name="senders"),
        keras.Input((), dtype="int32", name="receivers"),
        keras.Input((), dtype="float32", name="weights"),
    ]
    if method == "mlp":
        hidden = dense(hidden_units, 1, "hidden", "elu")(features)
        hidden = _Dropout(dropout, stream(2), name="dropout")(hidden)
        return keras.Model(features, dense(1, 3, "readout")(hidden), name="mlp")
    if method == "gcn":
        hidden = GraphConvolution(hidden_units, stream(1), l2, name="convolution_1")(
            features, graph
        )
        hidden = _Dropout(dropout, stream(2), name="dropout")(keras.activations.elu(hidden))
        outputs = GraphConvolution(1, stream(3), l2, name="convolution_2")(hidden, graph)
        return keras.Model([features, *graph], outputs, name="gcn")
    num_steps = _validation.non_negative_int("num_steps", num_steps, "Use e.g. 10 (0: base).")
    linear = dense(1, 1, "linear")(features)
    hidden = dense(hidden_units, 2, "hidden", "elu")(features)
    base = keras.layers.Add(name="base")([linear, dense(1, 3, "correction")(hidden)])
    if not num_steps:
        return keras.Model(features, base, name="coin_base")
    outputs = GraphDiffusion(
        num_steps, sigma2, dropout=dropout, seed=stream(4), name="graph_diffusion"
    )(base, graph)
    return keras.Model([features, *graph], outputs, name="coin")


@keras.saving.register_keras_serializable(package="keras_cd")
class _Dropout(keras.layers.Layer):
    """Inverted dropout with keras_cd's seeded masks (`_random.dropout`)."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _validation.rate("rate", rate, "Use e.g. 0.25.")
        self.seed = seed
        self.seed_generator = _random.ReplicaSeedGenerator(seed)

    def call(self, inputs, training=None):
        if training and self.rate:
            return _random.dropout(inputs, self.rate, self.seed_generator)
        return inputs

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
