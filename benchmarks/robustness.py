"""Robustness on digits under attacks of growing strength: plain, noise-trained and CD networks.

For each of `--seeds` seeds (the digits split, the initial weights, the batch
order and the attacks' randomness), `keras_cd.robustness.train_defenses`
trains from the same initial weights and batch order: the plain ResNet, the
plain ResNet trained with Gaussian input noise of std max(sigmas) (scored
deterministically and, "+MC", with input smoothing over `--samples` passes)
and the CD-ResNet with diffusion sigma in its residual blocks (scored with
`--samples` Monte-Carlo passes, and up to `--max-samples` for an image
whose margin is within 3 standard errors of the decision boundary), for
each sigma in `--sigmas`. Each is attacked on `--num-test` test images at
L-infinity radius `--eps` by every attack of
`keras_cd.robustness.default_attacks`: PGD with 1, 4, 16 and 64 EOT samples
(10 steps); at EOT = `--eot-samples`, 50 and 200 steps, 5 restarts and a
cosine step schedule; the gradient-free Square attack (300 queries, each
margin over `--eot-samples` passes), PGD transferred from the plain network
and, when the adversarial-robustness-toolbox is installed (`pip install
"keras-cd[attacks]"`), its APGD-CE and APGD-DLR (100 steps, EOT =
`--eot-samples`). Deterministic networks are attacked without EOT.

Printed: robust accuracy mean ± std over seeds for every (defense, attack);
each defense's figure, the robust accuracy under the attack set per
example (an image counts only if it is right clean and under every attack;
per seed, then mean ± std), with the minimum of the attacks' aggregate
accuracies beside it (labelled as such: not a worst case); how often a
second scoring with fresh noise repeats each verdict (the rescoring
agreement, also stored in the results' figures); where the EOT and step
curves flatten; and the certified accuracy (Cohen et al.'s CERTIFY, input
smoothing with `--certify-sigma`, `--certify-n` samples, alpha 0.001) of
each trained network at L2 radii `--radii`. `--quick` runs one tiny
configuration (for CI); `--demo` the small table that `make demo` prints.

    python benchmarks/robustness.py            # the whole sweep (its run time: RESULTS.md)
    python benchmarks/robustness.py --quick
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.1, 0.2])
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--eps", type=float, default=0.05)
    parser.add_argument("--samples", type=int, default=16, help="Monte-Carlo passes when scoring")
    parser.add_argument(
        "--max-samples",
        type=int,
        default=1024,
        help="scoring passes at most, for images near the boundary (sequential scoring)",
    )
    parser.add_argument(
        "--eot-samples", type=int, default=16, help="the attacks' reference EOT samples"
    )
    parser.add_argument("--num-test", type=int, default=50, help="test images attacked")
    parser.add_argument("--radii", type=float, nargs="+", default=[0.0, 0.1, 0.25, 0.5])
    parser.add_argument("--certify-sigma", type=float, default=0.25)
    parser.add_argument("--certify-n", type=int, default=1000)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="one tiny configuration (CI)")
    mode.add_argument("--demo", action="store_true", help="the small table of `make demo`")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.sigmas, args.depth, args.epochs = 2, [0.2], 8, 1
        args.samples, args.num_test, args.certify_n, args.radii = 2, 12, 20, [0.0, 0.25]
        args.max_samples, args.eot_samples = 8, 2
    if args.demo:
        args.sigmas = [0.2]
    for name in ("seeds", "depth", "epochs", "num_test", "certify_n", "max_samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def attacks_for(args):
    from keras_cd import robustness as rb

    if args.demo:  # clean, one standard attack and the gradient-free check
        return [
            rb.Attack("pgd", args.eps, steps=10, eot_samples=args.eot_samples),
            rb.Attack("square", args.eps, queries=100, eot_samples=args.eot_samples),
        ]
    return rb.default_attacks(args.eps, args.eot_samples, quick=args.quick)


def flattening(cells, defense, labels, names):
    """The first point of a curve after which the accuracy falls by < 1 point."""
    values = [cells[(defense, label)][0] for label in labels]
    for index in range(len(values) - 1):
        if values[index] - min(values[index + 1 :]) < 0.01:
            return names[index]
    return f"beyond {names[-1]}"


def main(argv=None):
    args = parse_args(argv)
    import numpy as np

    from keras_cd import datasets
    from keras_cd import robustness as rb
    from keras_cd.robustness.apgd import available

    specs = rb.default_defenses(args.sigmas, args.samples, max_samples=args.max_samples)
    attacks = attacks_for(args)
    print(
        f"digits; ResNet-{args.depth}, {args.epochs} epochs; L-inf eps {args.eps:g}; "
        f"scoring {args.samples} Monte-Carlo passes (up to {args.max_samples} near the "
        f"boundary); {args.num_test} test images; {args.seeds} seeds"
    )
    if not args.demo and not available():
        print(
            "APGD-CE and APGD-DLR SKIPPED: the adversarial-robustness-toolbox is not "
            'installed (pip install "keras-cd[attacks]")'
        )
    records, certified = [], []
    start = time.perf_counter()
    for seed in range(args.seeds):
        x_train, x_test, y_train, y_test = datasets.load_digits(seed)
        x, y = x_test[: args.num_test], y_test[: args.num_test]
        models = rb.train_defenses(
            specs, x_train, y_train, depth=args.depth, epochs=args.epochs, seed=seed
        )
        for record in rb.run_sweep(specs, models, attacks, x, y, seed=seed):
            records.append({**record, "seed": seed})
        if not args.demo:
            networks = {}
            for spec in specs:
                networks.setdefault(spec.name.replace(" +MC", ""), models[spec.name])
            for name, model in networks.items():
                result = rb.certified_accuracy(
                    model, x, y, args.certify_sigma, args.radii, n=args.certify_n, seed=seed
                )
                certified.append({"network": name, "seed": seed, **result})
        print(f"seed {seed} done ({time.perf_counter() - start:.0f} s)", flush=True)

    summary = rb.summarize(records)
    cells = summary.cells
    columns = ["clean"] + [a.label for a in attacks]
    print(
        f"\nrobust accuracy (%), mean ± std over {args.seeds} seeds ({args.num_test} images "
        "each); last rows: per example under the whole attack set (an image counts only "
        "if no attack broke it), and the minimum of the attacks' aggregate accuracies"
    )
    width = max(len(s.name) for s in specs) + 2
    print(f"{'attack':<28}" + "".join(f"{s.name:>{width}}" for s in specs))

    def row(label, figures):
        values = "".join(
            f"{100 * figures[s.name][0]:>{width - 6}.1f} ± {100 * figures[s.name][1]:3.1f}"
            for s in specs
        )
        print(f"{label:<28}{values}")

    for column in columns:
        row(column, {s.name: cells[(s.name, column)] for s in specs})
    row("PER EXAMPLE, all attacks", summary.robust)
    row("min over attacks (aggregate)", summary.minimum)
    print(
        "\nrescoring agreement (%): a second scoring with fresh noise repeats the verdict "
        "on this share of (image, attack) pairs; lowest single attack and seed"
    )
    for spec in specs:
        pooled, lowest = summary.agreement[spec.name]
        print(f"{spec.name:<28}{100 * pooled:6.2f}   lowest {100 * lowest:6.2f}")
    if not args.quick and not args.demo:
        eot = [
            a.label
            for a in attacks
            if a.kind == "pgd" and a.steps == 10 and a.restarts == 1 and a.schedule == "constant"
        ]
        steps = [
            a.label
            for a in attacks
            if a.kind == "pgd"
            and a.restarts == 1
            and a.schedule == "constant"
            and a.eot_samples == args.eot_samples
            and a.steps >= 10
        ]
        step_names = [label.split()[0] for label in steps]
        print("\nwhere the curves flatten (accuracy falls < 1 point beyond)")
        for spec in specs:
            if spec.samples:
                print(
                    f"{spec.name:<24} EOT samples: "
                    f"{flattening(cells, spec.name, eot, ['1', '4', '16', '64'])}; "
                    f"steps: {flattening(cells, spec.name, steps, step_names)}"
                )
    if certified:
        print(
            f"\ncertified accuracy (%) of input smoothing sigma {args.certify_sigma:g} "
            f"(CERTIFY, n = {args.certify_n}), mean ± std over seeds, at L2 radius"
        )
        names = list(dict.fromkeys(c["network"] for c in certified))
        print(f"{'network':<24}" + "".join(f"{r:>14g}" for r in args.radii))
        for name in names:
            rows = [c for c in certified if c["network"] == name]
            print(
                f"{name:<24}"
                + "".join(
                    f"{100 * np.mean([c[float(r)] for c in rows]):>8.1f} ± "
                    f"{100 * np.std([c[float(r)] for c in rows]):3.1f}"
                    for r in args.radii
                )
            )
    print(f"\n{time.perf_counter() - start:.0f} s in all")
    return records, certified, summary


def figures(records, summary):
    """The structured figures recorded beside the printed text (with every
    record: each image's verdict under each attack, per seed)."""
    return {
        "records": records,
        "robust_per_example": {k: list(v) for k, v in summary.robust.items()},
        "min_over_attacks_aggregate": {k: list(v) for k, v in summary.minimum.items()},
        "rescoring_agreement": {
            k: {"pooled": v[0], "lowest": v[1]} for k, v in summary.agreement.items()
        },
    }


if __name__ == "__main__":
    if {"--quick", "--demo"} & set(sys.argv[1:]):  # not results: a check and a demo
        main()
    else:
        from keras_cd import reporting

        with reporting.record(
            reporting.result_name(__file__, sys.argv[1:]), os.path.join(HERE, "results")
        ) as entry:
            records, _, summary = main()
            entry.figures.update(figures(records, summary))
