"""Graph diffusion at scale: COIN on Cora, edge-list diffusion, kNN graph building.

Prints, side by side in one run:

1. COIN on Cora (`keras_cd.node_classification.NodeClassificationTrainer`: Adam, early stopping)
   with num_steps 20 and 0: mean test accuracy and seconds per training run,
   over `--cora-runs` random splits (the first run of each includes the XLA
   compilation, reported separately);
2. the time of one explicit diffusion step u - sigma2 * L u through the
   edge list (gather + segment_sum; keras_cd.GraphDiffusion under
   tf.function, with and without XLA) against scipy's CSR sparse-dense
   product L @ u, on a random graph of `--nodes` nodes and `--edges` edges
   with `--channels` channels;
3. time and peak memory (peak resident set above the resident set just
   before the call, the peak reset there; each in a fresh process) of building the Gaussian
   kNN graph Laplacian of
   `--points` random points in 64 dimensions with
   `keras_cd.graph.gaussian_knn_graph`, against scikit-learn's
   `kneighbors_graph` alone;
4. time and peak memory (measured the same way) of precomputing `--rows`
   exact rows of the 20-step explicit COIN diffusion operator
   (`keras_cd.graph.diffusion_rows(..., out=FILE.npy)`, `--block-size` rows
   at a time streamed to disk, in the system's temporary folder or
   $ROWS_DIR) on an undirected random graph of `--nodes` nodes and
   `--edges` edges, how dense they are, and P[rows] u against the diffusion
   of u on the whole graph.

    python benchmarks/graph_diffusion.py
    python benchmarks/graph_diffusion.py --cora-runs 10 --nodes 100000 --edges 1000000
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cora(args):
    from keras_cd import datasets
    from keras_cd.node_classification import NodeClassificationTrainer

    if not os.path.isfile(args.data):
        print(f"1. Cora: skipped, no file at {args.data} (set KERAS_CD_DATA or --data)")
        return
    print(f"1. COIN on Cora, {args.cora_runs} random splits x 1 initialisation each")
    print(
        f"{'num_steps':>10}{'test accuracy':>20}{'s/run (first)':>15}{'s/run (rest)':>14}"
        f"{'epochs':>8}"
    )
    data = datasets.load_gnnbench(args.data)
    for steps in (20, 0):
        trainer = NodeClassificationTrainer(data, num_steps=steps)
        results = [trainer.run(split, split) for split in range(args.cora_runs)]
        accuracies = [100 * r.test_accuracy for r in results]
        seconds = [r.seconds for r in results]
        rest = statistics.mean(seconds[1:]) if len(seconds) > 1 else float("nan")
        spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        print(
            f"{steps:>10}{statistics.mean(accuracies):>13.2f} ± {spread:4.2f}{seconds[0]:>15.2f}"
            f"{rest:>14.2f}{statistics.mean(r.epochs for r in results):>8.0f}",
            flush=True,
        )


def diffusion_step(args):
    import numpy as np
    import scipy.sparse as sp
    import tensorflow as tf

    import keras_cd

    rng = np.random.default_rng(0)
    senders = rng.integers(0, args.nodes, args.edges).astype("int32")
    receivers = np.sort(rng.integers(0, args.nodes, args.edges)).astype("int32")
    weights = rng.random(args.edges).astype("float32")
    u = rng.normal(size=(args.nodes, args.channels)).astype("float32")
    matrix = sp.csr_matrix((weights, (receivers, senders)), shape=(args.nodes, args.nodes))
    layer = keras_cd.GraphDiffusion(1, 0.1)
    edges = tuple(tf.constant(a) for a in (senders, receivers, weights))
    u_tf = tf.constant(u)

    def best_of(run, repeats=5):
        run()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return min(times)

    scipy_step = best_of(lambda: u - 0.1 * (matrix @ u))
    rows = [("scipy CSR @ dense", scipy_step)]
    for jit in (False, True):
        step = tf.function(lambda x: layer(x, edges), jit_compile=jit)
        rows.append(
            (
                f"edge list, tf.function{' + XLA' if jit else ''}",
                best_of(lambda step=step: step(u_tf).numpy()),
            )
        )
        check = step(u_tf).numpy()
    error = float(np.abs(check - (u - 0.1 * (matrix @ u))).max())
    print(
        f"\n2. one diffusion step, {args.nodes:,} nodes, {args.edges:,} edges, "
        f"{args.channels} channels "
        f"(best of 5; max |edge list - scipy| = {error:.2g})"
    )
    for name, seconds in rows:
        print(f"{name:<34}{seconds * 1000:>10.1f} ms   {seconds / scipy_step:>5.2f}x scipy")


PEAK_MEMORY = """
def status_kb(field):
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith(field + ":"))
"""


def run_child(code, arguments, timeout, label=None):
    """Runs a child script in a fresh process; the JSON of its last line, or None
    (after printing why) when it failed."""
    result = subprocess.run(
        [sys.executable, "-c", code, *(str(a) for a in arguments)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode:
        print(f"{label + ': ' if label else ''}failed: {result.stderr[-500:]}")
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


KNN_CHILD = (
    PEAK_MEMORY
    + """
import json, sys, time
import numpy as np
method, points = sys.argv[1], int(sys.argv[2])
if method == "keras_cd":
    from keras_cd.graph import gaussian_knn_graph
else:
    from sklearn.neighbors import kneighbors_graph
x = np.random.default_rng(0).standard_normal((points, 64), dtype=np.float32)


baseline = status_kb("VmRSS")
# Reset the peak (VmHWM) to the current resident set: imports (TensorFlow's
# among them) can leave an earlier, unrelated high-water mark behind.
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")
start = time.perf_counter()
if method == "keras_cd":
    result = gaussian_knn_graph(x, 8, 4, format="scipy")
else:
    result = kneighbors_graph(x, 8, mode="distance")
seconds = time.perf_counter() - start
peak = status_kb("VmHWM")
print(json.dumps({"seconds": seconds, "peak_mb": (peak - baseline) / 1024, "nnz": int(result.nnz)}))
"""
)


def knn(args):
    print(
        f"\n3. Gaussian kNN graph of {args.points:,} points in 64 dimensions (k = 8), "
        "fresh process each"
    )
    print(f"{'method':<44}{'seconds':>9}{'peak MB':>9}{'nonzeros':>11}")
    for method, label in (
        ("keras_cd", "keras_cd.graph.gaussian_knn_graph (Laplacian)"),
        ("sklearn", "sklearn kneighbors_graph (distances only)"),
    ):
        row = run_child(KNN_CHILD, [method, args.points], 1800, label)
        if row is None:
            continue
        print(
            f"{label:<44}{row['seconds']:>9.1f}{row['peak_mb']:>9.0f}{row['nnz']:>11,}", flush=True
        )


ROWS_CHILD = (
    PEAK_MEMORY
    + """
import json, os, sys, tempfile, time
import numpy as np
import scipy.sparse as sp
from keras_cd import graph
nodes, edges, count, block_size = (int(a) for a in sys.argv[1:5])
rng = np.random.default_rng(0)
pairs = rng.integers(0, nodes, (edges, 2))
adjacency = sp.csr_matrix((np.ones(edges, np.float32), (pairs[:, 0], pairs[:, 1])), (nodes, nodes))
adjacency = ((adjacency + adjacency.T) > 0).astype(np.float32)
laplacian = graph.laplacian(adjacency, "coin", format="scipy")
rows = rng.choice(nodes, count, replace=False)
del adjacency, pairs
with tempfile.TemporaryDirectory(dir=os.environ.get("ROWS_DIR")) as directory:
    path = os.path.join(directory, "rows.npy")
    baseline = status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    start = time.perf_counter()
    result = graph.diffusion_rows(laplacian, rows, 20, 0.3, block_size=block_size, out=path)
    seconds = time.perf_counter() - start
    peak = status_kb("VmHWM")
    # exact: P[rows] u against 20 steps of u - 0.3 L u on the whole graph, for 2 vectors u
    values = rng.standard_normal((nodes, 2))
    expected = graph.diffuse(laplacian, values, 20, 0.3)[rows]
    got, nonzero, small = np.zeros((count, 2)), 0, 0
    for start in range(0, count, 100):
        block = np.asarray(result[start : start + 100], dtype=np.float64)
        got[start : start + 100] = block @ values
        nonzero += int(np.count_nonzero(block))
        small += int(np.count_nonzero(np.abs(block) > 1e-4))
    print(json.dumps({
        "seconds": seconds, "peak_mb": (peak - baseline) / 1024,
        "file_mb": os.path.getsize(path) / 2**20, "laplacian_nnz": int(laplacian.nnz),
        "nonzero_fraction": nonzero / (count * nodes), "above_1e-4_per_row": small / count,
        "max_error": float(np.abs(got - expected).max()),
        "max_value": float(np.abs(expected).max()),
    }))
"""
)


def rows(args):
    print(
        f"\n4. {args.rows:,} exact rows of the COIN diffusion operator (20 explicit steps, "
        f"sigma2 0.3) streamed to a .npy file in blocks of {args.block_size}, random graph of "
        f"{args.nodes:,} nodes, {args.edges:,} edges, fresh process"
    )
    row = run_child(ROWS_CHILD, [args.nodes, args.edges, args.rows, args.block_size], 7200)
    if row is None:
        return
    print(
        f"seconds {row['seconds']:.1f}, peak MB {row['peak_mb']:.0f} (file {row['file_mb']:,.0f} "
        f"MB; L has {row['laplacian_nnz']:,} nonzeros); rows are dense: "
        f"{100 * row['nonzero_fraction']:.1f}% nonzero, {row['above_1e-4_per_row']:,.0f} entries "
        f"> 1e-4 per row; P[rows] u vs 20 steps on the whole graph: max |error| "
        f"{row['max_error']:.2g} (max |value| {row['max_value']:.2g})"
    )


def main():
    base = os.environ.get("KERAS_CD_DATA", os.path.join(ROOT, "..", "shared", "data"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.path.join(base, "cora.npz"))
    parser.add_argument("--cora-runs", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--edges", type=int, default=10_000_000)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--block-size", type=int, default=32, help="rows per block (section 4)")
    parser.add_argument("--only", choices=("cora", "step", "knn", "rows"), help="one section")
    args = parser.parse_args()
    sections = {"cora": cora, "step": diffusion_step, "knn": knn, "rows": rows}
    for name, section in sections.items():
        if args.only in (None, name):
            section(args)


if __name__ == "__main__":
    from keras_cd import reporting

    results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    with reporting.record(reporting.result_name(__file__, sys.argv[1:]), results):
        main()
