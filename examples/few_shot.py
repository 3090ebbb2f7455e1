"""Transductive few-shot classification with COIN on a frozen backbone's features.

What it does: reads a features file (`.npz` with `features`, `labels`,
`split` in base/val/novel; see `keras_cd.few_shot.load_features`), draws
`--tasks` tasks of `--way` novel classes with `--shot` labelled and
`--queries` query images per class (seeded: the same `--seed` gives the
same tasks), and runs COIN (the paper's settings: CL2N features, query
shift, Gaussian kNN graph, residual classifier + 10 diffusion steps of 0.5,
SGD for 100 epochs on the support labels) and the baselines on the same
tasks. Prints one row per method (accuracy over the tasks with its 95%
confidence interval, tasks, seconds); the COIN row ends with
`accuracy: M ± CI over T tasks`; then COIN against each method task by task.

What to expect: COIN's time per 1,000 tasks is printed at the end (it
grows with the feature width; the baselines take seconds); the same
`--seed` prints the same figures. Measured accuracies and times of the
digits benchmark (`benchmarks/few_shot.py`) are in benchmarks/RESULTS.md.

    python examples/few_shot.py --features mini_resnet18.npz --way 5 --shot 1 --tasks 10000
    python examples/few_shot.py --features X_embedded_feature.plk \\
        --base-mean X_base_mean.plk --allow-pickle --shot 5

A features file from a Keras backbone (a saved `.keras` classifier; the
features are the input of its last layer unless `--layer` names one) over
an image folder (one sub-folder per class) or a TensorFlow Datasets dataset:

    python examples/few_shot.py extract --backbone model.keras --image-folder images/ \\
        --base-classes @base.txt --novel-classes @novel.txt --image-size 84 84 \\
        --rescale 0.00392156862745098 --output features.npz
    python examples/few_shot.py extract --backbone model.keras --tfds cifar100 \\
        --base-classes 0,1,2,3,4 --novel-classes 5,6,7,8,9 --output features.npz
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

METHODS = {  # flag -> name in keras_cd.few_shot.standard_methods
    "coin": "COIN (10 steps x 0.5)",
    "coin-no-diffusion": "COIN without diffusion",
    "simpleshot": "SimpleShot (CL2N)",
    "simpleshot-shift": "SimpleShot + query shift",
    "logistic": "logistic regression (CL2N)",
    "logistic-shift": "logistic regression + query shift",
}


def evaluate_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", required=True, help=".npz features file (or a pickle)")
    parser.add_argument("--base-mean", help="the reference code's *_base_mean.plk (pickles only)")
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="read the reference code's pickles (unpickling runs code: trusted files only)",
    )
    parser.add_argument("--way", type=int, default=5)
    parser.add_argument("--shot", type=int, default=1)
    parser.add_argument("--queries", type=int, default=15, help="query images per class")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="novel", choices=("novel", "val", "base"))
    parser.add_argument(
        "--methods",
        default="all",
        help=f"comma-separated, of {', '.join(METHODS)}; or all",
    )
    parser.add_argument("--graph", default="reference", choices=("reference", "package"))
    parser.add_argument("--batch-size", type=int, default=8, help="tasks per compiled COIN call")
    return parser


def load(args):
    from keras_cd import few_shot

    if args.features.endswith((".pkl", ".plk", ".pickle")):
        if not args.base_mean:
            raise ValueError(
                "Invalid arguments: the reference pickles need --base-mean FILE "
                "(the *_base_mean.plk next to the features)."
            )
        return few_shot.load_reference_features(
            args.features, args.base_mean, allow_pickle=args.allow_pickle
        )
    return few_shot.load_features(args.features)


def evaluate(argv):
    parser = evaluate_parser()
    args = parser.parse_args(argv)
    methods = list(METHODS) if args.methods == "all" else args.methods.split(",")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"--methods: unknown {unknown}; choose from {', '.join(METHODS)}")
    if args.tasks < 1 or args.batch_size < 1:
        parser.error("--tasks and --batch-size must be >= 1")
    from keras_cd import few_shot

    try:
        data = load(args)
        tasks, query_labels = few_shot.sample_tasks(
            data, args.way, args.shot, args.queries, args.tasks, args.seed, args.split
        )
        standard = few_shot.standard_methods(args.batch_size, args.graph)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    print(
        f"{os.path.basename(args.features)}: {len(data.features)} features of width "
        f"{data.num_features}, {len(data.classes(args.split))} {args.split} classes; "
        f"{args.tasks} tasks of {args.way}-way {args.shot}-shot, {args.queries} queries per "
        f"class (seed {args.seed})",
        flush=True,
    )
    chosen = {METHODS[m]: standard[METHODS[m]] for m in methods}
    results = few_shot.evaluate(chosen, tasks, query_labels, log=lambda s: print(s, flush=True))
    print()
    for line in few_shot.format_table(results, summarize=(few_shot.COIN,)):
        print(line)
    if few_shot.COIN in results and len(results) > 1:
        print()
        for line in few_shot.format_comparisons(results, few_shot.COIN):
            print(line)
    if few_shot.COIN in results:
        seconds = results[few_shot.COIN].seconds
        print(f"\nCOIN: {1000 * seconds / args.tasks:.1f} s per 1,000 tasks (compilation included)")
    return results


def class_list(text):
    if text.startswith("@"):
        with open(text[1:]) as handle:
            return [line.strip() for line in handle if line.strip()]
    return [c.strip() for c in text.split(",") if c.strip()]


def extract(argv):
    parser = argparse.ArgumentParser(
        prog="few_shot.py extract", description="Write a features file from a Keras backbone."
    )
    parser.add_argument("--backbone", required=True, help="a saved .keras model")
    parser.add_argument("--layer", help="feature layer (default: the last layer's input)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image-folder", help="folder with one sub-folder of images per class")
    source.add_argument("--tfds", help="a TensorFlow Datasets name, e.g. cifar100")
    parser.add_argument("--tfds-split", default="train")
    parser.add_argument("--data-dir", help="tfds data directory")
    for split in ("base", "val", "novel"):
        parser.add_argument(
            f"--{split}-classes",
            type=class_list,
            default=[],
            required=split != "val",
            help="comma-separated class names (folders / tfds names or ints), or @FILE",
        )
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--rescale", type=float, default=1.0, help="pixel values are multiplied")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--output", required=True, help="the .npz features file to write")
    args = parser.parse_args(argv)
    classes = args.base_classes + args.val_classes + args.novel_classes
    if len(set(classes)) != len(classes):
        parser.error("a class is listed twice in --base/--val/--novel-classes")
    if args.image_folder and not args.image_size:
        parser.error("--image-folder needs --image-size HEIGHT WIDTH")
    splits = ["base"] * len(args.base_classes) + ["val"] * len(args.val_classes)
    splits += ["novel"] * len(args.novel_classes)

    import keras
    import numpy as np

    import keras_cd  # noqa: F401  (registers the keras_cd layers for load_model)
    from keras_cd import few_shot

    start = time.perf_counter()
    try:
        model = keras.saving.load_model(args.backbone)
        if args.image_folder:
            images, labels = few_shot.image_folder(
                args.image_folder, classes, args.image_size, args.batch_size
            )
        else:
            images, labels = few_shot.tfds_images(
                args.tfds, classes, args.tfds_split, args.image_size, args.data_dir
            )
        if args.rescale != 1.0:
            images = (
                images * args.rescale
                if isinstance(images, np.ndarray)
                else (batch * args.rescale for batch in images)
            )
        data = few_shot.extract_features(
            model, images, labels, dict(enumerate(splits)), args.layer, args.batch_size
        )
        few_shot.save_features(args.output, data.features, data.labels, data.split)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    counts = {s: int((data.split == s).sum()) for s in ("base", "val", "novel")}
    print(
        f"wrote {args.output}: {len(data.features)} features of width {data.num_features} "
        f"({counts['base']} base, {counts['val']} val, {counts['novel']} novel images of "
        f"{len(classes)} classes) in {time.perf_counter() - start:.1f} s"
    )
    return data


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["extract"]:
        return extract(argv[1:])
    return evaluate(argv)


if __name__ == "__main__":
    main()
