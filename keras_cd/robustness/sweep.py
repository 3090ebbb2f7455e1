"""Defenses trained side by side, and a sweep of attacks of growing strength.

The paper (Wang, Bao & Shi, 2024) claims that diffusion in the residual
stream (a CD network) makes a classifier more robust; this module is the
experiment that tests the claim against adaptive attacks, with the plain and
the noise-trained networks as controls.

[`train_defenses`][keras_cd.robustness.train_defenses] trains several
networks on the same data from the same initial weights with the same batch
order (one [`DefenseSpec`][keras_cd.robustness.DefenseSpec] each,
[`default_defenses`][keras_cd.robustness.default_defenses]): the plain
ResNet, the plain ResNet trained with Gaussian noise on its inputs, and
CD-ResNets (noise in the residual stream) with several sigma.
[`run_sweep`][keras_cd.robustness.run_sweep] attacks each one with every
[`Attack`][keras_cd.robustness.Attack] ([`default_attacks`][keras_cd.robustness.default_attacks])
and scores it with its own inference (deterministic, or the mean over
Monte-Carlo passes), keeping which examples each attack left correct;
[`certified_accuracy`][keras_cd.robustness.certified_accuracy] gives the
attack-free evidence (Cohen et al.'s CERTIFY with input smoothing,
`keras_cd.smoothing`). [`summarize`][keras_cd.robustness.summarize] turns
runs over seeds into mean +- std per (defense, attack) and a defense's
figure: its robust accuracy under the attack set, per example (an example
counts only if no attack of the set broke it), beside the minimum over the
attacks' aggregate accuracies, which is higher whenever attacks break
different examples and is no worst case.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_cd import _validation
from keras_cd._deprecation import deprecated_aliases
from keras_cd.robustness.attacks import Defense, pgd, rescoring_agreement, square

if TYPE_CHECKING:
    import keras
    from numpy.typing import ArrayLike

KINDS = ("pgd", "square", "transfer", "apgd-ce", "apgd-dlr")


@dataclasses.dataclass(frozen=True)
class DefenseSpec:
    """A network to train and how it is scored, one column of the sweep.

    `train_defenses` builds it as `keras_cd.models.cd_resnet(sigma=sigma)`,
    behind a `keras_cd.layers.DiffusionNoise(train_noise)` on the inputs
    when `train_noise` > 0; `run_sweep` scores it as
    `Defense(model, samples, max_samples=max_samples)`.

    Attributes:
        name: str, the defense's name in the records (unique in a sweep).
        sigma: float >= 0, CD diffusion in every residual block (0: the
            plain ResNet). Defaults to `0.0`.
        train_noise: float >= 0, the std of Gaussian noise on the inputs
            during training (Monte-Carlo scoring is then input smoothing
            with that std). Defaults to `0.0`.
        samples: int >= 0, Monte-Carlo passes when scoring (0:
            deterministic). Defaults to `0`.
        max_samples: int or None, sequential scoring up to that many passes
            for examples near the decision boundary (see `Defense`; None: a
            fixed `samples`). Defaults to `None`.

    Example:
    >>> import keras_cd
    >>> spec = keras_cd.robustness.DefenseSpec("CD 0.1", sigma=0.1, samples=16)
    >>> spec.train_noise, spec.max_samples
    (0.0, None)
    """

    name: str
    sigma: float = 0.0
    train_noise: float = 0.0
    samples: int = 0
    max_samples: int | None = None


@dataclasses.dataclass(frozen=True)
class Attack:
    """One attack configuration (L-infinity, radius eps), one row of the sweep.

    Attributes:
        kind: str, `"pgd"`, `"square"`, `"transfer"` (PGD crafted on the
            plain network), `"apgd-ce"` or `"apgd-dlr"` (the toolbox's
            APGD, `keras_cd.robustness.apgd`).
        eps: float >= 0, the L-infinity radius.
        steps: int >= 1, gradient steps of PGD and APGD. Defaults to `10`.
        eot_samples: int >= 0, noisy passes per gradient, or per Square
            query (deterministic networks are attacked with 0). Defaults to
            `1`.
        restarts: int >= 1, random starts of PGD and APGD. Defaults to `1`.
        schedule: str, PGD's step sizes, `"constant"` or `"cosine"`.
            Defaults to `"constant"`.
        queries: int >= 1, Square's budget. Defaults to `300`.

    Raises:
        ValueError: for an unknown `kind`.

    Example:
    >>> import keras_cd
    >>> keras_cd.robustness.Attack("pgd", 0.05, steps=50, eot_samples=16).label
    'PGD-50 EOT16 R1'
    """

    kind: str
    eps: float
    steps: int = 10
    eot_samples: int = 1
    restarts: int = 1
    schedule: str = "constant"
    queries: int = 300

    def __post_init__(self) -> None:
        _validation.one_of("kind", self.kind, KINDS, f"Use one of {', '.join(KINDS)}.")

    @property
    def label(self) -> str:
        """str, the attack's name in the records and tables, e.g. `"PGD-10 EOT16 R1"`."""
        if self.kind == "square":
            return f"square {self.queries}q EOT{self.eot_samples}"
        if self.kind.startswith("apgd"):
            name = self.kind.upper()
            return f"{name}-{self.steps} EOT{self.eot_samples} R{self.restarts}"
        name = "transfer PGD" if self.kind == "transfer" else "PGD"
        label = f"{name}-{self.steps} EOT{self.eot_samples} R{self.restarts}"
        return label + (" cos" if self.schedule == "cosine" else "")


def default_defenses(
    sigmas: Sequence[float] = (0.1, 0.2),
    samples: int = 16,
    noise_sigmas: Sequence[float] | None = None,
    max_samples: int | None = None,
) -> list[DefenseSpec]:
    """The defenses of the sweep: the plain, noise-trained and CD networks.

    In order: the plain network; for each std in `noise_sigmas`, the plain
    network trained with input noise of that std, scored deterministically
    and with input smoothing (`"+MC"`); the CD network with each sigma in
    `sigmas`. Monte-Carlo scoring: `samples` passes, up to `max_samples`
    near the decision boundary (see `Defense`).

    Args:
        sigmas: sequence of float > 0, the CD networks' diffusion. Defaults
            to `(0.1, 0.2)`.
        samples: int >= 1, Monte-Carlo passes of the stochastic defenses'
            scoring. Defaults to `16`.
        noise_sigmas: sequence of float > 0 or None, the input-noise stds
            of the noise-trained networks. Defaults to `None`, the largest
            of `sigmas` (the same per-step noise level).
        max_samples: int or None, sequential scoring's largest number of
            passes (None: a fixed `samples`). Defaults to `None`.

    Returns:
        list of `DefenseSpec`.

    Example:
    >>> import keras_cd
    >>> [spec.name for spec in keras_cd.robustness.default_defenses(sigmas=(0.1, 0.2))]
    ['plain', 'noise-trained 0.2', 'noise-trained 0.2 +MC', 'CD 0.1', 'CD 0.2']
    """
    noise_sigmas = [max(sigmas)] if noise_sigmas is None else list(noise_sigmas)
    specs = [DefenseSpec("plain")]
    for sigma in noise_sigmas:
        specs.append(DefenseSpec(f"noise-trained {sigma:g}", train_noise=sigma))
        specs.append(
            DefenseSpec(
                f"noise-trained {sigma:g} +MC",
                train_noise=sigma,
                samples=samples,
                max_samples=max_samples,
            )
        )
    for sigma in sigmas:
        specs.append(
            DefenseSpec(f"CD {sigma:g}", sigma=sigma, samples=samples, max_samples=max_samples)
        )
    return specs


def default_attacks(
    eps: float = 0.05, eot_samples: int = 16, quick: bool = False, apgd: bool | None = None
) -> list[Attack]:
    """The sweep: EOT samples, steps, restarts and schedules, and the other attacks.

    Axes vary one at a time from PGD-10 with EOT 1: EOT 1, 4, 16, 64; at EOT
    = `eot_samples`, steps 10, 50, 200, 5 restarts (of PGD-10) and a cosine
    schedule (PGD-50); the gradient-free Square attack (300 queries, each
    margin over `eot_samples` passes); transfer from the plain network
    (PGD-50); and, with `apgd`, APGD-CE and APGD-DLR (100 steps, EOT =
    `eot_samples`; AutoAttack's gradient attacks for randomized defenses).

    Args:
        eps: float, the L-infinity radius. Defaults to `0.05`.
        eot_samples: int, the reference EOT samples. Defaults to `16`.
        quick: bool, a tiny set for CI. Defaults to `False`.
        apgd: bool or None, include the APGD attacks (None: when the
            adversarial-robustness-toolbox is installed). Defaults to `None`.

    Returns:
        list of `Attack`, without duplicates.

    Example:
    >>> import keras_cd
    >>> [a.label for a in keras_cd.robustness.default_attacks(quick=True, apgd=False)]
    ['PGD-2 EOT2 R1', 'square 5q EOT2']
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
    """The Keras model of `spec`: cd_resnet, behind input noise when trained with it.

    Args:
        spec: `DefenseSpec`.
        depth: int, the ResNet's depth (see `keras_cd.models.cd_resnet`).
        seed: int, seeds the weights and the noise.

    Returns:
        A `keras.Model` from (8, 8, 1) images (scikit-learn's digits) to
        class probabilities.
    """
    import keras

    from keras_cd.layers import DiffusionNoise
    from keras_cd.models import cd_resnet

    network = cd_resnet(depth=depth, sigma=spec.sigma, input_shape=(8, 8, 1), seed=seed)
    if not spec.train_noise:
        return network
    inputs = keras.Input((8, 8, 1))
    noisy = DiffusionNoise(spec.train_noise, seed=seed + 1, name="input_noise")(inputs)
    return keras.Model(inputs, network(noisy), name=f"noise_trained_{network.name}")


def train_defenses(
    specs: Iterable[DefenseSpec],
    x: ArrayLike,
    y: ArrayLike,
    depth: int = 14,
    epochs: int = 30,
    learning_rate: float = 2e-3,
    seed: int = 0,
    verbose: int = 0,
) -> dict[str, keras.Model]:
    """Trains every spec's network from the same initial weights and batch order.

    So that the networks differ only in their diffusion and input noise,
    each starts from the weights of one plain `cd_resnet` and sees the
    batches in the same order (Adam, sparse categorical cross-entropy,
    batch size 64). Networks that differ only in scoring (same sigma and
    train_noise) are trained once and shared.

    Args:
        specs: list of `DefenseSpec`.
        x: (N, 8, 8, 1) float training images (scikit-learn's digits, as
            `keras_cd.datasets.load_digits` gives them).
        y: (N,) integer labels.
        depth: int, the ResNet's depth. Defaults to `14`.
        epochs: int >= 1. Defaults to `30`.
        learning_rate: float, Adam's. Defaults to `2e-3`.
        seed: int, seeds the initial weights, the noise and the batch
            order. Defaults to `0`.
        verbose: int, Keras' `fit` verbosity. Defaults to `0`.

    Returns:
        dict of spec name -> trained `keras.Model`.

    Raises:
        ValueError: if `epochs` is not a positive integer.

    Example:
    ```python
    x_train, x_test, y_train, y_test = keras_cd.datasets.load_digits(seed=0)
    specs = keras_cd.robustness.default_defenses(sigmas=(0.2,))
    models = keras_cd.robustness.train_defenses(specs, x_train, y_train, depth=8, epochs=15)
    ```
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


def _adversarial(attack, defense, plain, x, y, seed):
    source = plain if attack.kind == "transfer" else defense
    eot = attack.eot_samples if source.samples else 0  # a deterministic net has no noise
    if attack.kind == "square":
        return square(defense, x, y, attack.eps, attack.queries, query_samples=eot, seed=seed)
    if attack.kind.startswith("apgd"):
        from keras_cd.robustness.apgd import apgd

        loss = attack.kind.split("-")[1]
        return apgd(defense, x, y, attack.eps, loss, attack.steps, eot, attack.restarts, seed)
    return pgd(source, x, y, attack.eps, attack.steps, eot, attack.restarts, attack.schedule, seed)


def _defense_of(record):
    """The defense a record names; records written by keras_cd 0.1 say "defence"."""
    return record["defense"] if "defense" in record else record["defence"]


def _record(defense_name, attack_label, correct, agreement, seconds):
    return {
        "defense": defense_name,
        "attack": attack_label,
        "accuracy": float(np.mean(correct)),
        "correct": "".join("1" if c else "0" for c in correct),
        "agreement": agreement,
        "seconds": seconds,
    }


def run_sweep(
    specs: Sequence[DefenseSpec],
    models: Mapping[str, keras.Model],
    attacks: Sequence[Attack],
    x: ArrayLike,
    y: ArrayLike,
    seed: int = 0,
    callback: Callable[[dict], object] | None = None,
) -> list[dict]:
    """Robust accuracy of every defense under every attack; a list of records.

    Each defense is scored clean, then attacked by every attack (transfer
    attacks are crafted on the first spec's network, the plain one) and
    scored with its own inference. Deterministic defenses are attacked once
    per distinct attack (EOT changes nothing for them).

    Args:
        specs: list of `DefenseSpec`, the first the plain network.
        models: dict of spec name -> `keras.Model`, e.g. from
            `train_defenses`.
        attacks: list of `Attack`.
        x: (N, ...) test inputs in [0, 1].
        y: (N,) integer labels.
        seed: int, seeds the attacks' randomness. Defaults to `0`.
        callback: callable or None, called as `callback(record)` after each
            attacked record. Defaults to `None`.

    Returns:
        list of dicts (JSON-serializable), one per (defense, attack) and
        one `"clean"` per defense: `defense` (the spec's name), `attack`
        (its label; `"clean"` for the unattacked inputs), `accuracy` (in
        [0, 1]), `correct` (one `"1"` or `"0"` per example: the defense's
        scoring got it right), `agreement` (the share of examples on which
        a second scoring with fresh noise gave the same verdict,
        `rescoring_agreement`) and `seconds`.

    Example:
    >>> import numpy as np, keras, keras_cd
    >>> model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(2, activation="softmax")])
    >>> model.layers[-1].set_weights([np.array([[1.0, -1.0]] * 4), np.array([-2.0, 2.0])])
    >>> x, y = np.array([0.6, 0.9]).repeat(4).reshape(2, 2, 2, 1), np.array([0, 0])
    >>> records = keras_cd.robustness.run_sweep(
    ...     [keras_cd.robustness.DefenseSpec("plain")], {"plain": model},
    ...     [keras_cd.robustness.Attack("pgd", 0.2, steps=3)], x, y)
    >>> [(r["defense"], r["attack"], r["correct"]) for r in records]
    [('plain', 'clean', '11'), ('plain', 'PGD-3 EOT1 R1', '01')]
    """
    import time

    plain = Defense(models[specs[0].name], 0)
    records = []
    for spec in specs:
        defense = Defense(models[spec.name], spec.samples, max_samples=spec.max_samples)
        start = time.perf_counter()
        correct, agreement = rescoring_agreement(defense, x, y)
        records.append(_record(spec.name, "clean", correct, agreement, time.perf_counter() - start))
        done = {}
        for attack in attacks:
            start = time.perf_counter()
            key = attack if spec.samples else dataclasses.replace(attack, eot_samples=0)
            if key not in done:
                adversarial = _adversarial(attack, defense, plain, x, y, seed)
                done[key] = rescoring_agreement(defense, adversarial, y)
            record = _record(spec.name, attack.label, *done[key], time.perf_counter() - start)
            records.append(record)
            if callback is not None:
                callback(record)
    return records


def certified_accuracy(
    model: keras.Model,
    x: Any,
    y: ArrayLike,
    sigma: float,
    radii: Iterable[float],
    n0: int | None = None,
    n: int = 1000,
    alpha: float = 0.001,
    seed: int = 0,
) -> dict[float, float]:
    """Certified accuracy of the input-smoothed `model` at each L2 radius (CERTIFY).

    The attack-free evidence: with g(x) = argmax_c P(f(x + delta) = c),
    delta ~ N(0, sigma^2 I), Cohen et al.'s CERTIFY returns a class and a
    radius R = sigma * Phi^-1(p_lower) within which g provably does not
    change (p_lower a lower confidence bound of the top class's
    probability, at level `alpha`). The certified accuracy at r is the
    share of examples predicted right with R >= r; abstentions count as
    wrong.

    Reference:
        - [Cohen, Rosenfeld & Kolter, 2019](https://arxiv.org/abs/1902.02918)

    Args:
        model: a Keras classifier (see `keras_cd.smoothing.SmoothedClassifier`).
        x: (N, ...) inputs.
        y: (N,) integer labels, in 0 .. C - 1 for a model of C outputs; they
            need not hold every class.
        sigma: float > 0, the smoothing noise's std.
        radii: iterable of float, the L2 radii to report.
        n0: int or None, selection samples. Defaults to `None`, min(100, n).
        n: int, estimation samples. Defaults to `1000`.
        alpha: float, the failure probability of each certificate.
            Defaults to `0.001`.
        seed: int, seeds the noise. Defaults to `0`.

    Returns:
        dict of float radius -> float certified accuracy in [0, 1].

    Example:
    >>> import numpy as np, keras, keras_cd
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> model.layers[0].set_weights([np.array([[0.0, 1.0], [0.0, 0.0]]), np.zeros(2)])
    >>> x, y = np.array([[2.0, 0.0], [-2.0, 0.0]]), np.array([1, 0])  # 2.0 from the boundary
    >>> keras_cd.robustness.certified_accuracy(model, x, y, 0.5, [0.0, 1.0, 3.0], n=500)
    {0.0: 1.0, 1.0: 1.0, 3.0: 0.0}
    """
    from keras_cd.smoothing import SmoothedClassifier

    n0 = min(100, n) if n0 is None else n0
    smoothed = SmoothedClassifier(model, sigma, num_classes=_num_classes(model, y), seed=seed)
    predictions, radius = smoothed.certify(x, n0, n, alpha)
    right = np.asarray(predictions) == np.asarray(y)
    return {float(r): float(np.mean(right & (np.asarray(radius) >= r))) for r in radii}


def _num_classes(model, y):
    """The model's number of outputs, else the classes the labels show.

    A model without a known output shape gets 0 .. max(y), at least two.
    """
    try:
        classes = model.output_shape[-1]
    except (AttributeError, ValueError, TypeError, IndexError):
        classes = None
    return int(classes) if classes else max(int(np.max(y)) + 1, 2)


class Summary(typing.NamedTuple):
    """A sweep's figures over seeds, as `summarize` computes them.

    Attributes:
        cells: dict of (defense, attack) -> (mean, std, runs) of the
            accuracy.
        robust: dict of defense -> (mean, std, runs), the robust accuracy
            under the attack set, per example: per seed, the share of
            examples right clean and under every attack.
        minimum: dict of defense -> (mean, std, runs), per seed the minimum
            over the attacks of their aggregate accuracies (an upper bound
            of `robust`, not a worst case).
        agreement: dict of defense -> (pooled, lowest), the share of
            (example, attack) verdicts a second scoring repeated.

    Example:
    >>> import keras_cd
    >>> summary = keras_cd.robustness.summarize([
    ...     {"defense": "d", "attack": "clean", "accuracy": 1.0, "seed": 0},
    ...     {"defense": "d", "attack": "pgd", "accuracy": 0.5, "seed": 0}])
    >>> summary.cells[("d", "pgd")], summary.minimum["d"]
    ((0.5, 0.0, 1), (0.5, 0.0, 1))
    """

    cells: dict[tuple[str, str], tuple[float, float, int]]
    robust: dict[str, tuple[float, float, int]]
    minimum: dict[str, tuple[float, float, int]]
    agreement: dict[str, tuple[float, float]]


def _spread(values):
    return float(np.mean(values)), float(np.std(values)), len(values)


def summarize(records: Sequence[Mapping[str, Any]]) -> Summary:
    """A sweep's figures over seeds; records (of `run_sweep`) carry a `seed` key.

    The robust accuracy of a defense is counted per example: with
    c_{a,i} = 1 when attack a (or no attack, "clean") left example i
    correct,

        robust = (1 / N) * sum_i prod_a c_{a,i},

    per seed, then mean and std over seeds. Records written by earlier
    versions, whose defense key is spelled `"defence"`, are read too.

    Args:
        records: list of dicts with defense, attack, accuracy, seed and, for
            `robust` and `agreement`, correct and agreement.

    Returns:
        A `Summary(cells, robust, minimum, agreement)`:
        cells: {(defense, attack): (mean, std, runs)} of the accuracy;
        robust: {defense: (mean, std, runs)}, robust accuracy under the
            attack set, per example: per seed, the share of examples right
            clean and under every attack (the worst case over the set);
        minimum: {defense: (mean, std, runs)}, per seed the minimum over
            the attacks of their aggregate accuracies: an upper bound of
            `robust`, not a worst case (two attacks breaking different
            examples both leave it high);
        agreement: {defense: (pooled, lowest)}, the share of (example,
            attack) verdicts a second scoring repeated, over all records,
            and the lowest of a single record.

    Raises:
        ValueError: when the correct strings of one defense and seed differ
            in length (they must score the same examples).

    Example:
    Two attacks that each break one example, different ones: each leaves
    2 of 3 right, but only 1 of 3 survives both.

    >>> import keras_cd
    >>> records = [
    ...     {"defense": "d", "attack": "clean", "accuracy": 1.0, "correct": "111", "seed": 0},
    ...     {"defense": "d", "attack": "a", "accuracy": 2 / 3, "correct": "011", "seed": 0},
    ...     {"defense": "d", "attack": "b", "accuracy": 2 / 3, "correct": "101", "seed": 0},
    ... ]
    >>> summary = keras_cd.robustness.summarize(records)
    >>> round(summary.robust["d"][0], 4), round(summary.minimum["d"][0], 4)
    (0.3333, 0.6667)
    """
    table = {}
    for record in records:
        key = (_defense_of(record), record["attack"])
        table.setdefault(key, []).append(record["accuracy"])
    cells = {key: _spread(v) for key, v in table.items()}
    robust, minimum, agreement = {}, {}, {}
    for defense in dict.fromkeys(_defense_of(r) for r in records):
        own = [r for r in records if _defense_of(r) == defense]
        accuracies, verdicts = {}, {}
        for record in own:
            if record["attack"] != "clean":
                accuracies.setdefault(record["seed"], []).append(record["accuracy"])
            if "correct" in record:
                verdicts.setdefault(record["seed"], []).append(record["correct"])
        if accuracies:
            minimum[defense] = _spread([min(v) for v in accuracies.values()])
        if verdicts:
            shares = []
            for seed, strings in verdicts.items():
                if len({len(s) for s in strings}) != 1:
                    raise ValueError(
                        f"Invalid value for `records`: expected one length of `correct` per "
                        f"defense and seed (the same examples). Received: lengths "
                        f"{sorted({len(s) for s in strings})} for {defense!r}, seed {seed}. "
                        "Summarize runs over the same test examples."
                    )
                right = np.array([[c == "1" for c in s] for s in strings])
                shares.append(float(np.mean(right.all(axis=0))))
            robust[defense] = _spread(shares)
        agreements = [r["agreement"] for r in own if "agreement" in r]
        if agreements:
            agreement[defense] = (float(np.mean(agreements)), float(np.min(agreements)))
    return Summary(cells, robust, minimum, agreement)


# The deprecated spellings, removed in keras_cd 0.3.
__getattr__ = deprecated_aliases(
    __name__,
    {
        "DefenceSpec": "DefenseSpec",
        "default_defences": "default_defenses",
        "train_defences": "train_defenses",
    },
    globals(),
)
