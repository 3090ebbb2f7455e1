"""Certified robustness by Gaussian smoothing on scikit-learn's digits.

What it does: trains a small ResNet (`keras_cd.models.cd_resnet`, depth 8)
with Gaussian-noise training (a `keras_cd.DiffusionNoise` input layer of the
same sigma as the smoothing, active only in training) on the 8x8 digits that
ship with scikit-learn, or loads one with `--load`; then certifies test images
with Cohen et al.'s CERTIFY (`keras_cd.smoothing.SmoothedClassifier`), prints
the certified accuracy at each L2 radius (pixels in [0, 1]; a digit image has
L2 norm about 4) and writes the curve to `--plot` (PNG).

What to expect: the README shows the table this command printed with the
defaults (sigma 0.5, n = 2,000, alpha = 0.001, 200 test images, under a
minute on 2 CPU cores). No radius can exceed sigma * PhiInverse(alpha **
(1 / n)) = 1.35 at these settings (raise --n for larger radii).

    python examples/certify.py
    python examples/certify.py --sigma 0.25 --n 10000 --num-test 540 --plot certified.png
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_cd  # noqa: E402
from keras_cd.smoothing import ABSTAIN, SmoothedClassifier  # noqa: E402

RADII = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--sigma", type=float, default=0.5, help="noise level of training and smoothing"
    )
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument(
        "--load", default=None, help="certify this .keras classifier instead of training one"
    )
    parser.add_argument("--save", default=None, help="save the trained classifier here (.keras)")
    parser.add_argument("--n0", type=int, default=100, help="samples to select the top class")
    parser.add_argument("--n", type=int, default=2000, help="samples to bound its probability")
    parser.add_argument("--alpha", type=float, default=0.001, help="failure probability per image")
    parser.add_argument("--num-test", type=int, default=200, help="test images to certify")
    parser.add_argument(
        "--batch-size", type=int, default=2000, help="noisy copies per forward pass"
    )
    parser.add_argument(
        "--plot", default="certified_accuracy.png", help="PNG of the curve ('' to skip)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.sigma > 0:
        parser.error(f"--sigma must be > 0, got {args.sigma}")
    if not 0 < args.alpha < 1:
        parser.error(f"--alpha must be in (0, 1), got {args.alpha}")
    if not 1 <= args.n0 <= args.n:
        parser.error(f"need 1 <= --n0 <= --n, got n0={args.n0}, n={args.n}")
    if args.load and not os.path.isfile(args.load):
        parser.error(f"--load: no such file {args.load!r}")
    return args


def train_classifier(x, y, sigma, epochs, seed):
    keras.utils.set_random_seed(seed)
    base = keras_cd.models.cd_resnet(depth=8, sigma=0.0, input_shape=(8, 8, 1), name="base")
    inputs = keras.Input((8, 8, 1))
    noisy = keras_cd.DiffusionNoise(sigma, seed=seed, name="training_noise")(inputs)
    model = keras.Model(inputs, base(noisy), name="noise_trained_classifier")
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0)
    return model


def certified_accuracy(classes, radii, labels, radius):
    return float(np.mean((classes == labels) & (radii >= radius)))


def write_plot(path, classes, radii, labels, sigma):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise SystemExit(
            "--plot needs matplotlib: pip install -e '.[examples]' (or pass --plot '')"
        ) from error
    grid = np.linspace(0, max(1.6, float(radii.max()) * 1.05), 200)
    figure, axes = plt.subplots(figsize=(5, 3.5), dpi=120)
    axes.plot(grid, [certified_accuracy(classes, radii, labels, r) for r in grid])
    axes.set_xlabel("L2 radius (pixels in [0, 1])")
    axes.set_ylabel("certified accuracy")
    axes.set_title(f"Gaussian smoothing, sigma = {sigma:g}, digits")
    axes.set_ylim(0, 1)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main(argv=None):
    args = parse_args(argv)
    x_train, x_test, y_train, y_test = keras_cd.datasets.load_digits(args.seed)
    if args.load:
        model = keras.saving.load_model(args.load)
    else:
        start = time.perf_counter()
        model = train_classifier(x_train, y_train, args.sigma, args.epochs, args.seed)
        print(
            f"trained with Gaussian noise sigma={args.sigma:g} for {args.epochs} epochs "
            f"in {time.perf_counter() - start:.0f} s",
            flush=True,
        )
        if args.save:
            model.save(args.save)
    clean = float(np.mean(np.argmax(model.predict(x_test, verbose=0), -1) == y_test))
    x, labels = x_test[: args.num_test], y_test[: args.num_test]
    smoothed = SmoothedClassifier(model, args.sigma, 10, batch_size=args.batch_size, seed=args.seed)
    start = time.perf_counter()
    classes, radii = smoothed.certify(x, n0=args.n0, n=args.n, alpha=args.alpha)
    seconds = time.perf_counter() - start
    samples = len(x) * (args.n0 + args.n)
    print(
        f"certified {len(x)} test images (n0={args.n0}, n={args.n}, alpha={args.alpha:g}) in "
        f"{seconds:.0f} s, {samples / seconds:,.0f} samples/s; "
        f"base classifier clean accuracy {clean:.4f}"
    )
    print(
        f"abstained on {int(np.sum(classes == ABSTAIN))} images; "
        f"largest radius possible here: {args.sigma * _phi_inverse(args.alpha ** (1 / args.n)):.3f}"
    )
    print(f"\n{'radius':>8}  certified accuracy")
    for radius in RADII:
        print(f"{radius:>8.2f}  {certified_accuracy(classes, radii, labels, radius):.3f}")
    if args.plot:
        write_plot(args.plot, classes, radii, labels, args.sigma)
        print(f"\nwrote {args.plot}")
    return classes, radii


def _phi_inverse(p):
    from scipy.stats import norm

    return float(norm.ppf(p))


if __name__ == "__main__":
    main()
