"""COVID-19 forecasting with 90% of the data missing: COIN and its baselines, one table.

Every method trains in `keras_cd.forecasting` (the harness of
`examples/forecast_covid.py`) on the same `--num-splits` maskings (90% of
the (day, region) values hidden, mask seeds `seed + s`) x `--num-inits`
initialisations (the same init seeds for every method), 100 full-batch Adam
steps each, no early stopping. Printed: mean ± std of the test MSE
(standardised cases, against the true values, over the 33 test snapshots),
mean validation MSE (observed validation entries only), the number of runs,
and wall-clock seconds per run (the whole protocol's time divided by its
runs, compilation included), plus COIN's gain over the best baseline on the
same runs (mean ± std of the run-by-run difference). Settings are the
reference experiment's; none is chosen on test data.

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


def main():
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
    args = parser.parse_args()
    if args.num_splits < 1 or args.num_inits < 1 or args.workers < 1:
        parser.error("--num-splits, --num-inits and --workers must be >= 1")

    import numpy as np

    from keras_cd import datasets
    from keras_cd import forecasting as fc

    try:
        data = datasets.load_england_covid(args.data)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    print(
        f"{os.path.basename(args.data)}: {data.num_days} days, {data.num_regions} regions; "
        f"{args.num_splits} maskings x {args.num_inits} inits (seed {args.seed}); "
        f"{args.workers} runs at a time"
    )
    print(f"{'method':<32}{'test MSE':>18}{'val MSE':>9}{'runs':>6}{'s/run':>8}")
    results = {}
    for label, method, settings in ROWS:
        trainer = fc.ForecastingTrainer(data, method, **settings)
        result = fc.run_forecasting_protocol(
            trainer, args.num_splits, args.num_inits, args.seed, args.workers
        )
        results[label] = result
        print(
            f"{label:<32}{result.mean:>10.4f} ± {result.std:.4f}"
            f"{np.mean(result.validation_mse):>9.4f}{result.runs:>6}"
            f"{result.seconds_per_run:>8.3f}",
            flush=True,
        )
    coin = np.array(results[ROWS[0][0]].test_mse)
    baselines = {label: results[label] for label, _, _ in ROWS[1:]}
    best = min(baselines, key=lambda label: baselines[label].mean)
    difference = np.array(baselines[best].test_mse) - coin
    print(
        f"COIN vs the best baseline ({best}), run by run: MSE lower by "
        f"{difference.mean():.4f} ± {difference.std():.4f} "
        f"({100 * difference.mean() / baselines[best].mean:.1f}%), lower in "
        f"{int((difference > 0).sum())} of {len(difference)} runs"
    )


if __name__ == "__main__":
    from keras_cd import reporting

    with reporting.record(
        reporting.result_name(__file__, sys.argv[1:]), os.path.join(HERE, "results")
    ):
        main()
