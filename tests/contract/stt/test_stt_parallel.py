"""Whisper with two batches at once (parallel_batches: CTranslate2's workers, one
thread each): concurrent requests get exactly what each gets alone."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from stt_clients import recognize_request
from support import SENTENCES, piper_say, start_server, stt_config

from speechmesh.stt.v1 import stt_pb2_grpc


def test_parallel_batches_transcribe_concurrent_requests_as_each_alone(tmp_path):
    config = stt_config()
    whisper = config["services"]["stt"]["models"][0]
    whisper.update(threads=1, parallel_batches=2, max_batch_size=1)
    server = start_server("stt", config, tmp_path)
    requests = [recognize_request(*piper_say(text), word_timestamps=True) for text in SENTENCES[:4]]
    try:
        with server.channel() as channel:
            stub = stt_pb2_grpc.SpeechToTextStub(channel)

            def recognize(request):
                reply = stub.Recognize(request, timeout=120)
                return reply.text, [(w.word, w.start_sample, w.end_sample) for w in reply.words]

            alone = [recognize(request) for request in requests]
            with ThreadPoolExecutor(len(requests)) as pool:
                together = list(pool.map(recognize, requests))
    finally:
        server.stop()
    assert all(text for text, _ in alone)
    assert together == alone
