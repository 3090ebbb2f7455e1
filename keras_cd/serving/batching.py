"""Dynamic batching: concurrent requests merged into one ONNX Runtime call.

A served Monte-Carlo network answers many small requests, each one noisy
pass; merging them into one call keeps the cores busy, and since every
request carries its own noise rows, merging never shares noise between
requests. TensorFlow Serving's batching parameters are the reference: a batch closes
when it holds `max_batch_size` rows or when its oldest request has waited
`batch_timeout` seconds, whichever comes first; up to `num_threads` batches
run at once; at most `max_queue_size` requests wait to be batched, and one
more is refused (the server answers 503 with Retry-After). Requests are
merged only with requests to the same model version with the same inputs,
feature shapes and dtypes; the outputs are split back by row, so every
request gets exactly its own rows. A merged call that fails is run again
request by request, so that one bad request cannot fail the others.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import time
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from keras_cd.serving.metrics import Metrics
    from keras_cd.serving.model import OnnxModel, ParsedRequest


class QueueFull(Exception):
    """The inference queue holds `max_queue_size` requests; retry shortly.

    Raised by `Batcher.submit` instead of queueing one more request; the
    server answers it with `503 Service Unavailable` and `Retry-After`.

    Example:
    ```python
    try:
        outputs = await batcher.submit(model, request)
    except keras_cd.serving.QueueFull:
        ...  # answer 503 and ask the client to retry
    ```
    """


class _Item:
    __slots__ = ("model", "request", "future", "enqueued")

    def __init__(self, model, request, future, enqueued):
        self.model, self.request, self.future, self.enqueued = model, request, future, enqueued


class Batcher:
    """Merges concurrent requests into batches and runs them in worker threads.

    A batch closes when it holds `max_batch_size` rows or when its oldest
    request has waited `batch_timeout` seconds; it runs in a worker thread
    (`model.run(feeds)` on the rows of its requests, concatenated), and
    each request gets its own rows of every output back. Requests merge
    only with requests to the same model version with the same inputs,
    feature shapes and dtypes; a merged call that fails runs again request
    by request.

    Args:
        max_batch_size: int >= 1, the most rows of one call. A request with
            more rows runs alone.
        batch_timeout: float >= 0, seconds the oldest request of a batch
            waits for more rows; `0` runs whatever is queued as soon as a
            worker thread is free.
        max_queue_size: int >= 1, the most requests waiting to be batched.
        num_threads: int >= 1, batches run at once. Defaults to `1`.
        metrics: a `keras_cd.serving.Metrics`, or None. Defaults to `None`.

    Raises:
        ValueError: if an argument is out of range.

    Example:
    Three requests of 1, 2 and 3 rows run as one call of 6 rows, and each
    gets its own rows back.

    >>> import asyncio
    >>> import numpy as np, keras_cd
    >>> class Doubler:  # stands for an OnnxModel: run(feeds) -> list of outputs
    ...     calls = []
    ...     def run(self, feeds):
    ...         self.calls.append(len(feeds["x"]))
    ...         return [feeds["x"] * 2]
    >>> async def serve(model, requests):
    ...     batcher = keras_cd.serving.Batcher(
    ...         max_batch_size=8, batch_timeout=0.05, max_queue_size=16)
    ...     batcher.start()
    ...     outputs = await asyncio.gather(*(batcher.submit(model, r) for r in requests))
    ...     await batcher.stop()
    ...     return [o[0].ravel().tolist() for o in outputs]
    >>> model = Doubler()
    >>> requests = [
    ...     keras_cd.serving.ParsedRequest({"x": np.full((n, 1), n, "float32")}, True)
    ...     for n in (1, 2, 3)]
    >>> asyncio.run(serve(model, requests))
    [[2.0], [4.0, 4.0], [6.0, 6.0, 6.0]]
    >>> model.calls
    [6]
    """

    def __init__(
        self,
        max_batch_size: int,
        batch_timeout: float,
        max_queue_size: int,
        num_threads: int = 1,
        metrics: Metrics | None = None,
    ) -> None:
        for name, value, low in (
            ("max_batch_size", max_batch_size, 1),
            ("max_queue_size", max_queue_size, 1),
            ("num_threads", num_threads, 1),
            ("batch_timeout", batch_timeout, 0),
        ):
            if not value >= low:
                raise ValueError(
                    f"Invalid value for `{name}`: expected a number >= {low}. "
                    f"Received: {name}={value!r}."
                )
        self.max_batch_size = int(max_batch_size)
        self.batch_timeout = float(batch_timeout)
        self.max_queue_size = int(max_queue_size)
        self.num_threads = int(num_threads)
        self.metrics = metrics
        self._pending = collections.deque()
        self._rows = collections.Counter()  # (model, key) -> rows pending
        self._wakeup = None
        self._task = None
        self._running = set()
        self._executor = None

    @property
    def queue_depth(self) -> int:
        """Requests waiting to be batched."""
        return len(self._pending)

    @property
    def alive(self) -> bool:
        """Whether the batching loop runs."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Starts the batching loop on the running event loop."""
        self._wakeup = asyncio.Event()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            self.num_threads, thread_name_prefix="keras_cd-inference"
        )
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Finishes the running batches, then stops the loop and its threads."""
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._executor is not None:
            self._executor.shutdown(wait=False)  # no batch is left to run

    async def submit(self, model: OnnxModel, request: ParsedRequest) -> list[np.ndarray]:
        """Queues `request` for `model` and waits for its output rows.

        Args:
            model: an `OnnxModel` (anything with `run(feeds) -> outputs`).
            request: a `ParsedRequest`.

        Returns:
            list of arrays, the request's own rows of each output.

        Raises:
            QueueFull: if `max_queue_size` requests already wait.
            RuntimeError: if the batcher was not started or has stopped.
            Exception: whatever `model.run` raised on this request's rows.
        """
        if not self.alive:
            raise RuntimeError("The batcher is not running; start it with Batcher.start().")
        if len(self._pending) >= self.max_queue_size:
            raise QueueFull(
                f"The inference queue is full ({self.max_queue_size} requests); retry shortly."
            )
        loop = asyncio.get_running_loop()
        item = _Item(model, request, loop.create_future(), loop.time())
        self._pending.append(item)
        self._rows[model, request.key] += request.rows
        self._report_depth()
        self._wakeup.set()
        return await item.future

    def _report_depth(self):
        if self.metrics is not None:
            self.metrics.queue_depth.set(len(self._pending))

    def _take(self, first):
        """Removes and returns the queued items that join `first`'s batch, in order."""
        group = (first.model, first.request.key)
        batch, rows, kept, full = [], 0, collections.deque(), False
        for item in self._pending:
            if full or (item.model, item.request.key) != group:
                kept.append(item)
            elif not batch or rows + item.request.rows <= self.max_batch_size:
                batch.append(item)
                rows += item.request.rows
            else:  # keep the group's order: the request that did not fit goes first next time
                full = True
                kept.append(item)
        self._pending = kept
        self._rows[group] -= rows
        if self._rows[group] <= 0:
            del self._rows[group]
        self._report_depth()
        return batch

    async def _loop(self):
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.num_threads)
        while True:
            await slots.acquire()
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            first = self._pending[0]
            group = (first.model, first.request.key)
            deadline = first.enqueued + self.batch_timeout
            while self._rows[group] < self.max_batch_size:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            batch = self._take(first)
            task = loop.create_task(self._execute(batch, slots))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _execute(self, batch, slots):
        loop = asyncio.get_running_loop()
        try:
            model = batch[0].model
            rows = [item.request.rows for item in batch]
            if len(batch) == 1:
                feeds = batch[0].request.feeds
            else:
                feeds = {
                    name: np.concatenate([item.request.feeds[name] for item in batch])
                    for name in batch[0].request.feeds
                }
            start = time.perf_counter()
            try:
                outputs = await loop.run_in_executor(self._executor, model.run, feeds)
            except Exception as error:
                if len(batch) == 1:
                    batch[0].future.done() or batch[0].future.set_exception(error)
                    return
                outputs = None
            total = sum(rows)
            if outputs is not None and all(len(o) == total for o in outputs):
                if self.metrics is not None:
                    self.metrics.observe_batch(total, time.perf_counter() - start)
                offset = 0
                for item, count in zip(batch, rows):
                    if not item.future.done():
                        item.future.set_result([o[offset : offset + count] for o in outputs])
                    offset += count
                return
            # A failed merged call, or outputs that are not one row per input row:
            # run each request alone so that each gets its own answer or error.
            for item in batch:
                try:
                    start = time.perf_counter()
                    result = await loop.run_in_executor(
                        self._executor, model.run, item.request.feeds
                    )
                    if self.metrics is not None:
                        self.metrics.observe_batch(item.request.rows, time.perf_counter() - start)
                    item.future.done() or item.future.set_result(result)
                except Exception as error:
                    item.future.done() or item.future.set_exception(error)
        except BaseException as error:  # never leave a request waiting
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(
                        error if isinstance(error, Exception) else RuntimeError(str(error))
                    )
            raise
        finally:
            slots.release()
