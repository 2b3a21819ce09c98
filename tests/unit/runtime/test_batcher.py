"""The dynamic batcher: concurrent submits share calls, results keep their order, errors spread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from speechmesh.runtime.batcher import DynamicBatcher
from speechmesh.runtime.errors import Overloaded, Unavailable


async def test_concurrent_items_are_batched_and_results_match():
    calls: list[list[int]] = []
    threads: set[str] = set()

    def square(items):
        calls.append(list(items))
        threads.add(threading.current_thread().name)
        return [i * i for i in items]

    batcher = DynamicBatcher("sq", square, max_batch_size=8, max_wait_s=0.05)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(20)))
    await batcher.close()
    assert results == [i * i for i in range(20)]
    assert max(len(c) for c in calls) == 8
    assert len(calls) == 3
    # Inference ran off the event loop, on the model's own thread.
    assert threads == {next(iter(threads))} and "batch-sq" in next(iter(threads))


async def test_a_model_error_reaches_every_waiter_and_the_batcher_recovers():
    def flaky(items):
        if 13 in items:
            raise ValueError("bad item")
        return items

    batcher = DynamicBatcher("flaky", flaky, max_batch_size=4, max_wait_s=0.02)
    outcomes = await asyncio.gather(
        *(batcher.submit(i) for i in (1, 13, 2)), return_exceptions=True
    )
    assert all(isinstance(o, ValueError) for o in outcomes)
    assert await batcher.submit(5) == 5
    await batcher.close()


async def test_full_queue_is_overloaded_and_closed_is_unavailable():
    release = threading.Event()

    def slow(items):
        release.wait(5)
        return items

    batcher = DynamicBatcher("slow", slow, max_batch_size=1, max_wait_s=0, max_queue_size=2)
    first = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.05)  # the first item is now running
    queued = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
    await asyncio.sleep(0.01)
    with pytest.raises(Overloaded, match="max_queue_size 2"):
        await batcher.submit(3)
    release.set()
    assert await first == 0
    assert await asyncio.gather(*queued) == [1, 2]
    await batcher.close()
    with pytest.raises(Unavailable):
        await batcher.submit(4)


async def test_a_cancelled_caller_costs_no_model_time():
    seen: list[int] = []
    gate = threading.Event()

    def record(items):
        gate.wait(5)
        seen.extend(items)
        return items

    batcher = DynamicBatcher("rec", record, max_batch_size=1, max_wait_s=0)
    running = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.05)
    abandoned = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0.01)
    abandoned.cancel()
    gate.set()
    assert await running == 1
    assert await batcher.submit(3) == 3
    await batcher.close()
    assert seen == [1, 3]


async def test_a_lone_caller_never_waits_for_company():
    batcher = DynamicBatcher("lone", lambda items: items, max_batch_size=8, max_wait_s=5.0)
    # With no concurrency seen, the 5 s wait for company never applies.
    for value in range(3):
        assert await asyncio.wait_for(batcher.submit(value), timeout=1.0) == value
    await batcher.close()


@pytest.mark.parametrize("parallel", [1, 2])
async def test_parallel_batches_run_at_once_and_one_batch_runs_alone(parallel):
    """Two single-item batches that each wait for the other: they meet only when two
    run at once; with parallel 1 the first waits in vain, alone on the model."""
    meeting = threading.Barrier(2, timeout=1.0)
    met: list[bool] = []

    def meet(items):
        try:
            meeting.wait()
            met.append(True)
        except threading.BrokenBarrierError:
            met.append(False)
        return items

    batcher = DynamicBatcher("meet", meet, max_batch_size=1, max_wait_s=0.0, parallel=parallel)
    results = await asyncio.gather(batcher.submit(1), batcher.submit(2))
    await batcher.close()
    assert results == [1, 2]
    assert met == ([True, True] if parallel == 2 else [False, False])
