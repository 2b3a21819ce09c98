"""A client that cancels its stream is normal: the server logs no error for it."""

from __future__ import annotations

import time

from support import start_server, vad_config

from speechmesh.audio.v1 import audio_pb2
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

FORMAT = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000)


def endless_stream():
    yield vad_pb2.StreamingDetectRequest(config=vad_pb2.StreamingDetectConfig(format=FORMAT))
    while True:
        yield vad_pb2.StreamingDetectRequest(audio=audio_pb2.AudioChunk(data=b"\0\0" * 1600))
        time.sleep(0.05)


def test_cancelled_streams_log_no_errors(tmp_path):
    vad_server = start_server("vad", vad_config(), tmp_path)
    seen = len(vad_server.log)
    with vad_server.channel() as channel:
        for _ in range(5):
            call = vad_pb2_grpc.VoiceActivityStub(channel).StreamingDetect(endless_stream())
            time.sleep(0.5)  # the stream is running on the server (silence: no events)
            call.cancel()
    time.sleep(2.0)  # the server finishes the cancelled calls
    vad_server.stop()
    logged = "".join(vad_server.log[seen:])
    assert "Failed to detach context" not in logged
    assert " ERROR " not in logged and "Traceback" not in logged, logged
