"""Bad input to the STT service gets the right status and reason; the server stays SERVING."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status
from prometheus_client import REGISTRY
from stt_clients import recognize_request, s16_format
from support import SENTENCES, pcm16, piper_say, stt_config

from speechmesh.audio.v1 import audio_pb2
from speechmesh.runtime.config import parse_config
from speechmesh.runtime.server import MeshServer
from speechmesh.stt.v1 import stt_pb2, stt_pb2_grpc

ONE_SECOND = np.zeros(16000, np.float32)
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def options_case(field, **options):
    return recognize_request(ONE_SECOND, 16000, **options), INVALID, field


UNARY_CASES = {
    "empty audio": (
        stt_pb2.RecognizeRequest(audio=audio_pb2.Audio(format=s16_format(16000))),
        INVALID,
        "audio.data",
    ),
    "garbage wav": (
        stt_pb2.RecognizeRequest(
            audio=audio_pb2.Audio(
                format=audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_WAV),
                data=b"RIFFnope" * 30,
            )
        ),
        INVALID,
        "audio.data",
    ),
    "NaN samples": (
        stt_pb2.RecognizeRequest(
            audio=audio_pb2.Audio(
                format=audio_pb2.AudioFormat(
                    encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE, sample_rate_hz=16000
                ),
                data=np.full(1600, np.nan, np.float32).tobytes(),
            )
        ),
        INVALID,
        "audio.data",
    ),
    "beam size 0": options_case("options.beam_size", beam_size=0),
    "beam size 100": options_case("options.beam_size", beam_size=100),
    "best_of 0": options_case("options.best_of", best_of=0),
    "temperature 2": options_case("options.temperatures[1]", temperatures=[0.0, 2.0]),
    "unknown language": options_case("options.language", language="xx"),
    "translate on an English-only model": options_case(
        "options.task", task=stt_pb2.RECOGNITION_TASK_TRANSLATE
    ),
    "NaN threshold": options_case("options.no_speech_threshold", no_speech_threshold=float("nan")),
    "negative silence guard": options_case(
        "options.hallucination_silence_threshold_s", hallucination_silence_threshold_s=-1.0
    ),
    "prompt too long": options_case("options.initial_prompt", initial_prompt="word " * 1000),
    "bad vad option": (
        stt_pb2.RecognizeRequest(
            audio=recognize_request(ONE_SECOND, 16000).audio,
            options=stt_pb2.RecognitionOptions(vad_filter=True, vad_options={"threshold": 1.5}),
        ),
        INVALID,
        "options.vad_options.threshold",
    ),
    "unknown model": (
        stt_pb2.RecognizeRequest(model="nope", audio=recognize_request(ONE_SECOND, 16000).audio),
        grpc.StatusCode.NOT_FOUND,
        "nope",
    ),
    "2 h of audio": (
        stt_pb2.RecognizeRequest(
            audio=audio_pb2.Audio(
                format=audio_pb2.AudioFormat(
                    encoding=audio_pb2.AUDIO_ENCODING_MULAW, sample_rate_hz=8000
                ),
                data=b"\xff" * (8000 * 7200),
            )
        ),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "max_audio_seconds",
    ),
}


def config_message(**fields):
    fields.setdefault("format", s16_format(16000))
    return stt_pb2.StreamingRecognizeRequest(config=stt_pb2.StreamingRecognizeConfig(**fields))


def audio_message(data=b"\0\0" * 1600):
    return stt_pb2.StreamingRecognizeRequest(audio=audio_pb2.AudioChunk(data=data))


STREAM_CASES = {
    "no config at all": ([], "config"),
    "audio before config": ([audio_message(), config_message()], "config"),
    "second config": ([config_message(), audio_message(), config_message()], "requests[2]"),
    "empty message": ([config_message(), stt_pb2.StreamingRecognizeRequest()], "requests[1]"),
    "stream of a FLAC file": (
        [config_message(format=audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_FLAC))],
        "config.format.encoding",
    ),
    "interim interval too short": (
        [config_message(interim_results=True, interim_interval_ms=10)],
        "config.interim_interval_ms",
    ),
    "bad options": (
        [config_message(options=stt_pb2.RecognitionOptions(beam_size=0))],
        "config.options.beam_size",
    ),
    "stream ends inside a sample": ([config_message(), audio_message(b"\0" * 1025)], "stray"),
}


def assert_still_serving(server):
    assert server.health() == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("case", list(UNARY_CASES))
def test_unary_bad_input(stt_server, case):
    request, code, reason = UNARY_CASES[case]
    with stt_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        stt_pb2_grpc.SpeechToTextStub(channel).Recognize(request, timeout=60)
    assert raised.value.code() == code, raised.value.details()
    assert reason in raised.value.details()
    if code == INVALID:
        bad_request = error_details_pb2.BadRequest()
        assert rpc_status.from_call(raised.value).details[0].Unpack(bad_request)
        assert bad_request.field_violations[0].field == reason
    assert_still_serving(stt_server)


@pytest.mark.parametrize("case", list(STREAM_CASES))
def test_streaming_bad_input(stt_server, case):
    messages, reason = STREAM_CASES[case]
    with stt_server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        stub = stt_pb2_grpc.SpeechToTextStub(channel)
        list(stub.StreamingRecognize(iter(messages), timeout=30))
    assert raised.value.code() == INVALID, raised.value.details()
    assert reason in raised.value.details()
    assert_still_serving(stt_server)


async def started(**overrides) -> MeshServer:
    server = MeshServer("stt", parse_config(stt_config(**overrides)), port=0)
    await server.start()
    await asyncio.wait_for(server.pool.all_loaded.wait(), 60)
    return server


async def test_quiet_stream_ends_with_deadline_exceeded_and_cancel_frees_the_stream():
    server = await started(limits={"stream_idle_timeout_s": 0.5})
    method = "/speechmesh.stt.v1.SpeechToText/StreamingRecognize"
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = stt_pb2_grpc.SpeechToTextStub(channel)
            quiet = stub.StreamingRecognize()
            await quiet.write(config_message())
            await quiet.write(audio_message())
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                async for _ in quiet:
                    pass
            assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "stream_idle_timeout_s" in raised.value.details()

            # Many utterances sent at once fill the queue of finals (the reader then waits
            # on it); cancelling must still end the call at once and drop the queued work.
            speech, rate = piper_say(SENTENCES[1])
            gap = np.zeros(rate, np.float32)
            audio = np.concatenate([gap, speech] * 10 + [gap])
            busy = stub.StreamingRecognize()
            await busy.write(config_message(format=s16_format(rate)))
            data = pcm16(audio)
            for offset in range(0, len(data), 8820):
                await busy.write(audio_message(data[offset : offset + 8820]))
            await asyncio.sleep(1.0)
            assert server.drain.in_flight == 1
            busy.cancel()
            loop = asyncio.get_running_loop()
            cancelled_at = loop.time()
            for _ in range(500):
                if server.drain.in_flight == 0:
                    break
                await asyncio.sleep(0.01)
            # The server shares this event loop with the test on a busy machine: allow
            # for scheduling, not for the queued decodes (several seconds of work).
            assert loop.time() - cancelled_at < 1.0
            assert server.drain.in_flight == 0
            assert REGISTRY.get_sample_value("speechmesh_active_streams", {"method": method}) == 0
            # The model is free for the next caller at once.
            response = await asyncio.wait_for(
                stub.Recognize(recognize_request(speech, rate)), timeout=10
            )
            assert response.text
    finally:
        await server.drain_and_stop()


async def test_audio_after_half_close_is_refused_by_the_client_and_the_server_finishes():
    server = await started()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            call = stt_pb2_grpc.SpeechToTextStub(channel).StreamingRecognize()
            await call.write(config_message())
            await call.write(audio_message())
            await call.done_writing()
            with pytest.raises(asyncio.InvalidStateError, match="half closed"):
                await call.write(audio_message())
            responses = [response async for response in call]
            assert responses[-1].end_of_stream
            assert responses[-1].processed_samples == 1600
            assert await call.code() == grpc.StatusCode.OK
    finally:
        await server.drain_and_stop()
