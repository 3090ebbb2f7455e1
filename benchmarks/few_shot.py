"""Few-shot digits, end to end and offline: a CD-ResNet backbone, then COIN and the baselines.

The paper's few-shot experiment in miniature, with nothing to download. A
CD-ResNet (`keras_cd.models.cd_resnet`, depth `--depth`, diffusion
`--sigma`) is trained on the base classes 0-4 of scikit-learn's 8x8
digits (the training part of `keras_cd.datasets.load_digits`; its
accuracy on the held-out base images is printed). Its features of every
image of the novel classes 5-9 (about 180 per class) and of the base
training images (for the base-class mean) make a features set per
`--layers`: `pool`, the 64 pooled features the classifier reads (the usual
choice, as the reference's backbones), and `stage2_block2`, the 4 x 4 x 32
= 512 outputs of the middle stage (as wide as ResNet-18's features). The
pooled features of a network that separates 5 digits perfectly keep little
of the other 5; the middle stage was added after seeing that, not chosen
on held-out classes. Then, for 5-way 1-shot and 5-way 5-shot, `--tasks`
tasks with 15 queries per class (seeded: the same tasks for every method
and both layers) are scored by every method of
`keras_cd.few_shot.standard_methods`: COIN with the reference settings,
COIN without diffusion, SimpleShot (CL2N), logistic regression, the last
two also on COIN's shifted queries.

Printed per (layer, setting): accuracy with its 95% confidence interval
and seconds per method (the COIN row ends with its summary), then COIN
against every method as a paired comparison over the same tasks (mean
difference in accuracy points with its 95% CI; tasks COIN wins, ties and
loses), and COIN's seconds per 1,000 tasks (compilation included). With
only 5 novel classes every task holds all of them, so tasks differ only in
the images they draw.

    python benchmarks/few_shot.py                 # its output: benchmarks/RESULTS.md
    python benchmarks/few_shot.py --tasks 500 --epochs 5 --layers pool
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per setting")
    parser.add_argument("--layers", nargs="+", default=["pool", "stage2_block2"])
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--depth", type=int, default=14, help="CD-ResNet depth (6n + 2)")
    parser.add_argument("--sigma", type=float, default=0.1, help="backbone diffusion")
    parser.add_argument("--epochs", type=int, default=30, help="backbone training epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=8, help="tasks per compiled call")
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.epochs < 1 or min(args.shots) < 1:
        parser.error("--tasks, --epochs and --shots must be >= 1")
    return args


def digits_features(args):
    """The backbone's features of the digits: base 0-4 (training images), novel 5-9 (all)."""
    import keras
    import numpy as np

    import keras_cd
    from keras_cd import few_shot

    x_train, x_test, y_train, y_test = keras_cd.datasets.load_digits(args.seed)
    base_train, base_test = y_train < 5, y_test < 5
    keras.utils.set_random_seed(args.seed)
    model = keras_cd.models.cd_resnet(
        depth=args.depth, num_classes=5, sigma=args.sigma, input_shape=(8, 8, 1), seed=args.seed
    )
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    model.fit(
        x_train[base_train], y_train[base_train], batch_size=64, epochs=args.epochs, verbose=0
    )
    held_out = model.evaluate(x_test[base_test], y_test[base_test], verbose=0)[1]
    print(
        f"backbone: CD-ResNet-{args.depth} (sigma {args.sigma:g}) trained on {base_train.sum()} "
        f"images of digits 0-4 for {args.epochs} epochs in {time.perf_counter() - start:.1f} s; "
        f"held-out accuracy on digits 0-4: {100 * held_out:.2f}% ({base_test.sum()} images)",
        flush=True,
    )
    images = np.concatenate([x_train[base_train], x_train[~base_train], x_test[~base_test]])
    labels = np.concatenate([y_train[base_train], y_train[~base_train], y_test[~base_test]])
    split = {label: "base" if label < 5 else "novel" for label in range(10)}
    features = {
        layer: few_shot.extract_features(model, images, labels, split, layer=layer)
        for layer in args.layers
    }
    return features, held_out


def run_setting(data, layer, shot, args, figures):
    from keras_cd import few_shot

    tasks, query_labels = few_shot.sample_tasks(
        data, way=5, shot=shot, queries=15, num_tasks=args.tasks, seed=args.seed
    )
    print(
        f"\n{layer} features ({data.num_features} wide): 5-way {shot}-shot, 15 queries per "
        f"class, {args.tasks} tasks (seed {args.seed})"
    )
    results = few_shot.evaluate(few_shot.standard_methods(args.batch_size), tasks, query_labels)
    for line in few_shot.format_table(results, summarize=(few_shot.COIN,)):
        print(line)
    for line in few_shot.format_comparisons(results, few_shot.COIN):
        print(line)
    seconds = results[few_shot.COIN].seconds
    print(
        f"COIN: {1000 * seconds / args.tasks:.1f} s per 1,000 tasks (compilation included)",
        flush=True,
    )
    ours = results[few_shot.COIN]
    figures.setdefault(layer, {})[f"5-way {shot}-shot"] = {
        "tasks": args.tasks,
        "methods": {
            name: {"accuracy": r.mean, "ci95": r.ci95, "seconds": r.seconds}
            for name, r in results.items()
        },
        "coin_minus_method": {
            name: few_shot.paired_comparison(ours, r)
            for name, r in results.items()
            if name != few_shot.COIN
        },
    }


def main(argv=None, figures=None):
    args = parse_args(argv)
    figures = {} if figures is None else figures
    features, held_out = digits_features(args)
    figures["backbone_held_out_accuracy"] = float(held_out)
    labels = next(iter(features.values())).labels
    print(f"novel classes 5-9: {[int((labels == c).sum()) for c in range(5, 10)]} images")
    for layer, data in features.items():
        for shot in args.shots:
            run_setting(data, layer, shot, args, figures)
    return figures


if __name__ == "__main__":
    from keras_cd import reporting

    with reporting.record(
        reporting.result_name(__file__, sys.argv[1:]), os.path.join(HERE, "results")
    ) as entry:
        main(figures=entry.figures)
