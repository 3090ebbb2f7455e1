"""Certification throughput: Gaussian-smoothing samples against plain batched predict.

`SmoothedClassifier.sample_counts` (what CERTIFY and PREDICT spend their time
in) pushes noisy copies of each input through the base model in batches,
drawing the noise on the device. This script times it against the base
model's own batched inference (`predict_on_batch` on the same number of
distinct inputs, same batch size), alternating the two over several rounds,
and prints samples per second for both and their median ratio (target:
>= 0.8, i.e. the sampling overhead is under 20%).

    python benchmarks/smoothing.py                   # ResNet-8 on 8x8x1 digits
    python benchmarks/smoothing.py --shape cifar     # ResNet-20 on 32x32x3
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import keras_cd  # noqa: E402
from keras_cd.smoothing import SmoothedClassifier  # noqa: E402

SHAPES = {"digits": ((8, 8, 1), 8), "cifar": ((32, 32, 3), 20)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="digits")
    parser.add_argument("--inputs", type=int, default=20, help="inputs to certify per round")
    parser.add_argument("--samples", type=int, default=2000, help="noisy copies per input")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    shape, depth = SHAPES[args.shape]
    model = keras_cd.models.cd_resnet(depth=depth, sigma=0.0, input_shape=shape, seed=0)
    smoothed = SmoothedClassifier(model, 0.25, 10, batch_size=args.batch_size, seed=0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.inputs,) + shape).astype("float32")
    total = args.inputs * args.samples
    distinct = rng.normal(size=(total,) + shape).astype("float32")

    def plain():
        for start in range(0, total, args.batch_size):
            model.predict_on_batch(distinct[start : start + args.batch_size])

    def smoothing():
        smoothed.sample_counts(x, args.samples)

    plain()
    smoothing()  # compile both
    print(
        f"ResNet-{depth} on {shape}; {total} samples per round ({args.inputs} inputs x "
        f"{args.samples}); batch {args.batch_size}"
    )
    ratios = []
    for round_index in range(args.rounds):
        rates = {}
        for name, run in (("predict", plain), ("smoothing", smoothing)):
            start = time.perf_counter()
            run()
            rates[name] = total / (time.perf_counter() - start)
        ratios.append(rates["smoothing"] / rates["predict"])
        print(
            f"round {round_index + 1}: batched predict {rates['predict']:9.0f} samples/s   "
            f"smoothing {rates['smoothing']:9.0f} samples/s   ratio {ratios[-1]:.3f}",
            flush=True,
        )
    median = statistics.median(ratios)
    print(
        f"median ratio smoothing / predict: {median:.3f} "
        f"({'within' if median >= 0.8 else 'outside'} the 20% target)"
    )


if __name__ == "__main__":
    from keras_cd import reporting

    results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    with reporting.record(reporting.result_name(__file__, sys.argv[1:]), results):
        main()
