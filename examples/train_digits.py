"""Train a small convection-diffusion ResNet on scikit-learn's digits.

What it does: builds `keras_cd.models.cd_resnet` (ResNet-14) for the
8x8 handwritten digits that ship with scikit-learn (1,797 images, no download),
trains it twice from the same initial weights, once with diffusion
(`--sigma`, default 0.1) and once as the plain ResNet (sigma = 0), and prints
the test accuracy of both side by side: deterministic inference, Monte-Carlo
(Feynman-Kac) inference averaged over `--mc-samples` noisy passes, and
accuracy under Gaussian input noise of std `--input-noise`.

What to expect: a minute or two on 2 CPU cores; the same --seed prints the
same figures. One seed's difference between the two networks says little:
`make demo` (`benchmarks/robustness.py --demo`) compares them over 5 seeds
with spreads, next to a network trained with input noise, under attack.

    python examples/train_digits.py
    python examples/train_digits.py --sigma 0.3 --epochs 60 --seed 1
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_cd  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sigma", type=float, default=0.1, help="diffusion coefficient of the CD network"
    )
    parser.add_argument("--dt", type=float, default=1.0, help="step size of every block")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    parser.add_argument(
        "--mc-samples", type=int, default=16, help="noisy passes for Monte-Carlo inference"
    )
    parser.add_argument(
        "--input-noise", type=float, default=0.3, help="std of Gaussian noise added to test images"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "mc_samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("sigma", "dt", "input_noise", "lr"):
        if not np.isfinite(getattr(args, name)) or getattr(args, name) < 0:
            parser.error(
                f"--{name.replace('_', '-')} must be a finite number >= 0, "
                f"got {getattr(args, name)}"
            )
    return args


def accuracy(probabilities, labels):
    return float(np.mean(np.argmax(probabilities, axis=-1) == labels))


def evaluate(model, x_test, y_test, mc_samples, input_noise, seed):
    noisy = x_test + input_noise * np.random.default_rng(seed).normal(size=x_test.shape).astype(
        "float32"
    )
    results = {
        "clean": accuracy(model.predict(x_test, verbose=0), y_test),
        "input noise": accuracy(model.predict(noisy, verbose=0), y_test),
    }
    with keras_cd.monte_carlo(model):
        mean = np.mean([model.predict(x_test, verbose=0) for _ in range(mc_samples)], axis=0)
    results["Monte-Carlo"] = accuracy(mean, y_test)
    return results


def main(argv=None):
    args = parse_args(argv)
    x_train, x_test, y_train, y_test = keras_cd.datasets.load_digits(args.seed)
    keras.utils.set_random_seed(args.seed)
    # The CIFAR ResNet family on 8x8 inputs: ResNet-14, stages of 16/32/64 filters.
    plain = keras_cd.models.cd_resnet(
        depth=14, sigma=0.0, dt=args.dt, input_shape=(8, 8, 1), seed=args.seed, name="plain"
    )
    diffusive = keras_cd.models.cd_resnet(
        depth=14, sigma=args.sigma, dt=args.dt, input_shape=(8, 8, 1), seed=args.seed, name="cd"
    )
    diffusive.set_weights(plain.get_weights())  # same initial weights
    rows = {}
    for label, model in (
        ("plain ResNet (sigma=0)", plain),
        (f"CD-ResNet (sigma={args.sigma:g})", diffusive),
    ):
        keras.utils.set_random_seed(args.seed)  # same batch order
        model.compile(
            optimizer=keras.optimizers.Adam(args.lr),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        start = time.perf_counter()
        model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=0)
        seconds = time.perf_counter() - start
        rows[label] = evaluate(model, x_test, y_test, args.mc_samples, args.input_noise, args.seed)
        rows[label]["train s"] = seconds
        print(f"trained {label} for {args.epochs} epochs in {seconds:.1f} s", flush=True)
    print(
        f"\nscikit-learn digits, {len(x_train)} train / {len(x_test)} test images, seed {args.seed}"
    )
    noise = "noise " + format(args.input_noise, "g")
    header = f"{'model':<26}{'clean':>8}{'MC x' + str(args.mc_samples):>9}{noise:>11}{'train s':>9}"
    print(header)
    for label, row in rows.items():
        print(
            f"{label:<26}{row['clean']:>8.4f}{row['Monte-Carlo']:>9.4f}"
            f"{row['input noise']:>11.4f}{row['train s']:>9.1f}"
        )
    return rows


if __name__ == "__main__":
    main()
