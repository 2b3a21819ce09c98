"""Calls through the gateway reach the right backend and come back unchanged."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from support import SENTENCES, piper_say, word_error_rate

from speechmesh.audio.v1 import audio_pb2
from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.stt.v1 import stt_pb2, stt_pb2_grpc
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc


def pcm16(audio):
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def recognize_request(audio, rate, **options):
    fmt = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=rate)
    return stt_pb2.RecognizeRequest(
        audio=audio_pb2.Audio(format=fmt, data=pcm16(audio)),
        options=stt_pb2.RecognitionOptions(**options),
    )


def test_list_models_aggregates_the_mesh(gateway):
    with gateway.channel() as channel:
        listed = models_pb2_grpc.ModelsStub(channel).ListModels(models_pb2.ListModelsRequest())
        ids = [m.id for m in listed.models]
        # silero-vad once, though both the VAD and the STT server host it.
        assert {"kitten-tiny", "piper-joe", "silero-vad", "whisper-tiny.en", "rnnoise"} <= set(ids)
        assert len(ids) == len(set(ids))
        stt_only = models_pb2_grpc.ModelsStub(channel).ListModels(
            models_pb2.ListModelsRequest(task=models_pb2.TASK_SPEECH_RECOGNITION)
        )
        assert [m.id for m in stt_only.models] == ["whisper-tiny.en"]


def test_health_and_reflection_describe_what_is_reachable(gateway):
    with gateway.channel() as channel:
        health = health_pb2_grpc.HealthStub(channel)
        serving = health_pb2.HealthCheckResponse.SERVING
        for name in ("", "speechmesh.stt.v1.SpeechToText", "speechmesh.vad.v1.VoiceActivity"):
            assert health.Check(health_pb2.HealthCheckRequest(service=name)).status == serving
        index_tts = "speechmesh.indextts.v1.IndexTTS"  # no backend hosts it here
        absent = health.Check(health_pb2.HealthCheckRequest(service=index_tts))
        assert absent.status == health_pb2.HealthCheckResponse.NOT_SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        [answer] = list(
            reflection.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
        )
        names = {s.name for s in answer.list_services_response.service}
        assert {
            "speechmesh.stt.v1.SpeechToText",
            "speechmesh.tts.v1.TextToSpeech",
            "speechmesh.orchestrator.v1.Orchestrator",
            "speechmesh.models.v1.Models",
        } <= names


def test_unary_and_streaming_calls_match_direct_ones(gateway, stt_server):
    audio, rate = piper_say(SENTENCES[1])
    request = recognize_request(audio, rate, word_timestamps=True)
    with gateway.channel() as via, stt_server.channel() as direct:
        through = stt_pb2_grpc.SpeechToTextStub(via).Recognize(request, timeout=60)
        straight = stt_pb2_grpc.SpeechToTextStub(direct).Recognize(request, timeout=60)
        assert through.text == straight.text
        assert [w.start_sample for w in through.words] == [w.start_sample for w in straight.words]

        gap = np.zeros(rate, np.float32)
        data = pcm16(np.concatenate([gap, audio, gap]))
        fmt = audio_pb2.AudioFormat(
            encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=rate
        )

        def requests():
            yield stt_pb2.StreamingRecognizeRequest(
                config=stt_pb2.StreamingRecognizeConfig(format=fmt, interim_results=True)
            )
            for offset in range(0, len(data), 4410):
                yield stt_pb2.StreamingRecognizeRequest(
                    audio=audio_pb2.AudioChunk(data=data[offset : offset + 4410])
                )

        responses = list(stt_pb2_grpc.SpeechToTextStub(via).StreamingRecognize(requests()))
        finals = [r for resp in responses for r in resp.results if r.is_final]
        assert len(finals) == 1
        assert word_error_rate(SENTENCES[1], finals[0].alternatives[0].transcript) <= 0.15
        assert responses[-1].end_of_stream and responses[-1].processed_samples == len(data) // 2


def test_errors_keep_their_status_and_details(gateway):
    with gateway.channel() as channel:
        stub = stt_pb2_grpc.SpeechToTextStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Recognize(recognize_request(np.zeros(8000, np.float32), 16000, beam_size=0))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        bad_request = error_details_pb2.BadRequest()
        assert rpc_status.from_call(raised.value).details[0].Unpack(bad_request)
        assert bad_request.field_violations[0].field == "options.beam_size"

        with pytest.raises(grpc.RpcError) as raised:
            stub.Recognize(stt_pb2.RecognizeRequest(model="nope"))
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        assert "whisper-tiny.en" in raised.value.details()

        vad = vad_pb2_grpc.VoiceActivityStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            list(vad.StreamingDetect(iter([vad_pb2.StreamingDetectRequest()])))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert gateway.health() == health_pb2.HealthCheckResponse.SERVING


def test_request_id_comes_back_from_the_backend(gateway):
    audio, rate = piper_say(SENTENCES[0])
    with gateway.channel() as channel:
        response, call = stt_pb2_grpc.SpeechToTextStub(channel).Recognize.with_call(
            recognize_request(audio, rate), metadata=[("x-request-id", "gateway-test-1")]
        )
    # The backend echoes the id the gateway passed on.
    assert response.request_id == "gateway-test-1"
    assert ("x-request-id", "gateway-test-1") in call.trailing_metadata()
