"""The config-first convention: config once and first, payload after, nothing empty."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from speechmesh.audio.v1 import audio_pb2
from speechmesh.runtime.errors import IdleTimeout, InvalidArgument, LimitExceeded
from speechmesh.runtime.streams import check_stream_seconds, config_first
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


def test_stream_budget_counts_seconds_at_the_stream_rate():
    check_stream_seconds(48_000 * 10, 48_000, 10.0)  # exactly the limit passes
    check_stream_seconds(10**9, None, 10.0)  # nothing is known before the rate
    with pytest.raises(LimitExceeded) as raised:
        check_stream_seconds(16_000 * 10 + 1_600, 16_000, 10.0)
    assert raised.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_stream_seconds" in str(raised.value) and "10.1" in str(raised.value)
