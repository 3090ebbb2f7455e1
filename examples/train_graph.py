"""Train COIN (residual classifier + graph heat diffusion) on a citation graph.

What it does: loads a gnnbench `.npz` file (Cora, CiteSeer, PubMed) with the
standard preprocessing (undirected, unweighted, largest connected component,
row-normalised features), builds the paper's Laplacian
L = diag(rowsum A_hat) - A_hat, A_hat = D^-1/2 (A + I) D^-1/2, and trains
`keras_cd.models.coin_classifier` over `--num-splits` random splits (20 train
and 30 validation nodes per class, the rest test) times `--num-inits`
initialisations: Adam lr 0.01, weight decay 5e-4, full-batch, early stopping
with patience 50 on validation loss/accuracy (stop when neither improved),
the weights of the lowest validation loss restored. The last
line is `test accuracy: MEAN ± STD over N runs`.

What to expect on Cora: the README's table lists what these commands printed
(2 CPU cores). sigma2 = 0.35 sits just past explicit Euler's stability limit
on Cora, which the script reports. `--hidden full` trains the reference
code's full-width base network (several times slower). The same `--seed`
prints the same figures.

    python examples/train_graph.py --data ../shared/data/cora.npz --num-splits 10 --num-inits 2
    python examples/train_graph.py --data cora.npz --scheme implicit --sigma2 0.35
"""

import argparse
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
    parser.add_argument("--num-splits", type=int, default=10)
    parser.add_argument("--num-inits", type=int, default=2)
    parser.add_argument(
        "--num-steps", type=int, default=20, help="diffusion steps (0: no diffusion)"
    )
    parser.add_argument("--sigma2", type=float, default=0.35, help="diffusion step size")
    parser.add_argument("--scheme", choices=("explicit", "implicit"), default="explicit")
    parser.add_argument("--trainable-sigma2", action="store_true", help="learn sigma2")
    parser.add_argument(
        "--hidden",
        type=hidden_units,
        default=64,
        help="rank of the base model's velocity field, or 'full' for the reference "
        "network x + relu(W1 x) with W1 F x F (slow)",
    )
    parser.add_argument("--dropout", type=float, default=0.5, help="dropout on relu(x W1 + b1)")
    parser.add_argument(
        "--input-dropout",
        type=float,
        default=None,
        help="dropout on the input features (default: --dropout)",
    )
    parser.add_argument(
        "--decay-first-only",
        action="store_true",
        help="weight decay on the first layer only (as GCN), not on every kernel",
    )
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--patience", type=int, default=50)
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("num_splits", "num_inits", "patience", "max_epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.num_steps < 0 or not args.sigma2 >= 0:
        parser.error("--num-steps and --sigma2 must be >= 0")
    if not 0 <= args.dropout < 1:
        parser.error(f"--dropout must be in [0, 1), got {args.dropout}")
    return args


def make_trainer(args):
    """The library trainer (`keras_cd.node_classification`) with the flags' settings."""
    from keras_cd import datasets
    from keras_cd.node_classification import NodeClassificationTrainer

    data = datasets.load_gnnbench(args.data)
    datasets.random_split(data.labels, seed=args.seed)  # fail early on impossible splits
    return NodeClassificationTrainer(
        data,
        num_steps=args.num_steps,
        sigma2=args.sigma2,
        scheme=args.scheme,
        trainable_sigma2=args.trainable_sigma2,
        hidden_units=args.hidden,
        dropout=args.dropout,
        input_dropout=args.input_dropout,
        weight_decay=args.weight_decay,
        readout_weight_decay=0.0 if args.decay_first_only else None,
        learning_rate=args.lr,
        patience=args.patience,
        max_epochs=args.max_epochs,
    )


def main(argv=None):
    args = parse_args(argv)
    import keras
    import numpy as np

    try:
        trainer = make_trainer(args)  # warns when the explicit step is unstable on this graph
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    data, lambda_max = trainer.data, trainer.lambda_max
    print(
        f"{os.path.basename(args.data)}: {data.adjacency.shape[0]} nodes, "
        f"{data.adjacency.nnz // 2} edges, {data.features.shape[1]} features, "
        f"{data.num_classes} classes; lambda_max(L) = {lambda_max:.3f}"
    )
    runs = args.num_splits * args.num_inits
    progress = keras.utils.Progbar(runs, unit_name="run")
    accuracies, seconds = [], []
    for split in range(args.num_splits):
        for init in range(args.num_inits):
            result = trainer.run(
                args.seed + split, args.seed * 1000 + split * args.num_inits + init
            )
            accuracies.append(result.test_accuracy)
            seconds.append(result.seconds)
            progress.add(
                1,
                values=[
                    ("test_acc", result.test_accuracy),
                    ("epochs", result.epochs),
                    ("s", result.seconds),
                ],
            )
    accuracies = 100 * np.array(accuracies)
    print(f"mean {np.mean(seconds):.2f} s per run")
    print(f"test accuracy: {accuracies.mean():.2f} ± {accuracies.std():.2f} over {runs} runs")
    return accuracies, seconds


if __name__ == "__main__":
    main()
