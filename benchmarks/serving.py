"""Serving latency and throughput of CD-ResNet-20: ONNX Runtime, SavedModel, Keras.

Exports a CD-ResNet-20 (sigma 0.1, noise-free inference graph) with
keras_cd.export, then, in one run and on the same inputs, times one inference
call at batch 1 and batch 64 in ONNX Runtime, in the TensorFlow SavedModel
(`tf.saved_model.load`, serving_default) and with Keras `model.predict`,
interleaving the three runtimes call by call. Prints p50/p99 latency and
throughput side by side, and the ratio Keras predict / ONNX Runtime at batch 1.

Then a bounded load test: `export/serve.py` runs in a second process on
127.0.0.1 and `--clients` concurrent clients send `--requests` predict
requests in all (batch 1, keep-alive connections); it reports failed
requests (target: none), requests/second and latency percentiles.

    python benchmarks/serving.py
    python benchmarks/serving.py --runs 200 --clients 16 --requests 2000
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def percentile(values, q):
    return float(np.percentile(np.asarray(values) * 1000, q))


def time_runtimes(runtimes, x, runs):
    for run in runtimes.values():  # warm-up
        for _ in range(3):
            run(x)
    latencies = {name: [] for name in runtimes}
    for _ in range(runs):
        for name, run in runtimes.items():
            start = time.perf_counter()
            run(x)
            latencies[name].append(time.perf_counter() - start)
    return latencies


def load_test(onnx_path, clients, requests, image):
    server = subprocess.Popen(
        [
            sys.executable,
            os.path.join(ROOT, "export", "serve.py"),
            onnx_path,
            "--name",
            "cd_resnet",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()
        if not line.startswith("serving"):
            raise RuntimeError(f"server did not start: {line}{server.stderr.read()}")
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        body = json.dumps({"instances": [image.tolist()]})
        counter = iter(range(requests))
        lock = threading.Lock()
        latencies, failures = [], []

        def client():
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            while True:
                with lock:
                    if next(counter, None) is None:
                        break
                start = time.perf_counter()
                try:
                    connection.request(
                        "POST",
                        "/v1/models/cd_resnet:predict",
                        body=body,
                        headers={"Content-Type": "application/json"},
                    )
                    response = connection.getresponse()
                    payload = response.read()
                    ok = response.status == 200 and len(json.loads(payload)["predictions"]) == 1
                except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
                    ok, payload = False, str(error).encode()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                with lock:
                    (latencies if ok else failures).append(time.perf_counter() - start)
            connection.close()

        threads = [threading.Thread(target=client) for _ in range(clients)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
        return {
            "ok": len(latencies),
            "failed": len(failures),
            "seconds": elapsed,
            "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs", type=int, default=100, help="timed calls per runtime and batch size"
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()

    import onnxruntime
    import tensorflow as tf

    import keras_cd
    from keras_cd import export

    model = keras_cd.models.cd_resnet(depth=20, sigma=0.1, seed=0)
    directory = tempfile.mkdtemp(prefix="keras_cd_serving_")
    onnx_report = export.to_onnx(model, os.path.join(directory, "cd_resnet20.onnx"))
    saved_report = export.to_saved_model(model, os.path.join(directory, "saved"))
    print(
        f"CD-ResNet-20 exported; parity max |diff|: ONNX {onnx_report.max_abs_diff:.2g}, "
        f"SavedModel {saved_report.max_abs_diff:.2g}"
    )
    session = onnxruntime.InferenceSession(onnx_report.path, providers=["CPUExecutionProvider"])
    signature = tf.saved_model.load(saved_report.path).signatures["serving_default"]
    runtimes = {
        "ONNX Runtime": lambda x: session.run(None, {"images": x}),
        "SavedModel": lambda x: signature(images=tf.constant(x)),
        "Keras predict": lambda x: model.predict(x, verbose=0, batch_size=len(x)),
    }
    rng = np.random.default_rng(0)
    print(f"\n{'runtime':<15}{'batch':>6}{'p50 ms':>10}{'p99 ms':>10}{'images/s':>11}")
    p50 = {}
    for batch in (1, 64):
        x = rng.normal(size=(batch, 32, 32, 3)).astype("float32")
        for name, latencies in time_runtimes(runtimes, x, args.runs).items():
            p50[name, batch] = percentile(latencies, 50)
            rate = batch * len(latencies) / sum(latencies)
            print(
                f"{name:<15}{batch:>6}{p50[name, batch]:>10.2f}{percentile(latencies, 99):>10.2f}"
                f"{rate:>11.1f}",
                flush=True,
            )
    for batch in (1, 64):
        print(
            f"batch {batch}: Keras predict p50 / ONNX Runtime p50 = "
            f"{p50['Keras predict', batch] / p50['ONNX Runtime', batch]:.1f}x; "
            "SavedModel / ONNX Runtime = "
            f"{p50['SavedModel', batch] / p50['ONNX Runtime', batch]:.1f}x"
        )

    image = rng.normal(size=(32, 32, 3)).astype("float32")
    result = load_test(onnx_report.path, args.clients, args.requests, image)
    print(
        f"\nload test: export/serve.py in a second process, {args.clients} concurrent clients, "
        f"{args.requests} requests at batch 1"
    )
    print(
        f"failed requests: {result['failed']} of {args.requests}; "
        f"{result['ok'] / result['seconds']:.1f} requests/s; "
        f"latency p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms"
    )


if __name__ == "__main__":
    from keras_cd import reporting

    results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    with reporting.record(reporting.result_name(__file__, sys.argv[1:]), results):
        main()
