"""Robustness evidence that survives adaptive attacks.

- `Defence`: a model as the attacker and the scorer see it (deterministic,
  or the mean over Monte-Carlo passes of its own noise);
- attacks: `pgd` (EOT samples, restarts, step-size schedules), `square`
  (gradient-free, score-based, with `square_fraction`, its schedule),
  transfer (PGD on another network), and `keras_cd.robustness.apgd.apgd`
  (APGD-CE / APGD-DLR of the adversarial-robustness-toolbox, the optional
  `attacks` extra);
- `rescoring_agreement`: how repeatable a stochastic defence's verdicts are;
- `train_defences`, `run_sweep`, `certified_accuracy`, `summarize`: the
  plain, noise-trained and CD networks side by side under attacks of growing
  strength, robust accuracy per example under the whole attack set
  (`benchmarks/robustness.py`).

Every Keras backend (TensorFlow, JAX, PyTorch): `keras.ops`, with the input
gradients from `keras_cd._backend`.
"""

from keras_cd.robustness.attacks import (
    Defence,
    check_clip,
    pgd,
    rescoring_agreement,
    robust_accuracy,
    square,
    square_fraction,
)
from keras_cd.robustness.sweep import (
    Attack,
    DefenceSpec,
    Summary,
    certified_accuracy,
    default_attacks,
    default_defences,
    run_sweep,
    summarize,
    train_defences,
)

__all__ = [
    "Attack",
    "Defence",
    "DefenceSpec",
    "Summary",
    "check_clip",
    "certified_accuracy",
    "default_attacks",
    "default_defences",
    "pgd",
    "rescoring_agreement",
    "robust_accuracy",
    "run_sweep",
    "square",
    "square_fraction",
    "summarize",
    "train_defences",
]
