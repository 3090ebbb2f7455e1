"""Training-step throughput: CD-ResNet against the same network with sigma=0.

Both models are built from the same weights and trained on the same random
CIFAR-shaped batch with the He et al. optimizer; their compiled train steps
are timed alternately (plain, CD, plain, CD, ...) in one process so that
machine load affects both alike. Prints images/second per round and the
median ratio CD / plain (target: >= 0.95, i.e. diffusion costs < 5%).
It then times drawing one step's noise alone (all blocks' outputs), and
the uniform random numbers it is made from alone, as a share of the plain
step: the second is the floor any exact Gaussian sampler built on
TensorFlow's counter-based generator pays.

    python benchmarks/train_step.py                  # ResNet-20, batch 128
    python benchmarks/train_step.py --depth 56 --rounds 7
    KERAS_BACKEND=jax python benchmarks/train_step.py   # any Keras 3 backend
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_cd  # noqa: E402


def build(sigma, depth, weights=None):
    model = keras_cd.models.cd_resnet(depth=depth, sigma=sigma, seed=0)
    if weights is not None:
        model.set_weights(weights)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy"
    )
    return model


def images_per_second(model, x, y, steps):
    model.train_on_batch(x, y)  # make sure the step is compiled and warm
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * len(x) / (time.perf_counter() - start)


def noise_draw_seconds(model, batch_size, repeats=10):
    """Seconds to draw one training step's noise: sampler, uniforms only (TensorFlow)."""
    import tensorflow as tf

    shapes = [
        (batch_size,)
        + tuple(layer.compute_output_shape((None,) + tuple(layer.input.shape[1:]))[1:])
        for layer in model.layers
        if isinstance(layer, keras_cd.CDBlock)
    ]
    noise = keras_cd.DiffusionNoise(0.1, seed=0)  # the layer every CDBlock ends with
    zeros = [tf.zeros(shape) for shape in shapes]

    @tf.function
    def gaussians():
        return [noise(z, training=True) for z in zeros]

    counter = tf.Variable([0, 0], dtype="int32")  # a fresh seed per call: nothing to fold away

    @tf.function
    def uniforms():  # as many Philox uniforms as the Box-Muller sampler draws
        seed = counter.assign_add([0, 1])
        return [tf.random.stateless_uniform(shape, seed, alg="philox") for shape in shapes]

    def timed(function):
        function()
        start = time.perf_counter()
        for _ in range(repeats):
            function()  # runs to completion on the CPU; no copy back
        return (time.perf_counter() - start) / repeats

    return sum(int(np.prod(shape)) for shape in shapes), timed(gaussians), timed(uniforms)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--sigma", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per model per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch_size, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=(args.batch_size,))
    plain = build(0.0, args.depth)
    diffusive = build(args.sigma, args.depth, plain.get_weights())
    print(
        f"backend {keras.backend.backend()}; ResNet-{args.depth}; batch {args.batch_size}; "
        f"{args.steps} steps x {args.rounds} rounds, alternating"
    )
    ratios, plain_rates = [], []
    for round_index in range(args.rounds):
        plain_rate = images_per_second(plain, x, y, args.steps)
        cd_rate = images_per_second(diffusive, x, y, args.steps)
        ratios.append(cd_rate / plain_rate)
        plain_rates.append(plain_rate)
        print(
            f"round {round_index + 1}: plain {plain_rate:8.1f} img/s   CD (sigma={args.sigma:g}) "
            f"{cd_rate:8.1f} img/s   ratio {ratios[-1]:.3f}",
            flush=True,
        )
    median = statistics.median(ratios)
    print(
        f"median throughput ratio CD / plain: {median:.3f} "
        f"({'within' if median >= 0.95 else 'outside'} the 5% target)"
    )
    plain_step = args.batch_size / statistics.median(plain_rates)
    if keras.backend.backend() != "tensorflow":
        print("(the noise breakdown below is measured on the TensorFlow backend only)")
        return
    count, gaussian_time, uniform_time = noise_draw_seconds(diffusive, args.batch_size)
    print(
        f"one step's noise: {count / 1e6:.1f}M values; drawing it takes "
        f"{gaussian_time * 1e3:.1f} ms = {gaussian_time / plain_step:.1%} of a plain step "
        f"({plain_step * 1e3:.0f} ms); the uniforms alone {uniform_time * 1e3:.1f} ms "
        f"= {uniform_time / plain_step:.1%}"
    )


if __name__ == "__main__":
    from keras_cd import reporting

    results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    with reporting.record(reporting.result_name(__file__, sys.argv[1:]), results):
        main()
