"""A dynamic batcher per model: gathers concurrent requests into one model call.

While the model is busy the queue fills, so load itself makes batches bigger. Once
concurrency is seen (the last batch had more than one item), a batch also waits up to
`max_wait_s` for company; a lone caller never waits. Batches run in the model's own
worker thread, so inference never blocks the event loop; with `parallel` > 1, that
many batches run at once on as many threads (for models that take concurrent calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from speechmesh.runtime.errors import Overloaded, Unavailable
from speechmesh.runtime.telemetry import BATCH_SECONDS, BATCH_SIZE, QUEUE_DEPTH

In = TypeVar("In")
Out = TypeVar("Out")


class DynamicBatcher(Generic[In, Out]):
    """Batches `submit()` calls for one model; results come back in submission order."""

    def __init__(
        self,
        name: str,
        run_batch: Callable[[Sequence[In]], Sequence[Out]],
        *,
        max_batch_size: int,
        max_wait_s: float,
        max_queue_size: int = 4096,
        parallel: int = 1,
    ) -> None:
        self.name = name
        self._run_batch = run_batch
        self._max_batch_size = max_batch_size
        self._max_wait_s = max_wait_s
        self._max_queue_size = max_queue_size
        self._queue: asyncio.Queue[tuple[In, asyncio.Future[Out]]] = asyncio.Queue()
        # One thread per batch in flight: with parallel 1, the model sees one call at a
        # time, in order.
        self._parallel = parallel
        self._executor = ThreadPoolExecutor(
            max_workers=parallel, thread_name_prefix=f"batch-{name}"
        )
        self._workers: list[asyncio.Task[None]] = []
        self._closed = False
        self._last_batch_size = 0
        # Labelled metric children, looked up once: they are touched on every item.
        self._queue_depth = QUEUE_DEPTH.labels(name)
        self._batch_size = BATCH_SIZE.labels(name)
        self._batch_seconds = BATCH_SECONDS.labels(name)

    @property
    def pending(self) -> int:
        """Items waiting for a batch (not counting the batch the model is running)."""
        return self._queue.qsize()

    def start(self) -> None:
        if not self._workers:
            loop = asyncio.get_running_loop()
            self._workers = [loop.create_task(self._serve()) for _ in range(self._parallel)]

    async def submit(self, item: In) -> Out:
        """Runs `item` in the next batch and returns its result."""
        if self._closed:
            raise Unavailable(f"model {self.name} is shutting down")
        if self._queue.qsize() >= self._max_queue_size:
            raise Overloaded(
                f"model {self.name} has {self._queue.qsize()} requests queued "
                f"(max_queue_size {self._max_queue_size}); retry later"
            )
        self.start()
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        self._queue_depth.set(self._queue.qsize())
        return await future

    async def close(self) -> None:
        self._closed = True
        for worker in self._workers:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(Unavailable(f"model {self.name} is shutting down"))
        self._executor.shutdown(wait=True)

    async def _collect(self) -> list[tuple[In, asyncio.Future[Out]]]:
        batch = [await self._queue.get()]
        room = self._max_batch_size - 1
        if self._last_batch_size > 1 and self._max_wait_s > 0 and self._queue.qsize() < room:
            # One sleep per batch, then take whatever arrived: far cheaper under load
            # than waking up for every item.
            await asyncio.sleep(self._max_wait_s)
        while len(batch) < self._max_batch_size and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        self._queue_depth.set(self._queue.qsize())
        self._last_batch_size = len(batch)
        # A caller that gave up (cancelled, deadline) costs no model time.
        return [(item, fut) for item, fut in batch if not fut.done()]

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            if not batch:
                continue
            items = [item for item, _ in batch]
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, items)
                if len(results) != len(items):
                    raise RuntimeError(
                        f"{self.name}: batch of {len(items)} gave {len(results)} results"
                    )
            except Exception as error:  # every waiter gets the model's error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            finally:
                self._batch_size.observe(len(items))
                self._batch_seconds.observe(time.perf_counter() - started)
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
