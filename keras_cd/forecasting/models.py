"""The forecasting networks: COIN for regression and its baselines.

Every network maps the nodes of a batch of snapshots, stacked graph after
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

GRAPHS = {"coin": "laplacian", "gcn": "propagation", "mlp": None, "linear": None}


def settings_for(method, settings):
    """The method's defaults updated with `settings` (unknown names refused)."""
    from keras_cd._protocol import method_settings

    return method_settings(
        METHODS, method, settings, "Use 'coin', or 'mlp', 'gcn' or 'linear' for a baseline."
    )


@keras.saving.register_keras_serializable(package="keras_cd")
class GraphConvolution(keras.layers.Layer):
    """A_gcn (x W) + b over an edge list of A_gcn (`(senders, receivers, weights)`)."""

    def __init__(self, units, seed=None, regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = _validation.positive_int("units", units, "Use e.g. 16.")
        self.seed = _validation.optional_seed("seed", seed)
        self.regularizer = keras.regularizers.get(regularizer)

    def build(self, inputs_shape, graph_shape=None):
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
        senders, receivers, weights = graph
        values = ops.matmul(inputs, self.kernel)
        messages = ops.expand_dims(weights, -1) * ops.take(values, senders, axis=0)
        return ops.segment_sum(messages, receivers, num_segments=ops.shape(inputs)[0]) + self.bias

    def compute_output_shape(self, inputs_shape, graph_shape=None):
        return (*inputs_shape[:-1], self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "seed": self.seed,
            "regularizer": keras.regularizers.serialize(self.regularizer),
        }


def forecasting_model(
    method,
    lags=8,
    hidden_units=16,
    dropout=0.25,
    num_steps=10,
    sigma2=0.5,
    weight_decay=5e-4,
    seed=None,
):
    """The Keras model of `method` ("coin", "mlp" or "gcn"; see the module).

    Inputs: `features` (nodes, lags) and, for "coin" and "gcn", the graph's
    edge list `senders`, `receivers`, `weights` (edges,): the Laplacian L
    for COIN, A_gcn for GCN. Output: (nodes, 1).
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
