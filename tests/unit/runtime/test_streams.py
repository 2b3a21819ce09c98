"""The config-first convention (config once and first, payload after, nothing empty),
the stream budget, and the input side of stream runners."""

from __future__ import annotations

import asyncio
import threading

import grpc
import numpy as np
import pytest

from speechmesh.audio.v1 import audio_pb2
from speechmesh.runtime.audio import AudioSpec, Encoding
from speechmesh.runtime.errors import IdleTimeout, InvalidArgument, LimitExceeded
from speechmesh.runtime.streams import (
    OFFLOAD_BYTES,
    StreamInput,
    check_stream_seconds,
    config_first,
    off_loop_if_large,
)
from speechmesh.vad.v1 import vad_pb2

CONFIG = vad_pb2.StreamingDetectRequest(config=vad_pb2.StreamingDetectConfig(model="m"))
AUDIO = vad_pb2.StreamingDetectRequest(audio=audio_pb2.AudioChunk(data=b"\0\0"))
EMPTY = vad_pb2.StreamingDetectRequest()


async def messages(*items):
    for item in items:
        yield item


async def drain(*items):
    config, payload = await config_first(messages(*items), idle_timeout_s=5)
    return config, [m async for m in payload]


async def test_config_then_payload():
    config, payload = await drain(CONFIG, AUDIO, AUDIO)
    assert config.model == "m"
    assert payload == [AUDIO, AUDIO]
    assert await drain(CONFIG) == (CONFIG.config, [])


@pytest.mark.parametrize(
    ("items", "field", "reason"),
    [
        ((), "config", "ended before its config"),
        ((AUDIO, CONFIG), "config", "not audio"),
        ((EMPTY,), "config", "not nothing"),
        ((CONFIG, AUDIO, CONFIG), "requests[2]", "only the first message"),
        ((CONFIG, EMPTY), "requests[1]", "carries nothing"),
    ],
)
async def test_violations_name_where(items, field, reason):
    with pytest.raises(InvalidArgument, match=reason) as raised:
        await drain(*items)
    assert raised.value.violations[0].field == field


async def quiet_after(*items):
    for item in items:
        yield item
    await asyncio.sleep(10)


@pytest.mark.parametrize("items", [(), (CONFIG, AUDIO)])
async def test_a_quiet_client_gets_deadline_exceeded(items):
    with pytest.raises(IdleTimeout, match="stream_idle_timeout_s") as raised:
        _, payload = await config_first(quiet_after(*items), idle_timeout_s=0.05)
        [m async for m in payload]
    assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


async def spaced(gap_s: float, count: int, then_quiet_s: float = 0.0):
    yield CONFIG
    for _ in range(count):
        await asyncio.sleep(gap_s)
        yield AUDIO
    await asyncio.sleep(then_quiet_s)


async def test_the_idle_limit_counts_from_each_message_not_from_the_first():
    # 12 messages 30 ms apart outlast the 100 ms limit many times over: none waits that long.
    _, payload = await config_first(spaced(0.03, 12), idle_timeout_s=0.1)
    assert len([m async for m in payload]) == 12
    # The same stream then going quiet for longer than the limit is ended.
    _, payload = await config_first(spaced(0.03, 5, then_quiet_s=1.0), idle_timeout_s=0.1)
    started = asyncio.get_running_loop().time()
    with pytest.raises(IdleTimeout):
        [m async for m in payload]
    assert asyncio.get_running_loop().time() - started < 0.6


async def test_a_cancelled_reader_is_cancelled_not_timed_out():
    _, payload = await config_first(spaced(0.0, 1, then_quiet_s=10.0), idle_timeout_s=0.2)

    async def read_all():
        return [m async for m in payload]

    reader = asyncio.create_task(read_all())
    await asyncio.sleep(0.05)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    await asyncio.sleep(0.3)  # the idle timer, had it outlived the stream, fires here


def test_stream_budget_counts_seconds_at_the_stream_rate():
    check_stream_seconds(48_000 * 10, 48_000, 10.0)  # exactly the limit passes
    check_stream_seconds(10**9, None, 10.0)  # nothing is known before the rate
    with pytest.raises(LimitExceeded) as raised:
        check_stream_seconds(16_000 * 10 + 1_600, 16_000, 10.0)
    assert raised.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_stream_seconds" in str(raised.value) and "10.1" in str(raised.value)


async def test_big_work_leaves_the_event_loop_and_small_work_stays():
    loop_thread = threading.get_ident()
    small = await off_loop_if_large(OFFLOAD_BYTES - 1, threading.get_ident)
    big = await off_loop_if_large(OFFLOAD_BYTES, threading.get_ident)
    assert small == loop_thread
    assert big != loop_thread


class _Run(StreamInput):
    async def feed(self, data: bytes) -> np.ndarray:
        return await self._decoded(data)


async def test_stream_input_decodes_to_the_model_rate_and_counts_input_samples():
    run = _Run(AudioSpec(Encoding.PCM_S16LE, 48_000, 1), model_rate_hz=16_000)
    tone = (np.sin(np.arange(48_000) / 10) * 8000).astype("<i2")
    out = [await run.feed(tone[:100].tobytes()), await run.feed(tone[100:].tobytes())]
    out.append(run._decoded_tail())
    assert run.samples_in == 48_000 and run.input_rate_hz == 48_000
    assert abs(sum(len(o) for o in out) - 16_000) <= 1
