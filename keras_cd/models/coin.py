import keras
from keras import ops

from keras_cd.layers.graph_diffusion import GraphDiffusion

GRAPHS = ("edges", "dense")


@keras.saving.register_keras_serializable(package="keras_cd")
class SparseInputProjection(keras.layers.Layer):
    """`Dense(units)(Dropout(rate)(x))` for a sparse `x`, touching only its nonzeros.

    (x W)_i = sum over the nonzeros (i, j) of x_ij W_j, by gather + segment_sum,
    so it compiles under XLA (tf.sparse's matmul does not). Dropout on the
    nonzeros is dropout on x, since dropped zeros stay zero. Takes the sparse
    tensors of `keras.Input(..., sparse=True)` (TensorFlow backend).
    """

    def __init__(self, units, dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.dropout, self.seed = units, dropout, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.units),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, inputs, training=None):
        values = ops.cast(inputs.values, self.compute_dtype)
        if training and self.dropout:
            keep = keras.random.uniform(ops.shape(values), seed=self.seed_generator) >= self.dropout
            values = ops.where(keep, values / (1 - self.dropout), 0)
        rows, cols = inputs.indices[:, 0], inputs.indices[:, 1]
        contributions = values[:, None] * ops.take(self.kernel, cols, axis=0)
        num_rows = ops.cast(inputs.dense_shape[0], "int32")
        return ops.segment_sum(contributions, rows, num_segments=num_rows) + self.bias

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "dropout": self.dropout, "seed": self.seed})
        return config


def coin_classifier(num_features, num_classes, num_steps=20, sigma2=0.35, hidden_units=64,
                    dropout=0.5, input_dropout=None, graph="edges", scheme="explicit", lambda_max=None,
                    trainable_sigma2=False, sparse_features=False, name="coin"):
    """COIN: a residual base classifier followed by heat diffusion on the data graph.

    The base model f maps node features to class scores,

        h = W0 x,   h <- h + relu(W1 h),   f(x) = W2 h     (dropout on x and h),

    and the network returns u(T), where u solves the graph heat equation
    u_t = -L u from u(0) = softmax(f(X)) for t = num_steps * sigma2
    (`keras_cd.GraphDiffusion`): the base model's class probabilities are
    smoothed along the graph, the diffusion half of the convection-diffusion
    equation on the data manifold. With a Laplacian whose rows sum to zero
    (`normalization="coin"`) every node's output still sums to one; with small
    enough steps (sigma2 * max_i L_ii <= 1 for explicit ones, any for
    implicit ones) the outputs also stay non-negative. `num_steps=0` is the plain
    residual classifier.

    Reference:
        - [Wang, Bao & Shi, 2024](https://arxiv.org/abs/2403.15726)

    Args:
        num_features: int, feature width F.
        num_classes: int >= 2.
        num_steps: int >= 0, diffusion steps. Defaults to `20`.
        sigma2: float >= 0, diffusion step size. Defaults to `0.35`.
        hidden_units: int, width of h. Defaults to `64`.
        dropout: float in [0, 1), dropout rate on h. Defaults to `0.5`.
        input_dropout: float in [0, 1) or None, dropout rate on the (dense)
            features; None uses `dropout`.
        graph: `"edges"` (inputs senders, receivers, weights) or `"dense"`
            (an (N, N) Laplacian input). Defaults to `"edges"`.
        scheme, lambda_max, trainable_sigma2: passed to `GraphDiffusion`.
        sparse_features: bool, take the features as a sparse tensor and
            project them through their nonzeros only (`SparseInputProjection`,
            TensorFlow backend; fast, compiles under XLA, but a sparse input
            does not export to ONNX). Defaults to `False`.
        name: model name.

    Returns:
        A `keras.Model` with inputs `[features, senders, receivers, weights]`
        (or `[features, laplacian]`) and (N, num_classes) class probabilities.
    """
    if graph not in GRAPHS:
        raise ValueError(f"Invalid value for `graph`: expected one of {list(GRAPHS)}. "
                         f"Received: graph={graph!r}. Use 'edges' for sparse graphs.")
    if not 0 <= dropout < 1:
        raise ValueError(f"Invalid value for `dropout`: expected a rate in [0, 1). "
                         f"Received: dropout={dropout!r}. Use e.g. 0.5.")
    for argument, value in (("num_features", num_features), ("hidden_units", hidden_units)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"Invalid value for `{argument}`: expected an integer >= 1. "
                             f"Received: {argument}={value!r}.")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"Invalid value for `num_classes`: expected an integer >= 2. "
                         f"Received: num_classes={num_classes!r}.")
    features = keras.Input((num_features,), sparse=sparse_features, name="features")
    if graph == "edges":
        laplacian = (keras.Input((), dtype="int32", name="senders"),
                     keras.Input((), dtype="int32", name="receivers"),
                     keras.Input((), name="weights"))
        graph_inputs = list(laplacian)
    else:
        laplacian = keras.Input((None,), name="laplacian")
        graph_inputs = [laplacian]
    input_dropout = dropout if input_dropout is None else input_dropout
    if sparse_features:
        h = SparseInputProjection(hidden_units, input_dropout, name="input_projection")(features)
    else:
        x = keras.layers.Dropout(input_dropout, name="input_dropout")(features) if input_dropout else features
        h = keras.layers.Dense(hidden_units, name="input_projection")(x)
    h = keras.layers.Dropout(dropout, name="dropout1")(h)
    velocity = keras.layers.Dense(hidden_units, activation="relu", name="residual")(h)
    h = keras.layers.Add(name="residual_step")([h, velocity])
    h = keras.layers.Dropout(dropout, name="dropout2")(h)
    scores = keras.layers.Dense(num_classes, name="head")(h)
    probabilities = keras.layers.Softmax(dtype="float32", name="base_probabilities")(scores)
    outputs = GraphDiffusion(num_steps, sigma2, trainable_sigma2=trainable_sigma2, scheme=scheme,
                             lambda_max=lambda_max, dtype="float32",
                             name="graph_diffusion")(probabilities, laplacian)
    return keras.Model([features] + graph_inputs, outputs, name=name)
