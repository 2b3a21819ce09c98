"""Topics fan out to one queue per consumer; a bounded one holds its producer back."""

from __future__ import annotations

import asyncio

import pytest

from speechmesh.gateway.values import ITEMS_IN_FLIGHT, Topic
from speechmesh.orchestrator.v1 import orchestrator_pb2 as pb

TEXT = pb.VALUE_KIND_TEXT


async def produce(topic: Topic, count: int, made: list[int]) -> None:
    for item in range(count):
        await topic.put(item)
        made.append(item)
    await topic.close()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_slow_reader_holds_the_producer_back():
    topic = Topic(TEXT)
    slow = topic.subscribe(bounded=True)
    made: list[int] = []
    producer = asyncio.create_task(produce(topic, 50, made))
    await settle()
    assert len(made) == ITEMS_IN_FLIGHT and len(slow) == ITEMS_IN_FLIGHT
    reading = slow.read()
    assert await anext(reading) == 0
    await settle()
    assert len(made) == ITEMS_IN_FLIGHT + 1
    assert [item async for item in reading] == list(range(1, 50))
    await producer


async def test_every_reader_sees_every_item_and_an_unbounded_one_never_waits():
    topic = Topic(TEXT)
    whole = topic.subscribe(bounded=False)
    streamed = topic.subscribe(bounded=True)
    made: list[int] = []
    producer = asyncio.create_task(produce(topic, 20, made))
    streamed_items = [item async for item in streamed.read()]
    await producer
    assert streamed_items == list(range(20))
    assert len(whole) == 20
    assert await whole.whole() == list(range(20))


async def test_an_abandoned_reader_releases_its_producer_and_keeps_nothing():
    topic = Topic(TEXT)
    quitter = topic.subscribe(bounded=True)
    made: list[int] = []
    producer = asyncio.create_task(produce(topic, 100, made))
    await settle()
    assert not producer.done()
    await quitter.abandon()
    await asyncio.wait_for(producer, 5)
    assert len(made) == 100 and len(quitter) == 0


async def test_an_output_nobody_reads_keeps_nothing():
    topic = Topic(TEXT)
    await asyncio.wait_for(produce(topic, 1000, []), 5)
    assert topic.readers == []


@pytest.mark.parametrize("bounded", [True, False])
async def test_a_closed_empty_topic_ends_its_readers(bounded):
    topic = Topic(TEXT)
    reader = topic.subscribe(bounded)
    await topic.close()
    assert await reader.whole() == []
