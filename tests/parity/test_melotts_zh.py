"""MeloTTS (Chinese with English, the ZH model) served over gRPC against the reference
TTS.tts_to_file.

scripts/parity/melotts_zh.py ran myshell-ai/MeloTTS's tts_to_file on a tiny ZH model
(read as ZH_MIX_EN, as the reference's TTS reads ZH) with a tiny random BERT; here the
same model and BERT (rebuilt from their seeds, digests checked) and the lines of the
reference's cmudict.rep the runs read are served by a real TTS server. The pieces the
reference's Chinese splitter made, and per piece the normalised text, the phones, tones
and word2ph (jieba, pypinyin, tone sandhi, English through the English g2p) and the
phone ids, tones and language ids must be the served front-end's exactly, its ja_bert
features (the first channels kept) within 1e-5 of their peak; the audio of Synthesize
and StreamingSynthesize within 1e-5 of its peak, noise 0 and the reference's own noise
drawn from the request's seed, other scales given as MeloTtsOptions.
"""

from __future__ import annotations

import numpy as np
import pytest
from support import start_server
from tts_support import tts_config

from parity.melotts_weights import rebuild_reference_model
from parity.support import ReferenceRun, assert_close, assert_exact, streamed_f32
from speechmesh.audio.v1 import audio_pb2
from speechmesh.runtime.config import ModelConfig
from speechmesh.services.tts.engine import SynthesisParams
from speechmesh.services.tts.melotts.engine import MeloTts
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

pytestmark = pytest.mark.xdist_group("melotts-zh-parity")
MODEL = "melotts-zh-parity"
F32 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE)
ZH_MIX_EN = 3
"""symbols.py's language id of ZH_MIX_EN, the row every phone of the ZH model uses."""


def reference() -> ReferenceRun:
    return ReferenceRun("melotts-zh")


def cases(kind: str) -> list:
    try:
        found = [c for c in reference().cases if c["kind"] == kind]
    except FileNotFoundError:
        return [pytest.param(None, marks=pytest.mark.skip(reason="no melotts-zh fixtures"))]
    return [pytest.param(c, id=c["name"]) for c in found]


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    root = tmp_path_factory.mktemp("melotts-zh-parity")
    return root, rebuild_reference_model(reference(), root)


def model_config(snapshot) -> dict:
    root, model_options = snapshot
    return {
        "id": MODEL,
        "family": "melotts",
        "source": str(root / "model"),
        "threads": 1,
        "options": model_options,
    }


@pytest.fixture(scope="module")
def engine(snapshot) -> MeloTts:
    loaded = MeloTts(ModelConfig(**model_config(snapshot)))
    loaded.load()
    return loaded


@pytest.fixture(scope="module")
def server(snapshot, tmp_path_factory):
    running = start_server(
        "tts", tts_config([model_config(snapshot)]), tmp_path_factory.mktemp("melotts-zh-srv")
    )
    yield running
    running.stop()


def options(case) -> tts_pb2.SynthesisOptions:
    fields = {"voice": case["speaker"], "language": "zh", "seed": case["seed"]}
    if case["speed"] != 1.0:
        fields["speed"] = case["speed"]
    if case["scales"] is not None:
        fields["melo_tts"] = tts_pb2.MeloTtsOptions(**case["scales"])
    return tts_pb2.SynthesisOptions(**fields)


@pytest.mark.parametrize("case", cases("front_end"))
def test_pieces_phonemes_and_model_inputs_are_the_references(engine, case):
    """The model input never leaves the server: the served engine's front-end."""
    settings = engine.prepare(SynthesisParams(language="zh"))
    pieces = engine.pieces(case["text"], settings)
    assert [p.text for p in pieces] == case["pieces"]
    expected = reference().document(case["inputs"])
    assert len(expected) == len(pieces)
    kept = reference().manifest["bert_channels_kept"]
    for piece, wanted in zip(pieces, expected, strict=True):
        found = engine.front_end(piece.text)
        assert found.normalized == wanted["normalized"], piece.text
        assert_exact(found.phonemes.phones, wanted["phone_names"], f"{piece.text}: phones")
        assert_exact(found.phonemes.tones, wanted["phone_tones"], f"{piece.text}: tones")
        assert_exact(found.phonemes.word2ph, wanted["word2ph"], f"{piece.text}: word2ph")
        model_input = found.model_input
        assert_exact(model_input.phones, wanted["phones"], f"{piece.text}: phone ids")
        assert_exact(model_input.tones, wanted["tones"], f"{piece.text}: tone ids")
        assert_exact(model_input.languages, wanted["languages"], f"{piece.text}: language ids")
        assert set(model_input.languages) == {0, ZH_MIX_EN}, "blanks and ZH_MIX_EN only"
        assert not model_input.bert.any(), "ZH_MIX_EN features go to the ja_bert input"
        features = reference().array(wanted["ja_bert"])
        assert_close(model_input.ja_bert[:kept].numpy(), features, f"{piece.text}: ja_bert")


@pytest.mark.parametrize("case", cases("synthesis"))
def test_synthesize_equals_the_reference(server, case):
    request = tts_pb2.SynthesizeRequest(
        model=MODEL, text=case["text"], options=options(case), output_format=F32
    )
    with server.channel() as channel:
        reply = tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(request, timeout=120)
    expected = reference().array(case["audio"])
    rate = reference().document("config")["data"]["sampling_rate"]
    assert reply.audio.format.sample_rate_hz == rate
    audio = np.frombuffer(reply.audio.data, "<f4")
    error = assert_close(audio, expected, f"{case['name']}: Synthesize")
    print(f"synthesize {case['name']}: {len(audio)} samples, worst error {error:.3g} of the peak")
    assert reply.summary.num_spans == len(case["pieces"])


@pytest.mark.parametrize("case", cases("synthesis"))
def test_streaming_equals_the_reference(server, case):
    request = tts_pb2.StreamingSynthesizeRequest(
        model=MODEL, text=case["text"], options=options(case), output_format=F32
    )
    with server.channel() as channel:
        responses = list(
            tts_pb2_grpc.TextToSpeechStub(channel).StreamingSynthesize(request, timeout=120)
        )
    audio = streamed_f32(responses)
    error = assert_close(audio, reference().array(case["audio"]), f"{case['name']}: stream")
    print(f"stream {case['name']}: worst error {error:.3g} of the peak")
