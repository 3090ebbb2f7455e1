"""COVID-19 case forecasting on daily mobility graphs with 90% of the data missing.

What it does: loads the England COVID data (daily new cases in 129 regions
over 61 days and one mobility graph per day; `keras_cd.datasets.
load_england_covid`, or your own file in the same JSON layout), hides
`--missing-rate` of the (day, region) values (a mask per `--seed`-derived
seed), standardises each region's cases and forecasts the next day from the
previous 8 days: COIN (a small base network, then 10 steps of graph
diffusion with dropout on the day's graph) or a baseline (`--method mlp`,
`gcn`, `linear`), 100 full-batch Adam steps per run, over `--num-splits`
maskings x `--num-inits` initialisations. The snapshots split in time:
10 train, 10 validation, 33 test. `--standardization training` (default)
standardises each region with the mean and std of its observed entries in
the days the training and validation snapshots read, so no hidden or
test-period value reaches training; `--standardization reference` uses all
days, hidden and test values included, as the reference code does. The last
two lines are `test MSE in cases: MEAN ± STD over N runs` (squared cases,
comparable across standardisations) and `test MSE: MEAN ± STD over N runs`
(standardised units), both against the true values, hidden or not. A run
whose loss or predictions are not finite is reported as failed (masking,
init, epoch) and left out of both. `--plot out.png` draws observed, hidden
and predicted cases of a few regions for the first finished run; `--output`
writes every run as JSON. Figures: `benchmarks/RESULTS.md`.

    python examples/forecast_covid.py                       # COIN, 10 maskings x 10 inits
    python examples/forecast_covid.py --method gcn --num-splits 3 --num-inits 2
    python examples/forecast_covid.py --standardization reference   # the reference code's
    python examples/forecast_covid.py --num-splits 1 --num-inits 1 --plot covid.png
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_data():
    base = os.environ.get("KERAS_CD_DATA", os.path.join(ROOT, "..", "shared", "data"))
    return os.path.join(base, "england_covid.json")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--data", default=default_data(), help="England COVID .json file")
    parser.add_argument("--method", default="coin", choices=("coin", "mlp", "gcn", "linear"))
    parser.add_argument("--num-splits", type=int, default=10, help="maskings")
    parser.add_argument("--num-inits", type=int, default=10, help="initialisations per masking")
    parser.add_argument("--seed", type=int, default=42, help="maskings use seed + s")
    parser.add_argument("--missing-rate", type=float, default=0.9)
    parser.add_argument(
        "--standardization",
        default="training",
        choices=("training", "reference"),
        help="statistics of the observed training/validation days, or of all days (reference)",
    )
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1, help="runs trained at a time")
    parser.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compile each run with XLA (default, as Keras' jit_compile); --no-jit-compile "
        "builds a plain graph: quicker to build, slower per run, for a few short runs",
    )
    parser.add_argument("--num-steps", type=int, help="COIN's diffusion steps (0: the base)")
    parser.add_argument("--sigma2", type=float, help="COIN's diffusion step size")
    parser.add_argument("--plot", help="PNG of observed, hidden and predicted cases (first run)")
    parser.add_argument("--output", help="write every run's figures to this JSON file")
    args = parser.parse_args(argv)
    for name in ("num_splits", "num_inits", "epochs", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.method != "coin" and (args.num_steps is not None or args.sigma2 is not None):
        parser.error("--num-steps and --sigma2 are COIN's settings; drop them or use --method coin")
    return args


def main(argv=None):
    args = parse_args(argv)
    import keras

    from keras_cd import datasets
    from keras_cd import forecasting as fc

    settings = {
        k: v for k, v in (("num_steps", args.num_steps), ("sigma2", args.sigma2)) if v is not None
    }
    try:
        data = datasets.load_england_covid(args.data)
        trainer = fc.ForecastingTrainer(
            data,
            args.method,
            epochs=args.epochs,
            missing_rate=args.missing_rate,
            standardization=args.standardization,
            jit_compile=args.jit_compile,
            **settings,
        )
        trainer.windows(args.seed)  # fail early on an impossible masking
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    train, validation, test = (len(part) for part in trainer.split)
    print(
        f"{os.path.basename(args.data)}: {data.num_days} days, {data.num_regions} regions, "
        f"{sum(len(e[0]) for e in data.edges) / data.num_days:.0f} edges per day; "
        f"{train} / {validation} / {test} snapshots (train / validation / test), "
        f"{100 * args.missing_rate:g}% hidden"
    )
    radius = trainer.step_spectral_radius()
    if radius is not None:
        print(
            f"spectral radius of I - sigma2 L, largest over the days: {radius:.4f} "
            f"({'stable' if radius <= 1 + 1e-6 else 'UNSTABLE: the explicit steps amplify'})"
        )
    print(f"method {args.method}: {json.dumps(trainer.settings)}")
    print(
        f"standardization {args.standardization}: "
        + (
            f"each region's observed entries of the first {trainer.statistics_days} days"
            if args.standardization == "training"
            else "every day, hidden and test-period values included (the reference code)"
        )
    )
    progress = keras.utils.Progbar(args.num_splits * args.num_inits, unit_name="run")

    def done(run):
        progress.add(1, values=[("test_mse", run.test_mse)])

    result = fc.run_protocol(
        trainer, args.num_splits, args.num_inits, args.seed, args.workers, done
    )
    for failure in result.failed:
        print(
            f"run split {failure['split_seed']} init {failure['init_seed']} failed at epoch "
            f"{failure['epoch']}: {failure['reason']} (not averaged)",
            file=sys.stderr,
        )
    if args.plot and result.runs:
        trainer.run(result.split_seeds[0], result.init_seeds[0])  # the first run, again
        plot(args.plot, trainer, result.split_seeds[0])
    if args.output:
        from keras_cd.files import write_json

        record = {
            "data": os.path.basename(args.data),
            "method": args.method,
            "settings": trainer.settings,
            "protocol": {
                "num_splits": args.num_splits,
                "num_inits": args.num_inits,
                "seed": args.seed,
                "missing_rate": args.missing_rate,
                "epochs": args.epochs,
            },
            **result.to_json(),
        }
        write_json(args.output, record, indent=1)
    if args.plot and result.runs:
        print(f"plot written to {args.plot}")
    print(f"{result.seconds_per_run:.3f} s per run ({args.workers} at a time)")
    print(f"test MSE in cases: {result.summary_cases()}")
    print(f"test MSE: {result.summary()}")
    if not result.runs:
        sys.exit(f"error: all {len(result.failed)} runs failed (see above)")
    return result


def plot(path, trainer, split_seed, regions=4):
    """Observed, hidden and predicted standardised cases of the regions with most cases."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from keras_cd.files import atomic_path

    predicted = trainer.predictions()
    masking = trainer.masking(split_seed)
    values, observed = masking.values, masking.observed
    chosen = np.argsort(trainer.data.cases.sum(axis=0))[::-1][:regions]
    days = np.arange(values.shape[0])
    target_days = days[trainer.lags :]
    train, validation = (len(part) for part in trainer.split[:2])
    boundaries = [trainer.lags + train, trainer.lags + train + validation]
    figure, axes = plt.subplots(len(chosen), 1, figsize=(9, 2.4 * len(chosen)), sharex=True)
    for axis, region in zip(np.atleast_1d(axes), chosen):
        axis.plot(days, values[:, region], color="0.75", lw=1, label="true (standardised)")
        seen = observed[:, region]
        axis.plot(days[seen], values[seen, region], "o", color="tab:blue", ms=5, label="observed")
        axis.plot(days[~seen], values[~seen, region], "x", color="0.5", ms=4, label="hidden")
        axis.plot(target_days, predicted[:, region], color="tab:red", lw=1.5, label="predicted")
        for boundary in boundaries:
            axis.axvline(boundary - 0.5, color="k", ls=":", lw=0.8)
        axis.set_ylabel(f"region {region}")
    axis.set_xlabel("day (dotted: train | validation | test)")
    np.atleast_1d(axes)[0].legend(loc="upper left", fontsize=7, ncol=4)
    np.atleast_1d(axes)[0].set_title(
        f"{trainer.method}: next-day forecast, {100 * trainer.missing_rate:g}% hidden "
        f"(mask seed {split_seed})"
    )
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    main()
