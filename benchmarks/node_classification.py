"""Node classification on Cora: COIN and its baselines in one harness, one table.

Every method trains in `keras_cd.node_classification` (the harness of
`examples/train_graph.py`) on the same `--num-splits` random splits (20
train / 30 validation nodes per class, the rest test; split seeds
`seed + split`) x `--num-inits` initialisations, with the same early stopping
(patience 50 on validation loss/accuracy, weights of the lowest validation
loss restored), `--workers` runs at a time. Printed: mean ± std of the test
accuracy over the runs, the number of runs, and wall-clock seconds per run
(the whole protocol's time divided by its runs, compilation included).

Rows: COIN with the setting chosen on validation accuracy alone
(`benchmarks/settings/cora_coin.json`, written by `examples/train_graph.py
--search 30`); COIN at the paper's reference setting (explicit, 20 steps of
0.35, mildly unstable on Cora); the base network without diffusion
(num_steps 0); APPNP and SGC at their papers' settings; DGC (SGC's
propagation as 250 explicit steps of T / K, T = 5.27). None is chosen on test
accuracy. Printed first: the share of each protocol test set whose labels
the search that chose the setting read (training and validation labels of
its own random splits; `keras_cd.node_classification.label_overlap`, over
100 protocol splits). A run whose loss or validation metric is not finite
is counted under "failed" and left out of the mean.

`--backend tensorflow,jax,torch` trains the two COIN rows instead on each
listed Keras backend, one fresh process per backend, on the same splits and
initialisation seeds, and prints them side by side: mean ± std of the test
accuracy, runs, and seconds per run (compilation included; PyTorch runs
eagerly with one intra-op thread per worker). Seeded runs are reproducible
on one backend; across backends the weights' random streams differ, so the
means agree within the seed spread, not run by run.

    python benchmarks/node_classification.py --data ../shared/data/cora.npz
    python benchmarks/node_classification.py --only overlap
    python benchmarks/node_classification.py --backend tensorflow,jax,torch
"""

import argparse
import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SELECTED = os.path.join(HERE, "settings", "cora_coin.json")

ROWS = [  # (label, method, settings; None: the validation-selected one)
    ("COIN, selected on validation", "coin", None),
    ("COIN, reference (20 x 0.35, explicit)", "coin", {}),
    ("base network, no diffusion", "coin", {"num_steps": 0}),
    ("APPNP (K 10, alpha 0.1)", "appnp", {}),
    ("SGC (K 2)", "sgc", {}),
    ("DGC (K 250, T 5.27)", "sgc", {"num_steps": 250, "sigma2": 5.27 / 250}),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = os.path.join(
        os.environ.get("KERAS_CD_DATA", os.path.join(ROOT, "..", "shared", "data")), "cora.npz"
    )
    parser.add_argument("--data", default=default, help="gnnbench .npz file")
    parser.add_argument("--setting", default=SELECTED, help="the validation-selected setting")
    parser.add_argument("--num-splits", type=int, default=10)
    parser.add_argument("--num-inits", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--only",
        choices=["overlap"],
        help="print only the search's label overlap with the protocol test sets (no training)",
    )
    parser.add_argument(
        "--backend",
        help="comma-separated Keras backends (tensorflow, jax, torch): the COIN rows on each, "
        "side by side",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.num_splits < 1 or args.num_inits < 1 or args.workers < 1:
        parser.error("--num-splits, --num-inits and --workers must be >= 1")
    if args.backend:
        backends = [b.strip() for b in args.backend.split(",") if b.strip()]
        unknown = sorted(set(backends) - {"tensorflow", "jax", "torch"})
        if unknown or not backends:
            parser.error(
                f"--backend: expected some of tensorflow, jax, torch, received {args.backend!r}"
            )
        return compare_backends(args, backends)

    from keras_cd import datasets
    from keras_cd import node_classification as nc

    try:
        data = datasets.load_gnnbench(args.data)
        _, selected = nc.load_setting(args.setting)
        with open(args.setting) as file:
            search_seeds = json.load(file).get("search", {}).get("split_seeds", [])
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    print(
        f"{os.path.basename(args.data)}: {data.adjacency.shape[0]} nodes, "
        f"{data.num_classes} classes; {args.num_splits} splits x {args.num_inits} inits; "
        f"{args.workers} runs at a time"
    )
    print(f"selected setting: {json.dumps(selected)}")
    if search_seeds:
        shares = 100 * nc.label_overlap(data.labels, search_seeds, range(100))
        read = len(search_seeds)
        print(
            f"the search read the training and validation labels of {read} splits of its own: "
            f"{shares.mean():.1f}% of each protocol test set (from {shares.min():.1f} to "
            f"{shares.max():.1f}% over 100 protocol splits)"
        )
    if args.only == "overlap":
        return
    if args.child:
        for label, method, settings in ROWS[:2]:
            trainer = nc.NodeClassificationTrainer(
                data, method, **(selected if settings is None else settings)
            )
            result = nc.run_protocol(trainer, args.num_splits, args.num_inits, workers=args.workers)
            figures = {
                "label": label,
                "mean": result.mean,
                "std": result.std,
                "runs": result.runs,
                "failed": len(result.failed),
                "seconds_per_run": result.seconds_per_run,
            }
            print("ROW " + json.dumps(figures), flush=True)
        return None
    print(f"{'method':<40}{'test accuracy':>16}{'runs':>6}{'failed':>8}{'s/run':>8}")
    for label, method, settings in ROWS:
        trainer = nc.NodeClassificationTrainer(
            data, method, **(selected if settings is None else settings)
        )
        result = nc.run_protocol(trainer, args.num_splits, args.num_inits, workers=args.workers)
        print(
            f"{label:<40}{result.mean:>9.2f} ± {result.std:4.2f}{result.runs:>6}"
            f"{len(result.failed):>8}{result.seconds_per_run:>8.2f}",
            flush=True,
        )


def compare_backends(args, backends):
    """The COIN rows on each backend in a fresh process; one table, side by side."""
    argv = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        "--data",
        args.data,
        "--setting",
        args.setting,
        "--num-splits",
        str(args.num_splits),
        "--num-inits",
        str(args.num_inits),
        "--workers",
        str(args.workers),
    ]
    rows = {}
    for backend in backends:
        env = {**os.environ, "KERAS_BACKEND": backend}
        if backend == "torch":  # eager steps: threads competing for 2 cores slow them down
            env["OMP_NUM_THREADS"] = "1"
        child = subprocess.run(argv, env=env, capture_output=True, text=True)
        if child.returncode:
            sys.exit(f"error: the {backend} run failed:\n{child.stderr[-3000:]}")
        for line in child.stdout.splitlines():
            if line.startswith("ROW "):
                row = json.loads(line[4:])
                rows.setdefault(row["label"], {})[backend] = row
    print(
        f"{args.num_splits} splits x {args.num_inits} inits on each backend, the same seeds; "
        f"{args.workers} runs at a time; s/run includes compilation"
    )
    header = "".join(f"{b + ' accuracy':>20}{'s/run':>8}" for b in backends)
    print(f"{'method':<40}{header}")
    for label, by_backend in rows.items():
        cells = "".join(
            f"{by_backend[b]['mean']:>12.2f} ± {by_backend[b]['std']:4.2f}"
            f"{by_backend[b]['seconds_per_run']:>8.2f}"
            for b in backends
        )
        failed = sum(by_backend[b]["failed"] for b in backends)
        print(f"{label:<40}{cells}" + (f"  ({failed} failed runs)" if failed else ""))
    return None


if __name__ == "__main__":
    from keras_cd import reporting

    if "--child" in sys.argv:  # one backend's rows, read by the parent process
        sys.exit(main())
    with reporting.record(
        reporting.result_name(__file__, sys.argv[1:]), os.path.join(HERE, "results")
    ):
        main()
