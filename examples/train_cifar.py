"""Train a convection-diffusion ResNet on CIFAR-10 with any tf.distribute strategy.

What it does: loads CIFAR-10 through tensorflow-datasets (standard
augmentation: 4-pixel zero padding, random 32x32 crop, horizontal flip;
per-channel normalisation), builds `keras_cd.models.cd_resnet`, trains it with
He et al.'s recipe (SGD momentum 0.9, L2 weight decay 1e-4, learning rate 0.1
divided by 10 at 50% and 75% of training) under the chosen tf.distribute
strategy, then prints deterministic and Monte-Carlo (Feynman-Kac) test
accuracy and saves the model as `--model-dir/model.keras` for the export tools.

Fault tolerance: the full training state is checkpointed atomically in
`--model-dir/checkpoints` after every epoch; rerunning the same command after
a crash or kill resumes from the last completed epoch and continues exactly
as the uninterrupted run would (same batches, augmentation and noise). TensorBoard logs go to
`--model-dir/logs`.

What to expect: He et al. report 91.25% test accuracy for ResNet-20 with
`--epochs 182` (64k steps at batch 128); this project has not measured the
CIFAR-10 recipe (its machines have neither a GPU nor the dataset). Offline,
`--dataset digits` runs the same pipeline on scikit-learn's 8x8 digits (no
download; its test asserts that it learns).

    python examples/train_cifar.py                          # CIFAR-10, auto strategy
    python examples/train_cifar.py --epochs 182 --depth 56 --sigma 0.1
    python examples/train_cifar.py --data-dir ~/tensorflow_datasets  # prepared copy
    python examples/train_cifar.py --dataset digits --epochs 20      # offline
"""

import argparse
import json
import math
import os
import socket
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_cd.distribute import STRATEGIES  # noqa: E402

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
CIFAR_HOST = "www.cs.toronto.edu"  # where tensorflow-datasets downloads CIFAR-10


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--dataset",
        choices=("cifar10", "digits"),
        default="cifar10",
        help="cifar10 through tensorflow-datasets, or scikit-learn's digits (offline)",
    )
    parser.add_argument(
        "--data-dir", default=None, help="tensorflow-datasets data_dir holding a prepared cifar10"
    )
    parser.add_argument(
        "--no-download", action="store_true", help="never download; fail if no prepared copy"
    )
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="auto",
        help="auto: MirroredStrategy over the visible GPUs, else the default strategy",
    )
    parser.add_argument("--tpu", default=None, help="TPU name or address for --strategy tpu")
    parser.add_argument(
        "--cpu-replicas",
        type=int,
        default=1,
        help="split the CPU into this many logical devices (try distribution without GPUs)",
    )
    parser.add_argument("--depth", type=int, default=20, help="6n + 2: 20, 32, 44, 56, 110")
    parser.add_argument(
        "--sigma", type=float, default=0.1, help="diffusion coefficient; 0 = plain ResNet"
    )
    parser.add_argument("--dt", type=float, default=1.0, help="step size of every block")
    parser.add_argument("--mode", choices=("additive", "relative"), default="additive")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--batch-size", type=int, default=128, help="per replica; global = this x replicas"
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=0.1,
        help="learning rate at batch 128; scaled linearly with the global batch",
    )
    parser.add_argument(
        "--weight-decay", type=float, default=1e-4, help="L2 weight decay (gradient term)"
    )
    parser.add_argument("--mixed-precision", action="store_true", help="mixed_float16 compute")
    parser.add_argument(
        "--model-dir", default="runs/cifar", help="checkpoints, TensorBoard logs, model.keras"
    )
    parser.add_argument(
        "--mc-samples", type=int, default=8, help="noisy passes for Monte-Carlo accuracy (0: skip)"
    )
    parser.add_argument(
        "--steps-per-epoch", type=int, default=None, help="default: one pass over the data"
    )
    parser.add_argument("--eval-steps", type=int, default=None, help="default: the whole test set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras progress bar style"
    )
    args = parser.parse_args(argv)
    checks = {"epochs": 1, "batch_size": 1, "cpu_replicas": 1, "mc_samples": 0}
    for name, low in checks.items():
        if getattr(args, name) < low:
            parser.error(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(args, name)}")
    for name in ("steps_per_epoch", "eval_steps"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("sigma", "dt", "lr", "weight_decay"):
        value = getattr(args, name)
        if not math.isfinite(value) or value < 0:
            parser.error(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")
    if args.depth < 8 or (args.depth - 2) % 6:
        parser.error(f"--depth must be 6n + 2 (20, 32, 44, 56, 110), got {args.depth}")
    return args


def make_strategy(args):
    """The strategy the flags ask for (`keras_cd.distribute.make_strategy`)."""
    from keras_cd import distribute

    try:
        return distribute.make_strategy(args.strategy, args.cpu_replicas, args.tpu)
    except (ValueError, RuntimeError) as error:  # e.g. a tf.distribute strategy on JAX
        sys.exit(str(error))


def host_reachable(host, port=443, timeout=5.0):
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def load_cifar10(args):
    """Returns (train, test, num_train, image_shape, num_classes) as uint8/int64 pairs."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        sys.exit(
            "CIFAR-10 needs tensorflow-datasets: pip install -e '.[data]' "
            "(or run offline with --dataset digits)"
        )
    kwargs = dict(split=["train", "test"], as_supervised=True, data_dir=args.data_dir)
    try:
        train, test = tfds.load("cifar10", download=False, **kwargs)
    except AssertionError:  # tensorflow-datasets' "could not find data in ..."
        where = args.data_dir or "~/tensorflow_datasets"
        help_text = (
            f"CIFAR-10 is not prepared in {where} and cannot be downloaded: {{}}. "
            'Prepare it on a machine with network access (python -c "import '
            "tensorflow_datasets as tfds; tfds.builder('cifar10').download_and_prepare()\") "
            "and pass --data-dir to that folder, or run offline with --dataset digits."
        )
        if args.no_download:
            sys.exit(help_text.format("--no-download was given"))
        # An unguarded download without network hangs for minutes; fail fast.
        if not host_reachable(CIFAR_HOST):
            sys.exit(help_text.format(f"{CIFAR_HOST} is unreachable"))
        train, test = tfds.load("cifar10", download=True, **kwargs)
    num_train = int(train.cardinality())
    if num_train < 0:  # unknown (e.g. mock data): count once
        num_train = sum(1 for _ in train)
    return train, test, num_train, (32, 32, 3), 10


def load_digits(args):
    import tensorflow as tf

    import keras_cd

    try:
        x_train, x_test, y_train, y_test = keras_cd.datasets.load_digits(seed=0)
    except ImportError as error:
        sys.exit(f"--dataset digits: {error}")
    # uint8 pixels, like CIFAR-10 from TFDS, for the same input pipeline.
    x_train, x_test = ((x * 255).round().astype("uint8") for x in (x_train, x_test))
    return (
        tf.data.Dataset.from_tensor_slices((x_train, y_train)),
        tf.data.Dataset.from_tensor_slices((x_test, y_test)),
        len(x_train),
        (8, 8, 1),
        10,
    )


def pipelines(
    train,
    test,
    num_train,
    image_shape,
    global_batch,
    seed,
    cifar,
    epochs,
    initial_epoch,
    steps_per_epoch,
):
    """Training batches of epochs initial_epoch..epochs-1 and test batches.

    Epoch e's order and augmentation depend only on (seed, e)
    (`keras_cd.datasets.resumable_epochs` and stateless random ops), so a
    resumed run sees the batches the uninterrupted run would have.
    """
    import tensorflow as tf

    import keras_cd

    height, width, channels = image_shape
    mean = tf.constant(CIFAR_MEAN if cifar else (0.5,) * channels)
    std = tf.constant(CIFAR_STD if cifar else (0.5,) * channels)

    def normalize(image, label):
        return (tf.cast(image, "float32") / 255.0 - mean) / std, label

    def augment(seed, example):
        image, label = example
        crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        pad = 4 if cifar else 1
        image = tf.image.resize_with_crop_or_pad(image, height + 2 * pad, width + 2 * pad)
        image = tf.image.stateless_random_crop(image, image_shape, seed=crop_seed)
        if cifar:  # mirrored digits are other digits
            image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
        return image, label

    autotune = tf.data.AUTOTUNE
    train = train.apply(tf.data.experimental.assert_cardinality(num_train))
    train = (
        keras_cd.datasets.resumable_epochs(
            train,
            seed,
            epochs,
            initial_epoch,
            examples_per_epoch=steps_per_epoch * global_batch,
            buffer_size=min(num_train, 50_000),
        )
        .map(augment, num_parallel_calls=autotune)
        .map(normalize, num_parallel_calls=autotune)
        .batch(global_batch)
        .prefetch(autotune)
    )
    test = test.map(normalize, num_parallel_calls=autotune).batch(global_batch).prefetch(autotune)
    return train, test


def main(argv=None):
    args = parse_args(argv)
    strategy = make_strategy(args)  # before anything else touches TensorFlow's devices
    import keras

    import keras_cd

    keras.utils.set_random_seed(args.seed)
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    replicas = strategy.num_replicas_in_sync
    global_batch = args.batch_size * replicas
    chief = keras_cd.distribute.is_chief(strategy)
    if args.dataset == "cifar10":
        train, test, num_train, image_shape, num_classes = load_cifar10(args)
    else:
        train, test, num_train, image_shape, num_classes = load_digits(args)
    steps_per_epoch = args.steps_per_epoch or math.ceil(num_train / global_batch)
    total_steps = steps_per_epoch * args.epochs
    lr = args.lr * global_batch / 128
    print(
        f"strategy {type(strategy).__name__} with {replicas} replica(s); global batch "
        f"{global_batch}; lr {lr:g}; {steps_per_epoch} steps x {args.epochs} epochs",
        flush=True,
    )

    with strategy.scope():
        model = keras_cd.models.cd_resnet(
            depth=args.depth,
            num_classes=num_classes,
            sigma=args.sigma,
            dt=args.dt,
            mode=args.mode,
            input_shape=image_shape,
            seed=args.seed,
            weight_decay=args.weight_decay,
        )
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
            [max(1, total_steps // 2), max(2, 3 * total_steps // 4)], [lr, lr / 10, lr / 100]
        )
        model.compile(
            optimizer=keras.optimizers.SGD(schedule, momentum=0.9),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        checkpoint = keras_cd.checkpoint.ResumableCheckpoint(
            os.path.join(args.model_dir, "checkpoints"), write=chief
        )
        initial_epoch = checkpoint.restore(model)
    train, test = pipelines(
        train,
        test,
        num_train,
        image_shape,
        global_batch,
        args.seed,
        args.dataset == "cifar10",
        args.epochs,
        initial_epoch,
        steps_per_epoch,
    )
    if initial_epoch:
        print(f"resuming from the checkpoint after epoch {initial_epoch}", flush=True)
    callbacks = [checkpoint]
    if chief:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(args.model_dir, "logs")))
    start = time.perf_counter()
    if initial_epoch < args.epochs:
        model.fit(
            train,
            epochs=args.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            verbose=args.verbose,
            shuffle=False,
        )  # the pipeline shuffles
    train_seconds = time.perf_counter() - start

    loss, accuracy = model.evaluate(test, steps=args.eval_steps, verbose=0)
    results = {
        "epochs": args.epochs,
        "resumed_from_epoch": initial_epoch,
        "train_seconds": round(train_seconds, 1),
        "test_loss": float(loss),
        "test_accuracy": float(accuracy),
    }
    if args.mc_samples and args.sigma > 0:
        # Scored by evaluate(): each prediction meets its own label under any sharding.
        with strategy.scope():
            averaged = keras_cd.inference.feynman_kac_model(model, args.mc_samples)
            averaged.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        with keras_cd.monte_carlo():
            _, mc_accuracy = averaged.evaluate(test, steps=args.eval_steps, verbose=0)
        results["monte_carlo_accuracy"] = float(mc_accuracy)
    if chief:
        keras_cd.checkpoint.save_model(model, os.path.join(args.model_dir, "model.keras"))
        with open(os.path.join(args.model_dir, "results.json"), "w") as handle:
            json.dump(results, handle, indent=2)
    print(f"test accuracy (deterministic): {results['test_accuracy']:.4f}")
    if "monte_carlo_accuracy" in results:
        print(
            f"test accuracy (Monte-Carlo, {args.mc_samples} samples): "
            f"{results['monte_carlo_accuracy']:.4f}"
        )
    if chief:
        print(f"saved {os.path.join(args.model_dir, 'model.keras')}")
    return results


if __name__ == "__main__":
    main()
