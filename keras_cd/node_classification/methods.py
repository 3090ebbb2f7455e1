"""The methods of the node-classification harness: COIN and the baselines it is compared with.

COIN (Wang, Bao & Shi, 2024) is graph diffusion of a base classifier's
probabilities, the diffusion half of the convection-diffusion equation
discretized on the graph Laplacian; APPNP and SGC are the propagation
baselines of the paper's table, written here as other choices of the same
operator P. Every method is a model on fixed, precomputed propagation
(`keras_cd.graph`):

- `"coin"`: COIN, u_T = P softmax(f(X)) with P = (I - sigma2 L)^K (explicit)
  or (I + sigma2 L)^-K (implicit) on the paper's Laplacian
  (`normalization="coin"`) and f the residual base network
  (`keras_cd.models.coin_classifier`); num_steps = 0 is the base network alone.
- `"appnp"`: APPNP (Gasteiger et al., 2019), softmax(P MLP(X)) with P the
  K-step personalized-PageRank propagation, u <- (1 - alpha) A_hat u + alpha u_0
  (`teleport` alpha, L = I - A_hat, sigma2 = 1).
- `"sgc"`: SGC (Wu et al., 2019), softmax((P X) W + b) with P = A_hat^K, i.e.
  K explicit steps with sigma2 = 1 on L = I - A_hat; other sigma2 give DGC
  (Wang et al., 2021: K steps of size T / K).

During training a method reads only the rows of P at the training and
validation nodes (`keras_cd.graph.diffusion_rows`, once per split); the final
evaluation applies P to the whole graph exactly (`keras_cd.graph.diffuse`).
"""

import numpy as np

from keras_cd import _backend

METHODS = {
    "coin": {
        "num_steps": 20,
        "sigma2": 0.35,
        "scheme": "explicit",
        "trainable_sigma2": False,
        "hidden_units": 64,
        "dropout": 0.5,
        "input_dropout": None,
        "weight_decay": 5e-4,
        "readout_weight_decay": None,
        "learning_rate": 0.01,
    },
    "appnp": {
        "num_steps": 10,
        "teleport": 0.1,
        "hidden_units": 64,
        "dropout": 0.5,
        "input_dropout": None,
        "weight_decay": 5e-3,
        "readout_weight_decay": 0.0,
        "learning_rate": 0.01,
    },
    "sgc": {
        "num_steps": 2,
        "sigma2": 1.0,
        "dropout": 0.0,
        "weight_decay": 5e-5,
        "learning_rate": 0.2,
    },
}
"""dict of method name -> its default settings (`NodeClassificationTrainer(**settings)` overrides).

`"coin"`: COIN (the arguments of `keras_cd.models.coin_classifier`);
`"appnp"`: APPNP, `teleport` its alpha; `"sgc"`: SGC. `learning_rate` is
Adam's; `weight_decay` is coupled L2, as PyTorch Adam's.
"""


def settings_for(method, settings):
    """The method's defaults updated with `settings`; unknown names are refused.

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
        METHODS, method, settings, "Use 'coin', or 'appnp' or 'sgc' for a baseline."
    )


def _l2(decay):
    """Coupled L2 weight decay (the gradient gains decay * w), as PyTorch Adam's."""
    import keras

    return keras.regularizers.L2(decay / 2) if decay else None


class Method:
    """A method on one graph: its model, its inputs for a split, its exact predictions.

    The base class of `Coin`, `Appnp` and `Sgc`: it holds the graph's
    Laplacian (`normalization`) and the features as the backend's sparse
    tensor, and applies the propagation P exactly for the final predictions.

    Args:
        data: a `keras_cd.datasets.GraphData`.
        settings: dict, the method's settings (`settings_for`).
    """

    normalization = "symmetric"

    def __init__(self, data, settings):
        from keras_cd import graph

        self.data = data
        self.settings = settings
        self.laplacian = graph.laplacian(data.adjacency, self.normalization, format="scipy")
        self.features = _backend.sparse_tensor(data.features)  # dense on PyTorch

    @property
    def propagation(self):
        """Keyword arguments of `keras_cd.graph.diffuse` for this method's P."""
        s = self.settings
        return {
            "num_steps": s["num_steps"],
            "sigma2": s.get("sigma2", 1.0),
            "scheme": s.get("scheme", "explicit"),
            "teleport": s.get("teleport", 0.0),
        }

    def rows(self, nodes):
        """Dense float32 P[nodes]."""
        from keras_cd import graph

        return graph.diffusion_rows(self.laplacian, nodes, **self.propagation).toarray()

    def split_inputs(self, train, validation):
        """`(inputs, index)` for the training and the validation nodes.

        The model maps `inputs` to probabilities, read at `index` (None: all
        of them).

        Args:
            train: (n,) int array, the training nodes.
            validation: (m,) int array, the validation nodes.

        Returns:
            `((inputs, index), (inputs, index))`, training then validation.
        """
        matrix = self.rows(np.concatenate([train, validation]))
        return (
            ([self.features, matrix[: len(train)]], None),
            ([self.features, matrix[len(train) :]], None),
        )

    def predict(self, model):
        """(N, C) probabilities in inference mode, P applied exactly on the whole graph."""
        from keras_cd import graph

        base = model.get_layer("base")
        values = _backend.numpy(self.base_outputs(model, base)).astype(np.float64)
        return graph.diffuse(self.laplacian, values, **self.propagation)


class Coin(Method):
    """COIN: u_T = P softmax(f(X)), P = (I - sigma2 L)^K or (I + sigma2 L)^-K.

    On the paper's Laplacian (`normalization="coin"`), f the residual base
    network of `keras_cd.models.coin_classifier`. With `trainable_sigma2`,
    the model diffuses through `keras_cd.GraphDiffusion` on the whole
    graph's edge list instead of precomputed rows.

    Args:
        data: a `keras_cd.datasets.GraphData`.
        settings: dict, COIN's settings (`METHODS["coin"]` updated).
    """

    normalization = "coin"

    def __init__(self, data, settings):
        super().__init__(data, settings)
        from keras_cd.graph import largest_eigenvalue

        s = settings
        self.lambda_max = None
        if s["scheme"] == "explicit" and s["num_steps"]:  # for the stability check
            self.lambda_max = largest_eigenvalue(self.laplacian)
        if s["trainable_sigma2"]:  # sigma2 changes: the general layer on the edge list
            from keras import ops

            from keras_cd import graph

            edges = graph.laplacian(data.adjacency, "coin", format="edges")
            self.edges = [ops.convert_to_tensor(a) for a in edges]

    def build(self, seed):
        """COIN's Keras model, its weights seeded by `seed`."""
        from keras_cd.models import coin_classifier

        s = dict(self.settings)
        del s["learning_rate"]
        return coin_classifier(
            self.data.features.shape[1],
            self.data.num_classes,
            graph="edges" if s["trainable_sigma2"] else "rows",
            lambda_max=self.lambda_max,
            sparse_features=_backend.supports_sparse(),
            seed=seed,
            **s,
        )

    def split_inputs(self, train, validation):
        """`(inputs, index)` for the training and validation nodes (see `Method`)."""
        if not self.settings["trainable_sigma2"]:
            return super().split_inputs(train, validation)
        inputs = [self.features] + self.edges
        return (inputs, train), (inputs, validation)

    def base_outputs(self, model, base):
        """softmax(f(X)) of every node, in inference mode."""
        import keras

        return keras.ops.softmax(base(self.features, training=False))

    def predict(self, model):
        """(N, C) probabilities in inference mode, P applied on the whole graph."""
        if self.settings["trainable_sigma2"]:
            return _backend.numpy(model([self.features] + self.edges, training=False))
        return super().predict(model)


class Appnp(Method):
    """APPNP (Gasteiger et al., 2019): softmax(P MLP(X)), P personalized PageRank.

    K steps of u <- (1 - alpha) A_hat u + alpha u_0, with A_hat = I - L the
    normalized adjacency and alpha the `teleport` setting.

    Reference:
        - [Gasteiger et al., 2019](https://arxiv.org/abs/1810.05997)

    Args:
        data: a `keras_cd.datasets.GraphData`.
        settings: dict, APPNP's settings (`METHODS["appnp"]` updated).
    """

    def build(self, seed):
        """APPNP's Keras model, its weights seeded by `seed`."""
        import keras

        from keras_cd.layers import PrecomputedDiffusion
        from keras_cd.models.coin import ResidualBaseClassifier

        s = self.settings
        features = keras.Input(
            (self.data.features.shape[1],), sparse=_backend.supports_sparse(), name="features"
        )
        rows = keras.Input((None,), name="diffusion_rows")
        dropout = s["dropout"]
        base = ResidualBaseClassifier(
            self.data.num_classes,
            s["hidden_units"],
            dropout=dropout,
            input_dropout=dropout if s["input_dropout"] is None else s["input_dropout"],
            seed=seed,
            kernel_regularizer=_l2(s["weight_decay"]),
            readout_regularizer=_l2(s["readout_weight_decay"]),
            residual=False,
            name="base",
        )
        scores = PrecomputedDiffusion(name="propagation")(base(features), rows)
        probabilities = keras.layers.Softmax(dtype="float32", name="probabilities")(scores)
        return keras.Model([features, rows], probabilities, name="appnp")

    def base_outputs(self, model, base):
        """MLP(X) of every node (scores before the softmax), in inference mode."""
        return base(self.features, training=False)

    def predict(self, model):
        """(N, C) probabilities: softmax of P MLP(X), P applied on the whole graph."""
        scores = super().predict(model)
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)


class Sgc(Method):
    """SGC (Wu et al., 2019): softmax((P X) W + b) with P = A_hat^K.

    K explicit steps with sigma2 = 1 on L = I - A_hat; other sigma2 give DGC
    (Wang et al., 2021). P X is computed once per graph: the model is linear
    in it.

    Reference:
        - [Wu et al., 2019](https://arxiv.org/abs/1902.07153)

    Args:
        data: a `keras_cd.datasets.GraphData`.
        settings: dict, SGC's settings (`METHODS["sgc"]` updated).
    """

    def __init__(self, data, settings):
        super().__init__(data, settings)
        from keras_cd import graph

        # P X once per graph: the model is linear in it.
        self.propagated = graph.diffuse(self.laplacian, data.features, **self.propagation).astype(
            np.float32
        )

    def build(self, seed):
        """SGC's Keras model (dropout, then a linear layer), seeded by `seed`."""
        import keras

        s = self.settings
        inputs = keras.Input((self.propagated.shape[1],), name="propagated_features")
        values = keras.layers.Dropout(s["dropout"], seed=seed)(inputs) if s["dropout"] else inputs
        scores = keras.layers.Dense(
            self.data.num_classes,
            kernel_initializer=keras.initializers.GlorotUniform(seed),
            kernel_regularizer=_l2(s["weight_decay"]),
            name="linear",
        )(values)
        probabilities = keras.layers.Softmax(dtype="float32", name="probabilities")(scores)
        return keras.Model(inputs, probabilities, name="sgc")

    def split_inputs(self, train, validation):
        """The rows of P X at the training and at the validation nodes."""
        return ([self.propagated[train]], None), ([self.propagated[validation]], None)

    def predict(self, model):
        """(N, C) probabilities of every node, in inference mode."""
        return _backend.numpy(model(self.propagated, training=False)).astype(np.float64)


CLASSES = {"coin": Coin, "appnp": Appnp, "sgc": Sgc}
