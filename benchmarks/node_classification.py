"""COIN node classification on Cora, several settings under one protocol.

Each setting trains `keras_cd.node_classification.NodeClassificationTrainer`
(the trainer of `examples/train_graph.py`) over `--num-splits` random splits
(20 train / 30 validation nodes per class, the rest test; split seeds
`seed + split`) x `--num-inits` initialisations, and prints mean ± std of the
test accuracy over the runs, the number of runs and the seconds per run. The
settings are fixed in advance (none is chosen on test accuracy): the paper's
reference setting, the same on other splits, a stable explicit step, the
implicit scheme at the same diffusion time, a learned sigma2, no diffusion,
and the full-width reference base network (one run: it is slow).

    python benchmarks/node_classification.py --data ../shared/data/cora.npz
"""

import argparse
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SETTINGS = [  # (label, seed, trainer keyword arguments, runs: None = the protocol's)
    ("num_steps 20, sigma2 0.35 (reference; explicit, mildly unstable)", 0, {}, None),
    ("the same on the splits of seed 1", 1, {}, None),
    ("sigma2 0.30 (explicit, stable)", 0, {"sigma2": 0.30}, None),
    (
        "implicit, num_steps 4, sigma2 1.75 (same time 7)",
        0,
        {"scheme": "implicit", "num_steps": 4, "sigma2": 1.75},
        None,
    ),
    ("learned sigma2 (from 0.35)", 0, {"trainable_sigma2": True}, None),
    ("num_steps 0 (no diffusion: the base model)", 0, {"num_steps": 0}, None),
    ("full-width reference base (hidden_units None)", 0, {"hidden_units": None}, (1, 1)),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = os.path.join(
        os.environ.get("KERAS_CD_DATA", os.path.join(ROOT, "..", "shared", "data")), "cora.npz"
    )
    parser.add_argument("--data", default=default, help="gnnbench .npz file")
    parser.add_argument("--num-splits", type=int, default=10)
    parser.add_argument("--num-inits", type=int, default=2)
    args = parser.parse_args()
    if args.num_splits < 1 or args.num_inits < 1:
        parser.error("--num-splits and --num-inits must be >= 1")

    from keras_cd import datasets
    from keras_cd.node_classification import NodeClassificationTrainer

    try:
        data = datasets.load_gnnbench(args.data)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    from keras_cd import graph

    lambda_max = graph.largest_eigenvalue(graph.laplacian(data.adjacency, "coin", format="scipy"))
    print(
        f"{os.path.basename(args.data)}: {data.adjacency.shape[0]} nodes, "
        f"{data.num_classes} classes; {args.num_splits} splits x {args.num_inits} inits; "
        f"lambda_max(L) = {lambda_max:.3f}, so the explicit step is stable for sigma2 <= "
        f"{2 / lambda_max:.3f} (sigma2 0.35: sigma2 * lambda_max = {0.35 * lambda_max:.3f})"
    )
    print(f"{'setting':<66}{'test accuracy':>16}{'runs':>6}{'s/run':>8}")
    for label, seed, settings, runs in SETTINGS:
        splits, inits = runs or (args.num_splits, args.num_inits)
        trainer = NodeClassificationTrainer(data, **settings)
        results = [
            trainer.run(seed + split, seed * 1000 + split * inits + init)
            for split in range(splits)
            for init in range(inits)
        ]
        accuracies = [100 * r.test_accuracy for r in results]
        spread = statistics.pstdev(accuracies)
        seconds = statistics.mean(r.seconds for r in results)
        print(
            f"{label:<66}{statistics.mean(accuracies):>9.2f} ± {spread:4.2f}"
            f"{len(results):>6}{seconds:>8.2f}",
            flush=True,
        )


if __name__ == "__main__":
    from keras_cd import reporting

    results_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    with reporting.record(reporting.result_name(__file__, sys.argv[1:]), results_dir):
        main()
