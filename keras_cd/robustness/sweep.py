"""Defences trained side by side, and a sweep of attacks of growing strength.

`train_defences` trains several networks on the same data from the same
initial weights with the same batch order: the plain ResNet, the plain
ResNet trained with Gaussian noise on its inputs, and CD-ResNets (noise in
the residual stream) with several sigma. `run_sweep` attacks each one with
every `Attack` and scores it with its own inference (deterministic, or the
mean over `samples` Monte-Carlo passes); `certified_accuracy` gives the
attack-free evidence (Cohen et al.'s CERTIFY with input smoothing,
`keras_cd.smoothing`). `summarize` turns runs over seeds into mean ± std per
(defence, attack) and the minimum over attacks, a defence's figure.
"""

import dataclasses

import numpy as np

from keras_cd import _validation
from keras_cd.robustness.attacks import Defence, pgd, robust_accuracy, square


@dataclasses.dataclass(frozen=True)
class DefenceSpec:
    """A network to train and how it is scored.

    sigma: CD diffusion in every residual block (0: the plain ResNet);
    train_noise: std of Gaussian noise on the inputs during training (a
    `keras_cd.layers.DiffusionNoise` before the network, so Monte-Carlo
    scoring is input smoothing with that std); samples: Monte-Carlo passes
    when scoring (0: deterministic).
    """

    name: str
    sigma: float = 0.0
    train_noise: float = 0.0
    samples: int = 0


@dataclasses.dataclass(frozen=True)
class Attack:
    """One attack configuration (L-infinity, radius eps)."""

    kind: str  # "pgd", "square" or "transfer" (PGD on the plain network)
    eps: float
    steps: int = 10
    eot_samples: int = 1  # PGD's noisy passes per gradient (deterministic nets use 0)
    restarts: int = 1
    schedule: str = "constant"
    queries: int = 300

    @property
    def label(self):
        if self.kind == "square":
            return f"square {self.queries}q"
        name = "transfer PGD" if self.kind == "transfer" else "PGD"
        label = f"{name}-{self.steps} EOT{self.eot_samples} R{self.restarts}"
        return label + (" cos" if self.schedule == "cosine" else "")


def default_defences(sigmas=(0.1, 0.2), samples=16, noise_sigmas=None):
    """Plain; plain trained with input noise of each std in `noise_sigmas`
    (default: the largest CD sigma, the same per-step noise level), scored
    deterministically and with input smoothing ("+MC"); CD with each sigma."""
    noise_sigmas = [max(sigmas)] if noise_sigmas is None else list(noise_sigmas)
    specs = [DefenceSpec("plain")]
    for sigma in noise_sigmas:
        specs.append(DefenceSpec(f"noise-trained {sigma:g}", train_noise=sigma))
        specs.append(
            DefenceSpec(f"noise-trained {sigma:g} +MC", train_noise=sigma, samples=samples)
        )
    for sigma in sigmas:
        specs.append(DefenceSpec(f"CD {sigma:g}", sigma=sigma, samples=samples))
    return specs


def default_attacks(eps=0.05, scoring_samples=16, quick=False):
    """The sweep: EOT samples, steps, restarts and schedules, and the gradient-free checks.

    Axes vary one at a time from PGD-10 with EOT 1: EOT 1, 4, 16, 64 (at
    least as many as the scoring's `scoring_samples`); at EOT =
    scoring_samples, steps 10, 50, 200, 5 restarts (of PGD-10) and a cosine
    schedule (PGD-50); the Square attack (300 queries, scored the defence's
    way); transfer from the plain network (PGD-50).
    """
    if quick:
        return [Attack("pgd", eps, steps=2, eot_samples=2), Attack("square", eps, queries=5)]
    eot = max(scoring_samples, 1)
    attacks = [Attack("pgd", eps, steps=10, eot_samples=n) for n in (1, 4, 16, 64)]
    attacks += [Attack("pgd", eps, steps=s, eot_samples=eot) for s in (50, 200)]
    attacks += [
        Attack("pgd", eps, steps=10, eot_samples=eot, restarts=5),
        Attack("pgd", eps, steps=50, eot_samples=eot, schedule="cosine"),
        Attack("square", eps, queries=300),
        Attack("transfer", eps, steps=50, eot_samples=0),
    ]
    return list(dict.fromkeys(attacks))


def build_network(spec, depth, seed):
    """The Keras model of `spec`: cd_resnet, behind input noise when trained with it."""
    import keras

    from keras_cd.layers import DiffusionNoise
    from keras_cd.models import cd_resnet

    network = cd_resnet(depth=depth, sigma=spec.sigma, input_shape=(8, 8, 1), seed=seed)
    if not spec.train_noise:
        return network
    inputs = keras.Input((8, 8, 1))
    noisy = DiffusionNoise(spec.train_noise, seed=seed + 1, name="input_noise")(inputs)
    return keras.Model(inputs, network(noisy), name=f"noise_trained_{network.name}")


def train_defences(specs, x, y, depth=14, epochs=30, learning_rate=2e-3, seed=0, verbose=0):
    """Trains every spec from the same initial weights and batch order; {name: model}.

    Networks that differ only in scoring (same sigma and train_noise) are
    trained once and shared.
    """
    import keras

    from keras_cd.models import cd_resnet

    epochs = _validation.positive_int("epochs", epochs, "Use e.g. 30.")
    keras.utils.set_random_seed(seed)
    initial = cd_resnet(depth=depth, sigma=0.0, input_shape=(8, 8, 1), seed=seed).get_weights()
    trained, models = {}, {}
    for index, spec in enumerate(specs):
        key = (spec.sigma, spec.train_noise)
        if key not in trained:
            model = build_network(spec, depth, seed * 1000 + 10 * index)
            model.set_weights(initial)
            keras.utils.set_random_seed(seed)  # the same batch order for every network
            model.compile(
                optimizer=keras.optimizers.Adam(learning_rate),
                loss="sparse_categorical_crossentropy",
            )
            model.fit(x, y, batch_size=64, epochs=epochs, verbose=verbose)
            trained[key] = model
        models[spec.name] = trained[key]
    return models


def _adversarial(attack, defence, plain, x, y, seed):
    if attack.kind == "square":
        return square(defence, x, y, attack.eps, attack.queries, seed=seed)
    source = plain if attack.kind == "transfer" else defence
    eot = attack.eot_samples if source.samples else 0  # a deterministic net has no noise
    return pgd(source, x, y, attack.eps, attack.steps, eot, attack.restarts, attack.schedule, seed)


def run_sweep(specs, models, attacks, x, y, seed=0, callback=None):
    """Robust accuracy of every defence under every attack; a list of records.

    Each record: defence, attack (label), accuracy (in [0, 1]) and seconds.
    Deterministic defences are attacked once per distinct attack (EOT
    changes nothing for them). `callback(record)` after each.
    """
    import time

    plain = Defence(models[specs[0].name], 0)
    records = []
    for spec in specs:
        defence = Defence(models[spec.name], spec.samples)
        records.append(
            {"defence": spec.name, "attack": "clean", "accuracy": robust_accuracy(defence, y, x)}
        )
        done = {}
        for attack in attacks:
            start = time.perf_counter()
            key = (
                attack
                if spec.samples or attack.kind == "square"
                else (dataclasses.replace(attack, eot_samples=0))
            )
            if key not in done:
                adversarial = _adversarial(attack, defence, plain, x, y, seed)
                done[key] = robust_accuracy(defence, y, adversarial)
            record = {
                "defence": spec.name,
                "attack": attack.label,
                "accuracy": done[key],
                "seconds": time.perf_counter() - start,
            }
            records.append(record)
            if callback is not None:
                callback(record)
    return records


def certified_accuracy(model, x, y, sigma, radii, n0=None, n=1000, alpha=0.001, seed=0):
    """Certified accuracy of the input-smoothed `model` (Cohen et al.'s CERTIFY)
    at each L2 radius: the share of examples predicted right with a
    certified radius >= r (abstentions count as wrong). `n0` selection
    samples (default min(100, n)), `n` estimation samples."""
    from keras_cd.smoothing import SmoothedClassifier

    n0 = min(100, n) if n0 is None else n0
    smoothed = SmoothedClassifier(model, sigma, num_classes=int(np.max(y)) + 1, seed=seed)
    predictions, radius = smoothed.certify(x, n0, n, alpha)
    right = np.asarray(predictions) == np.asarray(y)
    return {float(r): float(np.mean(right & (np.asarray(radius) >= r))) for r in radii}


def summarize(records):
    """Mean ± std over seeds per (defence, attack), and each defence's minimum
    over the attacks (its figure). Records carry a `seed` key."""
    table = {}
    for record in records:
        key = (record["defence"], record["attack"])
        table.setdefault(key, []).append(record["accuracy"])
    cells = {key: (float(np.mean(v)), float(np.std(v)), len(v)) for key, v in table.items()}
    worst = {}
    for defence in dict.fromkeys(r["defence"] for r in records):
        per_seed = {}
        for record in records:
            if record["defence"] == defence and record["attack"] != "clean":
                per_seed.setdefault(record["seed"], []).append(record["accuracy"])
        minima = [min(v) for v in per_seed.values()]
        worst[defence] = (float(np.mean(minima)), float(np.std(minima)), len(minima))
    return cells, worst
