"""Serving CD-ResNet-20: runtimes in process, then the previous and the new server side by side.

Exports a CD-ResNet-20 (sigma 0.1, noise-free inference graph) with
keras_cd.export, then:

1. Times one inference call at batch 1 and batch 64 in ONNX Runtime, in the
   TensorFlow SavedModel (`tf.saved_model.load`, serving_default) and with
   Keras `model.predict`, interleaved call by call (p50/p99, images/s).
2. Load-tests the previous server (`benchmarks/legacy_server.py`, the old
   `export/serve.py`: http.server, a thread per connection; run with
   `--max-workers 64` so that 64 clients are not refused by design) and
   `keras-cd-serve` (Starlette on uvicorn, dynamic batching with its default
   flags) on the same ONNX file, each in its own process on 127.0.0.1:
   1, 8 and 64 concurrent keep-alive clients send batch-1 predict requests
   for `--seconds` each (after a warm-up); requests/s, p50, p99, failed
   requests, and keras-cd-serve's throughput at 64 clients as a share of
   in-process ONNX Runtime's batch-64 images/s (target >= 60%).
3. Start-up time (process start to the first answered status request) and
   resident memory (at start and at its peak after the load) of both servers.
4. Faults, on both servers: 1,000 idle connections plus 200 half-sent
   requests, then valid requests on a new connection (target: 200 in under
   1 s); and for keras-cd-serve, SIGTERM in the middle of a 64-client load
   (target: no accepted request fails; the server's own count of accepted
   and answered requests is printed beside the clients').

The clients are one asyncio loop in this process (raw HTTP/1.1, so that
the load generator costs little CPU); on a machine with few cores they
still compete with the server, and so does anything else running.

    python benchmarks/serving.py
    python benchmarks/serving.py --seconds 20 --runs 200
"""

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = "cd_resnet"
TARGET_SHARE, TARGET_P99_MS, TARGET_FLOOD_S = 0.60, 15.0, 1.0


def percentile(values, q):
    return float(np.percentile(np.asarray(values) * 1000, q)) if len(values) else float("nan")


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


def raise_open_files_limit():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_mb(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class ServerProcess:
    """A server in its own process; `port` parsed from its 'serving ... on http://' line."""

    def __init__(self, command):
        self.log = tempfile.TemporaryFile(mode="w+")
        start = time.perf_counter()
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("serving"):
            self.log.seek(0)
            raise RuntimeError(f"server did not start: {line}{self.log.read()}")
        self.port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        while asyncio.run(request_once(self.port, get(f"/v1/models/{NAME}")))[0] != 200:
            time.sleep(0.01)
        self.startup_s = time.perf_counter() - start
        self.rss_start_mb = rss_mb(self.process.pid)

    @property
    def pid(self):
        return self.process.pid

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            rest, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            rest, _ = self.process.communicate()
        return rest


def get(path):
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def post(path, body):
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class NotAnswered(Exception):
    """The connection closed before the first byte of an answer: the request was not accepted."""


async def read_response(reader):
    """(status, headers, body) of one HTTP/1.1 response; raises on a broken one."""
    try:
        status_line = await reader.readline()
    except ConnectionError as error:
        raise NotAnswered(str(error)) from error
    if not status_line:
        raise NotAnswered("closed before any answer")
    status = int(status_line.split()[1])
    headers = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            break
        if not line:
            raise asyncio.IncompleteReadError(b"", None)
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", 0)))
    return status, headers, body


async def request_once(port, data, timeout=10):
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    except OSError:
        return None, None
    try:
        writer.write(data)
        status, _, body = await asyncio.wait_for(read_response(reader), timeout)
        return status, body
    except (OSError, NotAnswered, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
        return None, None
    finally:
        writer.close()


class Tally:
    def __init__(self):
        self.latencies, self.failed, self.not_accepted, self.refused = [], 0, 0, 0
        self.measuring = False


async def client(port, data, tally, stop, keep_going_on_refusal=False):
    """A keep-alive client sending `data` until `stop` is set; reconnects as needed."""
    reader = writer = None
    while not stop.is_set():
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                tally.refused += 1
                if not keep_going_on_refusal:
                    return
                await asyncio.sleep(0.05)
                continue
        start = time.perf_counter()
        try:
            writer.write(data)
            status, headers, body = await read_response(reader)
            ok = status == 200 and len(json.loads(body)["predictions"]) == 1
            if headers.get("connection", "").lower() == "close":
                writer.close()
                writer = None
        except NotAnswered:
            tally.not_accepted += 1  # closed before any byte of an answer: never accepted
            writer.close()
            writer = None
            continue
        except (OSError, asyncio.IncompleteReadError, ValueError, KeyError):
            ok = False
            writer.close()
            writer = None
        if tally.measuring:
            if ok:
                tally.latencies.append(time.perf_counter() - start)
            else:
                tally.failed += 1
    if writer is not None:
        writer.close()


async def load(port, body, clients, seconds, warmup):
    """`clients` concurrent keep-alive clients for `warmup` + `seconds` seconds."""
    data = post(f"/v1/models/{NAME}:predict", body)
    tally, stop = Tally(), asyncio.Event()
    tasks = [asyncio.create_task(client(port, data, tally, stop, True)) for _ in range(clients)]
    await asyncio.sleep(warmup)
    tally.measuring, start = True, time.perf_counter()
    await asyncio.sleep(seconds)
    tally.measuring, elapsed = False, time.perf_counter() - start
    stop.set()
    await asyncio.gather(*tasks)
    return {
        "clients": clients,
        "ok": len(tally.latencies),
        "failed": tally.failed,
        "requests_per_s": len(tally.latencies) / elapsed,
        "p50_ms": percentile(tally.latencies, 50),
        "p99_ms": percentile(tally.latencies, 99),
    }


async def flood(port, body, idle=1000, half_sent=200, probes=5):
    """`idle` idle connections and `half_sent` half-sent requests, then valid requests."""

    async def connect(prefix):
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
        except (OSError, asyncio.TimeoutError):
            return None
        if prefix:
            writer.write(prefix)
        return writer

    half = f"POST /v1/models/{NAME}:predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le".encode()
    writers = await asyncio.gather(
        *[connect(b"") for _ in range(idle)], *[connect(half) for _ in range(half_sent)]
    )
    opened = sum(w is not None for w in writers)
    await asyncio.sleep(0.2)
    results = []
    for _ in range(probes):
        start = time.perf_counter()
        status, _ = await request_once(port, post(f"/v1/models/{NAME}:predict", body), timeout=10)
        results.append((status, time.perf_counter() - start))
    for writer in writers:
        if writer is not None:
            writer.close()
    return {
        "connections_opened": opened,
        "statuses": [s for s, _ in results],
        "worst_s": max(t for _, t in results),
    }


async def sigterm_under_load(server, body, clients=64, before=2.0):
    """SIGTERM after `before` seconds of load; clients go on until refused."""
    data = post(f"/v1/models/{NAME}:predict", body)
    tally, stop = Tally(), asyncio.Event()
    tally.measuring = True
    tasks = [asyncio.create_task(client(server.port, data, tally, stop)) for _ in range(clients)]
    await asyncio.sleep(before)
    server.process.send_signal(signal.SIGTERM)
    done, _ = await asyncio.wait(tasks, timeout=60)
    stop.set()
    await asyncio.gather(*tasks)
    return tally


def load_cells(server, body, client_counts, seconds):
    rows = []
    for clients in client_counts:
        rows.append(asyncio.run(load(server.port, body, clients, seconds, warmup=1.0)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs", type=int, default=100, help="timed calls per runtime and batch size"
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="measured seconds per load-test cell"
    )
    parser.add_argument(
        "--clients", default="1,8,64", help="concurrent clients of the load-test cells"
    )
    parser.add_argument(
        "--onnx",
        default=None,
        help="an exported CD-ResNet-20 (.onnx) to serve instead of exporting one; skips the "
        "SavedModel and Keras timings",
    )
    args = parser.parse_args()
    client_counts = [int(c) for c in args.clients.split(",")]
    raise_open_files_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    import onnxruntime

    if args.onnx is None:
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
        onnx_path = onnx_report.path
        signature = tf.saved_model.load(saved_report.path).signatures["serving_default"]
        runtimes = {
            "SavedModel": lambda x: signature(images=tf.constant(x)),
            "Keras predict": lambda x: model.predict(x, verbose=0, batch_size=len(x)),
        }
    else:
        onnx_path, runtimes = args.onnx, {}
    session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    runtimes = {"ONNX Runtime": lambda x: session.run(None, {"images": x}), **runtimes}
    rng = np.random.default_rng(0)
    print(f"\n{'runtime':<15}{'batch':>6}{'p50 ms':>10}{'p99 ms':>10}{'images/s':>11}")
    p50, rate = {}, {}
    for batch in (1, 64):
        x = rng.normal(size=(batch, 32, 32, 3)).astype("float32")
        for name, latencies in time_runtimes(runtimes, x, args.runs).items():
            p50[name, batch] = percentile(latencies, 50)
            rate[name, batch] = batch * len(latencies) / sum(latencies)
            print(
                f"{name:<15}{batch:>6}{p50[name, batch]:>10.2f}{percentile(latencies, 99):>10.2f}"
                f"{rate[name, batch]:>11.1f}",
                flush=True,
            )
    for batch in (1, 64) if len(runtimes) == 3 else ():
        print(
            f"batch {batch}: Keras predict p50 / ONNX Runtime p50 = "
            f"{p50['Keras predict', batch] / p50['ONNX Runtime', batch]:.1f}x; "
            "SavedModel / ONNX Runtime = "
            f"{p50['SavedModel', batch] / p50['ONNX Runtime', batch]:.1f}x"
        )

    image = rng.normal(size=(32, 32, 3)).astype("float32")
    body = json.dumps({"instances": [image.tolist()]}).encode()
    servers = {
        "export/serve.py (previous)": [
            sys.executable,
            os.path.join(HERE, "legacy_server.py"),
            onnx_path,
            "--max-workers",
            str(max(client_counts)),
        ],
        "keras-cd-serve": [sys.executable, "-m", "keras_cd.serving", onnx_path],
    }
    results = {}
    for label, command in servers.items():
        server = ServerProcess(command + ["--name", NAME, "--port", "0"])
        try:
            cells = load_cells(server, body, client_counts, args.seconds)
            peak = rss_mb(server.pid, "VmHWM")
            flooded = asyncio.run(flood(server.port, body))
        finally:
            server.stop()
        results[label] = {
            "load": cells,
            "startup_s": server.startup_s,
            "rss_start_mb": server.rss_start_mb,
            "rss_peak_mb": peak,
            "flood": flooded,
        }

    print(
        f"\nload test: batch-1 predict requests, keep-alive clients, {args.seconds:g} s per "
        "cell after 1 s of warm-up, each server in its own process on 127.0.0.1"
    )
    print(f"{'server':<28}{'clients':>8}{'requests/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'failed':>8}")
    for label, result in results.items():
        for cell in result["load"]:
            print(
                f"{label:<28}{cell['clients']:>8}{cell['requests_per_s']:>12.1f}"
                f"{cell['p50_ms']:>9.1f}{cell['p99_ms']:>9.1f}{cell['failed']:>8}"
            )
    new = results["keras-cd-serve"]
    by_clients = {cell["clients"]: cell for cell in new["load"]}
    ort64 = rate["ONNX Runtime", 64]
    share = by_clients[64]["requests_per_s"] / ort64 if 64 in by_clients else None
    if share is not None:
        print(
            f"keras-cd-serve at 64 clients: {by_clients[64]['requests_per_s']:.1f} requests/s = "
            f"{share:.1%} of in-process ONNX Runtime at batch 64 ({ort64:.1f} images/s); "
            f"target >= {TARGET_SHARE:.0%}: {'met' if share >= TARGET_SHARE else 'MISSED'}"
        )
    if 8 in by_clients:
        p99 = by_clients[8]["p99_ms"]
        print(
            f"keras-cd-serve at 8 clients: p99 {p99:.1f} ms; target <= {TARGET_P99_MS:g} ms: "
            f"{'met' if p99 <= TARGET_P99_MS else 'MISSED'}"
        )
    failed = sum(cell["failed"] for cell in new["load"])
    print(f"keras-cd-serve failed requests in the load test: {failed} (target 0)")

    print(f"\n{'server':<28}{'start-up s':>11}{'RSS MB at start':>17}{'RSS MB peak':>13}")
    for label, result in results.items():
        print(
            f"{label:<28}{result['startup_s']:>11.2f}{result['rss_start_mb'] or 0:>17.1f}"
            f"{result['rss_peak_mb'] or 0:>13.1f}"
        )

    print("\n1,000 idle connections + 200 half-sent requests, then 5 valid requests:")
    for label, result in results.items():
        flooded = result["flood"]
        print(
            f"{label:<28}{flooded['connections_opened']} connections opened; answers "
            f"{flooded['statuses']}; slowest {flooded['worst_s'] * 1000:.0f} ms"
        )
    flooded = new["flood"]
    flood_met = all(s == 200 for s in flooded["statuses"]) and flooded["worst_s"] < TARGET_FLOOD_S
    print(f"keras-cd-serve target (200 in under 1 s): {'met' if flood_met else 'MISSED'}")

    server = ServerProcess(servers["keras-cd-serve"] + ["--name", NAME, "--port", "0"])
    tally = asyncio.run(sigterm_under_load(server, body))
    summary = server.process.communicate(timeout=120)[0].strip().splitlines()
    stopped = [line for line in summary if line.startswith("stopped:")]
    exit_code = server.process.returncode
    print(
        f"\nSIGTERM after 2 s of 64-client load on keras-cd-serve: {len(tally.latencies)} "
        f"answered 200, {tally.failed} failed, {tally.not_accepted} closed before being "
        f"accepted, {tally.refused} connections refused after the listener closed; server exit "
        f"code {exit_code}, its own count: {stopped[0] if stopped else 'none printed'}"
    )
    print(f"target (no accepted request fails): {'met' if tally.failed == 0 else 'MISSED'}")

    return {
        "runtimes": {f"{name} batch {batch}": rate[name, batch] for name, batch in rate},
        "servers": results,
        "share_of_onnx_runtime_batch_64": share,
        "sigterm": {
            "answered": len(tally.latencies),
            "failed": tally.failed,
            "not_accepted": tally.not_accepted,
            "refused": tally.refused,
            "server": stopped[0] if stopped else None,
            "exit_code": exit_code,
        },
    }


if __name__ == "__main__":
    from keras_cd import reporting

    results = os.path.join(HERE, "results")
    name = reporting.result_name(__file__, sys.argv[1:])
    if "--onnx" in sys.argv:  # a partial table (no SavedModel, no Keras): kept apart
        name += "--onnx"
    with reporting.record(name, results) as entry:
        entry.figures.update(main())
