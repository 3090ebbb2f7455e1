"""Robustness evidence that survives adaptive attacks.

Wang, Bao & Shi (2024) argue that diffusion in the residual stream (a CD
network, `keras_cd.models.cd_resnet`) makes a classifier more robust, its
prediction being the mean over the noise (Feynman-Kac). A stochastic
prediction is easy to over-credit: attacks with noisy gradients look weak.
This package attacks and scores such networks the way they predict, beside
the plain and noise-trained controls, and adds the attack-free evidence of
certified accuracy. Every Keras backend (TensorFlow, JAX, PyTorch):
`keras.ops`, with the input gradients from `keras_cd._backend`.

- [`Defense`][keras_cd.robustness.Defense]: a model as the attacker and
  the scorer see it (deterministic, or the mean over Monte-Carlo passes of
  its own noise);
- attacks: [`pgd`][keras_cd.robustness.pgd] (EOT samples, restarts,
  step-size schedules), [`square`][keras_cd.robustness.square]
  (gradient-free, score-based, with
  [`square_fraction`][keras_cd.robustness.square_fraction], its schedule),
  transfer (PGD on another network), and `keras_cd.robustness.apgd.apgd`
  (APGD-CE / APGD-DLR of the adversarial-robustness-toolbox, the optional
  `attacks` extra); [`check_clip`][keras_cd.robustness.check_clip] and
  [`robust_accuracy`][keras_cd.robustness.robust_accuracy];
- [`rescoring_agreement`][keras_cd.robustness.rescoring_agreement]: how
  repeatable a stochastic defense's verdicts are;
- the sweep: [`DefenseSpec`][keras_cd.robustness.DefenseSpec],
  [`default_defenses`][keras_cd.robustness.default_defenses],
  [`train_defenses`][keras_cd.robustness.train_defenses],
  [`Attack`][keras_cd.robustness.Attack],
  [`default_attacks`][keras_cd.robustness.default_attacks],
  [`run_sweep`][keras_cd.robustness.run_sweep],
  [`certified_accuracy`][keras_cd.robustness.certified_accuracy],
  [`summarize`][keras_cd.robustness.summarize] and its
  [`Summary`][keras_cd.robustness.Summary]: the plain, noise-trained and
  CD networks side by side under attacks of growing strength, robust
  accuracy per example under the whole attack set
  (`benchmarks/robustness.py`).

The names spelled "defence" (`Defence`, `DefenceSpec`, `default_defences`,
`train_defences`, the `defence=` keyword) are deprecated aliases of the
ones above, removed in keras_cd 0.3.

Example:
>>> import numpy as np, keras, keras_cd
>>> model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
...                           keras.layers.Dense(2, activation="softmax")])
>>> model.layers[-1].set_weights([np.array([[1.0, -1.0]] * 4), np.array([-2.0, 2.0])])
>>> defense = keras_cd.robustness.Defense(model)  # class 0 iff the mean pixel > 0.5
>>> x, y = np.full((1, 2, 2, 1), 0.6, "float32"), np.array([0])
>>> adversarial = keras_cd.robustness.pgd(defense, x, y, eps=0.2, steps=3)
>>> keras_cd.robustness.robust_accuracy(defense, y, adversarial)
0.0
"""

# First: a missing backend package gets an error that says how to fix it.
from keras_cd import _keras  # noqa: F401

# isort: split
from keras_cd._deprecation import deprecated_aliases
from keras_cd.robustness.attacks import (
    Defense,
    check_clip,
    pgd,
    rescoring_agreement,
    robust_accuracy,
    square,
    square_fraction,
)
from keras_cd.robustness.sweep import (
    Attack,
    DefenseSpec,
    Summary,
    certified_accuracy,
    default_attacks,
    default_defenses,
    run_sweep,
    summarize,
    train_defenses,
)

__all__ = [
    "Attack",
    "Defense",
    "DefenseSpec",
    "Summary",
    "check_clip",
    "certified_accuracy",
    "default_attacks",
    "default_defenses",
    "pgd",
    "rescoring_agreement",
    "robust_accuracy",
    "run_sweep",
    "square",
    "square_fraction",
    "summarize",
    "train_defenses",
]

# The deprecated spellings, removed in keras_cd 0.3.
__getattr__ = deprecated_aliases(
    __name__,
    {
        "Defence": "Defense",
        "DefenceSpec": "DefenseSpec",
        "default_defences": "default_defenses",
        "train_defences": "train_defenses",
    },
    globals(),
)
