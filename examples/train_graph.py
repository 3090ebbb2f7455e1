"""Node classification on a citation graph: COIN and its baselines at the paper's protocol.

What it does: loads a gnnbench `.npz` file (Cora, CiteSeer, PubMed) with the
standard preprocessing (undirected, unweighted, largest connected component,
row-normalised features) and trains a method of
`keras_cd.node_classification` (COIN: a residual base classifier followed by
heat diffusion on the paper's Laplacian; or the baselines APPNP and SGC) over
`--num-splits` random splits (20 train and 30 validation nodes per class, the
rest test) times `--num-inits` initialisations: full-batch Adam, early stopping
with patience 50 on validation loss/accuracy, the weights of the lowest
validation loss restored. The diffusion is applied exactly through
precomputed operator rows, and every run is one compiled XLA loop. The last
line is `test accuracy: MEAN ± STD over N runs`; `--output` also writes every
run as JSON.

Model selection touches validation data only: `--search N` tries N settings
(`keras_cd.node_classification.search`), each scored by its mean validation
accuracy on `--search-splits` splits of its own, saves the winner to
`--setting` and then evaluates it once on the protocol's test sets. A saved
`--setting` file reruns that setting. The same command works for any gnnbench
file. Figures: `benchmarks/RESULTS.md`.

    python examples/train_graph.py --num-splits 100 --num-inits 20      # the paper's protocol
    python examples/train_graph.py --search 30 --setting benchmarks/settings/cora_coin.json \
        --num-splits 100 --num-inits 20
    python examples/train_graph.py --setting benchmarks/settings/cora_coin.json --data citeseer.npz
    python examples/train_graph.py --method appnp --num-splits 10 --num-inits 2
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_data():
    base = os.environ.get("KERAS_CD_DATA", os.path.join(ROOT, "..", "shared", "data"))
    return os.path.join(base, "cora.npz")


def hidden_units(text):
    if text == "full":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or 'full', got {text!r}")
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--data", default=default_data(), help="gnnbench .npz file")
    parser.add_argument("--method", choices=("coin", "appnp", "sgc"), default=None)
    parser.add_argument("--num-splits", type=int, default=10)
    parser.add_argument("--num-inits", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="runs trained at a time")
    parser.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compile each run with XLA (default, as Keras' jit_compile); --no-jit-compile "
        "builds a plain graph: quicker to build, slower per run, for a few short runs",
    )
    parser.add_argument("--output", help="write every run's figures to this JSON file")
    parser.add_argument(
        "--setting", help="JSON file of a setting: read it, or with --search write the winner"
    )
    parser.add_argument("--search", type=int, default=0, metavar="N", help="trials to search")
    parser.add_argument("--search-splits", type=int, default=5)
    parser.add_argument("--search-inits", type=int, default=1)
    settings = parser.add_argument_group("settings (default: the method's own)")
    settings.add_argument("--num-steps", type=int, help="diffusion steps (0: no diffusion)")
    settings.add_argument("--sigma2", type=float, help="diffusion step size")
    settings.add_argument("--scheme", choices=("explicit", "implicit"))
    settings.add_argument("--teleport", type=float, help="APPNP's alpha")
    settings.add_argument("--trainable-sigma2", action="store_true", default=None)
    settings.add_argument(
        "--hidden",
        dest="hidden_units",
        type=hidden_units,
        default=argparse.SUPPRESS,
        help="width of the base model's hidden layer, or 'full' (COIN's reference network)",
    )
    settings.add_argument("--dropout", type=float)
    settings.add_argument("--input-dropout", type=float)
    settings.add_argument("--weight-decay", type=float)
    settings.add_argument("--readout-weight-decay", type=float)
    settings.add_argument("--lr", dest="learning_rate", type=float)
    parser.add_argument("--patience", type=int, default=50)
    parser.add_argument("--max-epochs", type=int, default=1000)
    args = parser.parse_args(argv)
    for name in ("num_splits", "num_inits", "patience", "max_epochs", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.search < 0 or args.search_splits < 1 or args.search_inits < 1:
        parser.error("--search must be >= 0, --search-splits and --search-inits >= 1")
    if args.search and not args.setting:
        parser.error("--search needs --setting FILE to save the chosen setting to")
    return args


SETTING_NAMES = (
    "num_steps",
    "sigma2",
    "scheme",
    "teleport",
    "trainable_sigma2",
    "hidden_units",
    "dropout",
    "input_dropout",
    "weight_decay",
    "readout_weight_decay",
    "learning_rate",
)


def chosen_setting(args, data):
    """(method, settings): searched, read from --setting, or the flags over the defaults."""
    from keras_cd import node_classification as nc

    flags = {n: getattr(args, n) for n in SETTING_NAMES if getattr(args, n, None) is not None}
    if args.search:
        method = args.method or "coin"
        print(
            f"searching {args.search} settings of {method} on validation accuracy "
            f"({args.search_splits} splits x {args.search_inits} inits of its own)"
        )

        def report(index, trial):
            print(
                f"  trial {index + 1:>3}: validation {trial['validation_accuracy']:.2f} "
                f"± {trial['validation_std']:.2f}  {json.dumps(trial['settings'])}",
                flush=True,
            )

        result = nc.search(
            data,
            method,
            num_trials=args.search,
            num_splits=args.search_splits,
            num_inits=args.search_inits,
            seed=args.seed,
            patience=args.patience,
            max_epochs=args.max_epochs,
            callback=report,
            jit_compile=args.jit_compile,
        )
        result.save(args.setting)
        print(f"chosen on validation ({result.validation_accuracy:.2f}), saved to {args.setting}")
        return method, result.settings
    if args.setting:
        method, settings = nc.load_setting(args.setting)
        if args.method and args.method != method:
            raise ValueError(f"--method {args.method} disagrees with {args.setting} ({method})")
        return method, {**settings, **flags}
    return args.method or "coin", flags


def main(argv=None):
    args = parse_args(argv)
    import keras

    from keras_cd import datasets
    from keras_cd import node_classification as nc

    try:
        data = datasets.load_gnnbench(args.data)
        datasets.random_split(data.labels, seed=args.seed)  # fail early on impossible splits
        print(
            f"{os.path.basename(args.data)}: {data.adjacency.shape[0]} nodes, "
            f"{data.adjacency.nnz // 2} edges, {data.features.shape[1]} features, "
            f"{data.num_classes} classes"
        )
        method, settings = chosen_setting(args, data)
        trainer = nc.NodeClassificationTrainer(
            data,
            method,
            patience=args.patience,
            max_epochs=args.max_epochs,
            jit_compile=args.jit_compile,
            **settings,
        )  # warns when the explicit step is unstable on this graph
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    if trainer.lambda_max is not None:
        print(
            f"lambda_max(L) = {trainer.lambda_max:.3f}: explicit steps are stable for "
            f"sigma2 <= {2 / trainer.lambda_max:.3f}"
        )
    print(f"method {method}: {json.dumps(trainer.settings)}")
    runs = args.num_splits * args.num_inits
    progress = keras.utils.Progbar(runs, unit_name="run")
    result = nc.run_protocol(
        trainer,
        args.num_splits,
        args.num_inits,
        seed=args.seed,
        workers=args.workers,
        callback=lambda r: progress.add(
            1, values=[("test_acc", r.test_accuracy), ("epochs", r.epochs)]
        ),
    )
    if args.output:
        write_json(args, method, trainer, result)
    print(f"{result.seconds_per_run:.2f} s per run ({args.workers} at a time)")
    print(f"test accuracy: {result.summary()}")
    return result


def write_json(args, method, trainer, result):
    from keras_cd.files import atomic_path

    record = {
        "data": os.path.basename(args.data),
        "method": method,
        "settings": trainer.settings,
        "protocol": {
            "num_splits": args.num_splits,
            "num_inits": args.num_inits,
            "seed": args.seed,
            "patience": args.patience,
            "max_epochs": args.max_epochs,
        },
        "test_accuracy": {  # over finished runs; failed runs are listed, never averaged
            "mean": result.mean if result.runs else None,
            "std": result.std if result.runs else None,
            "runs": result.runs,
        },
        "failed": result.failed,
        "seconds_per_run": result.seconds_per_run,
        "workers": args.workers,
        "runs": [
            {"split_seed": s, "init_seed": i, "test": t, "validation": v, "epochs": e}
            for s, i, t, v, e in zip(
                result.split_seeds,
                result.init_seeds,
                result.accuracies,
                result.validation_accuracies,
                result.epochs,
            )
        ],
    }
    with atomic_path(args.output, suffix=".json") as temporary, open(temporary, "w") as file:
        json.dump(record, file, indent=1)


if __name__ == "__main__":
    main()
