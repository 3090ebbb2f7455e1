"""CD-ResNet against the plain ResNet (sigma=0) on scikit-learn's digits.

Checks the claim of the paper and of EnResNet, that diffusion (noise in the
residual stream, averaged at inference) improves robustness, on real data that
installs with scikit-learn. For each seed both networks start from the same
weights and see the same batches; the test set (30%, stratified) is scored:

- clean: deterministic inference, and Monte-Carlo (mean softmax over
  `--mc-samples` noisy passes, `keras_cd.monte_carlo()`);
- Gaussian input noise of std `--input-noise` (pixels in [0, 1]);
- FGSM and 10-step PGD (L-infinity, step eps/4, random start) at `--eps`.
  The plain network is attacked deterministically; the CD network is attacked
  through its Monte-Carlo mean (expectation over transformation: the gradient
  of the loss averaged over `--attack-samples` noisy passes) and scored with
  Monte-Carlo inference, so the defence is not credited for gradient noise.

Prints one row per (model, seed) and the mean and standard deviation over
seeds, side by side.

    python benchmarks/cd_vs_plain.py
    python benchmarks/cd_vs_plain.py --seeds 5 --sigma 0.2 --eps 0.1
"""

import argparse
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402  (attacks need gradients w.r.t. inputs)

import keras_cd  # noqa: E402

COLUMNS = ("clean", "clean MC", "noise", "FGSM", "PGD")


def train(sigma, weights, x, y, args, seed):
    model = keras_cd.models.cd_resnet(
        depth=args.depth, sigma=sigma, input_shape=(8, 8, 1), seed=seed * 1000
    )
    model.set_weights(weights)
    keras.utils.set_random_seed(seed)  # same batch order for both networks
    model.compile(optimizer=keras.optimizers.Adam(args.lr), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=64, epochs=args.epochs, verbose=0)
    return model


def probabilities(model, x, samples):
    """Deterministic softmax (samples=0) or the Monte-Carlo mean."""
    if samples == 0:
        return model(x, training=False)
    with keras_cd.monte_carlo():
        return tf.add_n([model(x, training=False) for _ in range(samples)]) / samples


def accuracy(model, x, y, samples):
    return float(np.mean(np.argmax(np.asarray(probabilities(model, x, samples)), -1) == y))


def loss_gradient_sign(model, x, y, samples):
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = keras.losses.sparse_categorical_crossentropy(y, probabilities(model, x, samples))
    return tf.sign(tape.gradient(loss, x))


def fgsm(model, x, y, eps, samples):
    return tf.clip_by_value(x + eps * loss_gradient_sign(model, x, y, samples), 0.0, 1.0)


def pgd(model, x, y, eps, samples, steps, seed):
    rng = np.random.default_rng(seed)
    adversarial = np.clip(x + rng.uniform(-eps, eps, x.shape).astype("float32"), 0, 1)
    for _ in range(steps):
        adversarial = adversarial + eps / 4 * loss_gradient_sign(model, adversarial, y, samples)
        adversarial = tf.clip_by_value(tf.clip_by_value(adversarial, x - eps, x + eps), 0.0, 1.0)
    return adversarial


def evaluate(model, x, y, args, seed, diffusive):
    eval_samples = args.mc_samples if diffusive else 0
    attack_samples = args.attack_samples if diffusive else 0
    noisy = np.clip(x + args.input_noise * np.random.default_rng(seed).normal(size=x.shape), 0, 1)
    return {
        "clean": accuracy(model, x, y, 0),
        "clean MC": accuracy(model, x, y, args.mc_samples),
        "noise": accuracy(model, noisy.astype("float32"), y, eval_samples),
        "FGSM": accuracy(model, fgsm(model, x, y, args.eps, attack_samples), y, eval_samples),
        "PGD": accuracy(
            model, pgd(model, x, y, args.eps, attack_samples, args.pgd_steps, seed), y, eval_samples
        ),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sigma", type=float, default=0.2)
    parser.add_argument("--depth", type=int, default=14)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--mc-samples", type=int, default=16)
    parser.add_argument("--attack-samples", type=int, default=4)
    parser.add_argument("--input-noise", type=float, default=0.3)
    parser.add_argument("--eps", type=float, default=0.05)
    parser.add_argument("--pgd-steps", type=int, default=10)
    args = parser.parse_args()

    rows = {"plain": [], "CD": []}
    print(
        f"digits; ResNet-{args.depth}; CD sigma={args.sigma:g}; noise std {args.input_noise:g}; "
        f"L-inf eps {args.eps:g}; {args.mc_samples} MC samples; {args.seeds} seeds"
    )
    print(f"{'model':<8}{'seed':>5}" + "".join(f"{c:>10}" for c in COLUMNS))
    for seed in range(args.seeds):
        x_train, x_test, y_train, y_test = keras_cd.datasets.load_digits(seed)
        keras.utils.set_random_seed(seed)
        # Both networks start from the same initial weights.
        weights = keras_cd.models.cd_resnet(
            depth=args.depth, sigma=0.0, input_shape=(8, 8, 1)
        ).get_weights()
        plain = train(0.0, weights, x_train, y_train, args, seed)
        diffusive = train(args.sigma, weights, x_train, y_train, args, seed)
        for name, model in (("plain", plain), ("CD", diffusive)):
            result = evaluate(model, x_test, y_test, args, seed, diffusive=name == "CD")
            rows[name].append(result)
            print(
                f"{name:<8}{seed:>5}" + "".join(f"{result[c]:>10.4f}" for c in COLUMNS), flush=True
            )
    print("\nmean ± std over seeds")
    for name, results in rows.items():
        cells = []
        for column in COLUMNS:
            values = [r[column] for r in results]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.4f}±{spread:.4f}")
        print(f"{name:<8}" + "".join(f"{c:>16}" for c in cells))


if __name__ == "__main__":
    from keras_cd import reporting

    results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    with reporting.record(reporting.result_name(__file__, sys.argv[1:]), results):
        main()
