"""Robustness evidence that survives adaptive attacks.

- `Defence`: a model as the attacker and the scorer see it (deterministic,
  or the mean over Monte-Carlo passes of its own noise);
- attacks: `pgd` (EOT samples, restarts, step-size schedules), `square`
  (gradient-free, score-based), transfer (PGD on another network);
- `train_defences`, `run_sweep`, `certified_accuracy`, `summarize`: the
  plain, noise-trained and CD networks side by side under attacks of growing
  strength (`benchmarks/robustness.py`).

TensorFlow backend (gradients with respect to the inputs).
"""

from keras_cd.robustness.attacks import Defence, pgd, robust_accuracy, square
from keras_cd.robustness.sweep import (
    Attack,
    DefenceSpec,
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
    "certified_accuracy",
    "default_attacks",
    "default_defences",
    "pgd",
    "robust_accuracy",
    "run_sweep",
    "square",
    "summarize",
    "train_defences",
]
