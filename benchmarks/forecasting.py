"""COVID-19 forecasting with 90% of the data missing: COIN and its baselines, paired.

Every method trains in `keras_cd.forecasting` (the harness of
`examples/forecast_covid.py`) on the same `--num-splits` maskings (90% of
the (day, region) values hidden, mask seeds `seed + s`) x `--num-inits`
initialisations (the same init seeds for every method), 100 full-batch Adam
steps each, no early stopping, under each `--standardization` (default:
both, one table each):

- `training`: each region standardised with the mean and std of its
  observed entries in the days the training and validation snapshots read;
- `reference`: the reference code's, mean and std of all days, hidden and
  test-period values included.

Printed per method: mean ± std of the test MSE in standardised units and in
cases (each region un-standardised with its own statistics, so comparable
across the two tables), both against the true values (hidden or not) over
the 33 test snapshots; mean validation MSE (observed validation entries,
standardised); finished and failed runs; wall-clock seconds per run (the
protocol's time divided by its runs, compilation included). Then COIN
against every baseline, run by run on the same (masking, init): mean ± std of
the baseline's MSE minus COIN's (positive: COIN lower) and in how many runs
COIN is lower. Failed runs are never averaged and leave their pair out.
Settings are the reference experiment's; none is chosen on test data.

    python benchmarks/forecasting.py --data ../shared/data/england_covid.json
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

ROWS = [  # (label, method, settings)
    ("COIN (10 x 0.5, dropout 0.25)", "coin", {}),
    ("COIN base, no diffusion", "coin", {"num_steps": 0}),
    ("GCN (2 layers, 16)", "gcn", {}),
    ("MLP (8-16-1)", "mlp", {}),
    ("linear regression", "linear", {}),
]


def paired(coin, baseline, metric):
    """The baseline's minus COIN's `metric` on the runs both finished, in run order."""
    import numpy as np

    def by_run(result):
        return dict(zip(zip(result.split_seeds, result.init_seeds), getattr(result, metric)))

    ours, theirs = by_run(coin), by_run(baseline)
    common = [run for run in ours if run in theirs]
    return np.array([theirs[run] - ours[run] for run in common])


def percent(difference, baseline):
    return f"({100 * difference / baseline:+.1f}%)"


def table(data, standardization, args, figures):
    import numpy as np

    from keras_cd import forecasting as fc

    print(f"\nstandardization = {standardization!r}")
    print(
        f"{'method':<32}{'test MSE (standardised)':>26}{'test MSE (cases)':>22}"
        f"{'val MSE':>10}{'runs':>6}{'failed':>8}{'s/run':>8}"
    )
    results = {}
    for label, method, settings in ROWS:
        trainer = fc.ForecastingTrainer(data, method, standardization=standardization, **settings)
        result = fc.run_protocol(trainer, args.num_splits, args.num_inits, args.seed, args.workers)
        results[label] = result
        print(
            f"{label:<32}{result.mean:>15.4f} ± {result.std:<8.4f}"
            f"{result.mean_cases:>12.1f} ± {result.std_cases:<7.1f}"
            f"{np.mean(result.validation_mse):>10.4f}{result.runs:>6}{len(result.failed):>8}"
            f"{result.seconds_per_run:>8.3f}",
            flush=True,
        )
    coin = results[ROWS[0][0]]
    print("COIN against each baseline, run by run (baseline MSE - COIN MSE; > 0: COIN lower):")
    comparisons = {}
    for label, _, _ in ROWS[1:]:
        comparisons[label] = {}
        for metric, unit, digits in (
            ("test_mse", "standardised", 4),
            ("test_mse_cases", "cases", 1),
        ):
            difference = paired(coin, results[label], metric)
            baseline_mean = float(np.mean(getattr(results[label], metric)))
            wins = int((difference > 0).sum())
            print(
                f"  vs {label:<29}{unit:<14}{difference.mean():>+12.{digits}f} ± "
                f"{difference.std():<8.{digits}f}{percent(difference.mean(), baseline_mean):<10}"
                f"COIN lower in {wins:>3} of {len(difference)} runs"
            )
            comparisons[label][metric] = {
                "mean": float(difference.mean()),
                "std": float(difference.std()),
                "coin_lower": wins,
                "pairs": len(difference),
            }
    figures[standardization] = {
        "methods": {
            label: {
                "test_mse": {"mean": r.mean, "std": r.std},
                "test_mse_cases": {"mean": r.mean_cases, "std": r.std_cases},
                "validation_mse": float(np.mean(r.validation_mse)) if r.runs else None,
                "runs": r.runs,
                "failed": r.failed,
                "seconds_per_run": r.seconds_per_run,
            }
            for label, r in results.items()
        },
        "coin_minus_baseline": comparisons,
    }


def main(argv=None, figures=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = os.path.join(
        os.environ.get("KERAS_CD_DATA", os.path.join(ROOT, "..", "shared", "data")),
        "england_covid.json",
    )
    parser.add_argument("--data", default=default, help="England COVID .json file")
    parser.add_argument("--num-splits", type=int, default=10)
    parser.add_argument("--num-inits", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--standardization", default="both", choices=("both", "training", "reference")
    )
    args = parser.parse_args(argv)
    if args.num_splits < 1 or args.num_inits < 1 or args.workers < 1:
        parser.error("--num-splits, --num-inits and --workers must be >= 1")

    from keras_cd import datasets

    try:
        data = datasets.load_england_covid(args.data)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    print(
        f"{os.path.basename(args.data)}: {data.num_days} days, {data.num_regions} regions; "
        f"{args.num_splits} maskings x {args.num_inits} inits (seed {args.seed}); "
        f"{args.workers} runs at a time"
    )
    settings = (
        ("training", "reference") if args.standardization == "both" else (args.standardization,)
    )
    figures = {} if figures is None else figures
    for standardization in settings:
        table(data, standardization, args, figures)
    return figures


if __name__ == "__main__":
    from keras_cd import reporting

    with reporting.record(
        reporting.result_name(__file__, sys.argv[1:]), os.path.join(HERE, "results")
    ) as entry:
        main(figures=entry.figures)
