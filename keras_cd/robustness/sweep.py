"""Defences trained side by side, and a sweep of attacks of growing strength.

`train_defences` trains several networks on the same data from the same
initial weights with the same batch order: the plain ResNet, the plain
ResNet trained with Gaussian noise on its inputs, and CD-ResNets (noise in
the residual stream) with several sigma. `run_sweep` attacks each one with
every `Attack` and scores it with its own inference (deterministic, or the
mean over Monte-Carlo passes), keeping which examples each attack left
correct; `certified_accuracy` gives the attack-free evidence (Cohen et al.'s
CERTIFY with input smoothing, `keras_cd.smoothing`). `summarize` turns runs
over seeds into mean ± std per (defence, attack) and a defence's figure: its
robust accuracy under the attack set, per example (an example counts only if
no attack of the set broke it), beside the minimum over the attacks'
aggregate accuracies, which is higher whenever attacks break different
examples and is no worst case.
"""

import collections
import dataclasses

import numpy as np

from keras_cd import _validation
from keras_cd.robustness.attacks import Defence, pgd, rescoring_agreement, square

KINDS = ("pgd", "square", "transfer", "apgd-ce", "apgd-dlr")


@dataclasses.dataclass(frozen=True)
class DefenceSpec:
    """A network to train and how it is scored.

    sigma: CD diffusion in every residual block (0: the plain ResNet);
    train_noise: std of Gaussian noise on the inputs during training (a
    `keras_cd.layers.DiffusionNoise` before the network, so Monte-Carlo
    scoring is input smoothing with that std); samples: Monte-Carlo passes
    when scoring (0: deterministic); max_samples: sequential scoring up to
    that many passes for examples near the boundary (`Defence`; None: fixed).
    """

    name: str
    sigma: float = 0.0
    train_noise: float = 0.0
    samples: int = 0
    max_samples: object = None


@dataclasses.dataclass(frozen=True)
class Attack:
    """One attack configuration (L-infinity, radius eps).

    kind: "pgd", "square", "transfer" (PGD on the plain network),
    "apgd-ce" or "apgd-dlr" (the toolbox's APGD, `keras_cd.robustness.apgd`);
    eot_samples: noisy passes per gradient, or per Square query
    (deterministic networks use 0); steps and restarts: of PGD and APGD;
    schedule: PGD's step sizes; queries: Square's budget.
    """

    kind: str
    eps: float
    steps: int = 10
    eot_samples: int = 1
    restarts: int = 1
    schedule: str = "constant"
    queries: int = 300

    def __post_init__(self):
        _validation.one_of("kind", self.kind, KINDS, f"Use one of {', '.join(KINDS)}.")

    @property
    def label(self):
        if self.kind == "square":
            return f"square {self.queries}q EOT{self.eot_samples}"
        if self.kind.startswith("apgd"):
            name = self.kind.upper()
            return f"{name}-{self.steps} EOT{self.eot_samples} R{self.restarts}"
        name = "transfer PGD" if self.kind == "transfer" else "PGD"
        label = f"{name}-{self.steps} EOT{self.eot_samples} R{self.restarts}"
        return label + (" cos" if self.schedule == "cosine" else "")


def default_defences(sigmas=(0.1, 0.2), samples=16, noise_sigmas=None, max_samples=None):
    """Plain; plain trained with input noise of each std in `noise_sigmas`
    (default: the largest CD sigma, the same per-step noise level), scored
    deterministically and with input smoothing ("+MC"); CD with each sigma.
    Monte-Carlo scoring: `samples` passes, up to `max_samples` near the
    boundary (see `Defence`)."""
    noise_sigmas = [max(sigmas)] if noise_sigmas is None else list(noise_sigmas)
    specs = [DefenceSpec("plain")]
    for sigma in noise_sigmas:
        specs.append(DefenceSpec(f"noise-trained {sigma:g}", train_noise=sigma))
        specs.append(
            DefenceSpec(
                f"noise-trained {sigma:g} +MC",
                train_noise=sigma,
                samples=samples,
                max_samples=max_samples,
            )
        )
    for sigma in sigmas:
        specs.append(
            DefenceSpec(f"CD {sigma:g}", sigma=sigma, samples=samples, max_samples=max_samples)
        )
    return specs


def default_attacks(eps=0.05, eot_samples=16, quick=False, apgd=None):
    """The sweep: EOT samples, steps, restarts and schedules, and the other attacks.

    Axes vary one at a time from PGD-10 with EOT 1: EOT 1, 4, 16, 64; at EOT
    = `eot_samples`, steps 10, 50, 200, 5 restarts (of PGD-10) and a cosine
    schedule (PGD-50); the gradient-free Square attack (300 queries, each
    margin over `eot_samples` passes); transfer from the plain network
    (PGD-50); and, with `apgd`, APGD-CE and APGD-DLR (100 steps, EOT =
    `eot_samples`; AutoAttack's gradient attacks for randomized defences).

    Args:
        eps: float, the L-infinity radius. Defaults to `0.05`.
        eot_samples: int, the reference EOT samples. Defaults to `16`.
        quick: bool, a tiny set for CI. Defaults to `False`.
        apgd: bool or None, include the APGD attacks (None: when the
            adversarial-robustness-toolbox is installed). Defaults to `None`.

    Returns:
        list of `Attack`.
    """
    from keras_cd.robustness.apgd import available

    apgd = available() if apgd is None else bool(apgd)
    eot = max(eot_samples, 1)
    if quick:
        attacks = [
            Attack("pgd", eps, steps=2, eot_samples=2),
            Attack("square", eps, queries=5, eot_samples=2),
        ]
        if apgd:
            attacks += [Attack(k, eps, steps=2, eot_samples=2) for k in ("apgd-ce", "apgd-dlr")]
        return attacks
    attacks = [Attack("pgd", eps, steps=10, eot_samples=n) for n in (1, 4, 16, 64)]
    attacks += [Attack("pgd", eps, steps=s, eot_samples=eot) for s in (50, 200)]
    attacks += [
        Attack("pgd", eps, steps=10, eot_samples=eot, restarts=5),
        Attack("pgd", eps, steps=50, eot_samples=eot, schedule="cosine"),
        Attack("square", eps, queries=300, eot_samples=eot),
        Attack("transfer", eps, steps=50, eot_samples=0),
    ]
    if apgd:
        attacks += [Attack(k, eps, steps=100, eot_samples=eot) for k in ("apgd-ce", "apgd-dlr")]
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
    source = plain if attack.kind == "transfer" else defence
    eot = attack.eot_samples if source.samples else 0  # a deterministic net has no noise
    if attack.kind == "square":
        return square(defence, x, y, attack.eps, attack.queries, query_samples=eot, seed=seed)
    if attack.kind.startswith("apgd"):
        from keras_cd.robustness.apgd import apgd

        loss = attack.kind.split("-")[1]
        return apgd(defence, x, y, attack.eps, loss, attack.steps, eot, attack.restarts, seed)
    return pgd(source, x, y, attack.eps, attack.steps, eot, attack.restarts, attack.schedule, seed)


def _record(defence_name, attack_label, correct, agreement, seconds):
    return {
        "defence": defence_name,
        "attack": attack_label,
        "accuracy": float(np.mean(correct)),
        "correct": "".join("1" if c else "0" for c in correct),
        "agreement": agreement,
        "seconds": seconds,
    }


def run_sweep(specs, models, attacks, x, y, seed=0, callback=None):
    """Robust accuracy of every defence under every attack; a list of records.

    Each record (JSON-serializable): defence, attack (label; "clean" for
    the unattacked inputs), accuracy (in [0, 1]), correct (one "1" or "0"
    per example: the defence's scoring got it right), agreement (the share
    of examples on which a second scoring with fresh noise gave the same
    verdict, `rescoring_agreement`) and seconds. Deterministic defences are
    attacked once per distinct attack (EOT changes nothing for them).
    `callback(record)` after each.
    """
    import time

    plain = Defence(models[specs[0].name], 0)
    records = []
    for spec in specs:
        defence = Defence(models[spec.name], spec.samples, max_samples=spec.max_samples)
        start = time.perf_counter()
        correct, agreement = rescoring_agreement(defence, x, y)
        records.append(_record(spec.name, "clean", correct, agreement, time.perf_counter() - start))
        done = {}
        for attack in attacks:
            start = time.perf_counter()
            key = attack if spec.samples else dataclasses.replace(attack, eot_samples=0)
            if key not in done:
                adversarial = _adversarial(attack, defence, plain, x, y, seed)
                done[key] = rescoring_agreement(defence, adversarial, y)
            record = _record(spec.name, attack.label, *done[key], time.perf_counter() - start)
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


Summary = collections.namedtuple("Summary", ["cells", "robust", "minimum", "agreement"])


def _spread(values):
    return float(np.mean(values)), float(np.std(values)), len(values)


def summarize(records):
    """A sweep's figures over seeds; records (of `run_sweep`) carry a `seed` key.

    Args:
        records: list of dicts with defence, attack, accuracy, seed and, for
            `robust` and `agreement`, correct and agreement.

    Returns:
        `Summary(cells, robust, minimum, agreement)`:
        cells: {(defence, attack): (mean, std, runs)} of the accuracy;
        robust: {defence: (mean, std, runs)}, robust accuracy under the
            attack set, per example: per seed, the share of examples right
            clean and under every attack (the worst case over the set);
        minimum: {defence: (mean, std, runs)}, per seed the minimum over
            the attacks of their aggregate accuracies: an upper bound of
            `robust`, not a worst case (two attacks breaking different
            examples both leave it high);
        agreement: {defence: (pooled, lowest)}, the share of (example,
            attack) verdicts a second scoring repeated, over all records,
            and the lowest of a single record.

    Raises:
        ValueError: when the correct strings of one defence and seed differ
            in length (they must score the same examples).
    """
    table = {}
    for record in records:
        key = (record["defence"], record["attack"])
        table.setdefault(key, []).append(record["accuracy"])
    cells = {key: _spread(v) for key, v in table.items()}
    robust, minimum, agreement = {}, {}, {}
    for defence in dict.fromkeys(r["defence"] for r in records):
        own = [r for r in records if r["defence"] == defence]
        accuracies, verdicts = {}, {}
        for record in own:
            if record["attack"] != "clean":
                accuracies.setdefault(record["seed"], []).append(record["accuracy"])
            if "correct" in record:
                verdicts.setdefault(record["seed"], []).append(record["correct"])
        if accuracies:
            minimum[defence] = _spread([min(v) for v in accuracies.values()])
        if verdicts:
            shares = []
            for seed, strings in verdicts.items():
                if len({len(s) for s in strings}) != 1:
                    raise ValueError(
                        f"Invalid value for `records`: expected one length of `correct` per "
                        f"defence and seed (the same examples). Received: lengths "
                        f"{sorted({len(s) for s in strings})} for {defence!r}, seed {seed}. "
                        "Summarize runs over the same test examples."
                    )
                right = np.array([[c == "1" for c in s] for s in strings])
                shares.append(float(np.mean(right.all(axis=0))))
            robust[defence] = _spread(shares)
        agreements = [r["agreement"] for r in own if "agreement" in r]
        if agreements:
            agreement[defence] = (float(np.mean(agreements)), float(np.min(agreements)))
    return Summary(cells, robust, minimum, agreement)
