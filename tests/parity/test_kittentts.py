"""KittenTTS 0.8 against its reference runtime (fixtures from scripts/parity/kittentts.py).

The tiny model is redrawn from the fixtures' seed (its files must hash as the
reference's did) and served by a real TTS server. Cleaning, chunks, phonemes, input
ids, style rows and speeds must equal the reference's exactly; the audio of Synthesize
and StreamingSynthesize must be the reference's within 1e-5 of its peak. The
reference's audio comes back by replaying its recorded model inputs through the same
ONNX file, checked bit for bit against the hash the generator recorded. BidiSynthesize
cuts text as it arrives: it must equal the reference wherever its cuts leave the
reference's chunks as they are, and where they do not, the difference is measured.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from support import start_server
from tts_support import tts_config, write_tiny_kittentts

from parity.support import ReferenceRun, assert_close, relative_error
from speechmesh.audio.v1 import audio_pb2
from speechmesh.runtime.config import ModelConfig
from speechmesh.runtime.text import split_text
from speechmesh.services.tts import kittentts_text as kt
from speechmesh.services.tts.engine import SynthesisParams
from speechmesh.services.tts.kittentts import KittenTts
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

pytestmark = pytest.mark.xdist_group("kittentts-parity")

RUN = ReferenceRun("kittentts")
CASES = {case["name"]: case for case in RUN.cases}
MODEL = "kitten-parity"
TRIM = 5000
F32 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE)
CLEAN = [name for name, case in CASES.items() if case["clean_text"]]
MEASURED: dict[str, str] = {}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    model = RUN.manifest["model"]
    folder = write_tiny_kittentts(
        tmp_path_factory.mktemp("kitten-parity") / "model",
        model["config"]["speed_priors"],
        RUN.manifest["seed"],
    )
    for name, digest in model["sha256"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, (
            f"{name} redrawn from seed {RUN.manifest['seed']} is not the reference's file"
        )
    return folder


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    models = [{"id": MODEL, "family": "kittentts", "source": str(model_dir), "threads": 1}]
    running = start_server("tts", tts_config(models), tmp_path_factory.mktemp("kitten-srv"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def engine(model_dir) -> KittenTts:
    loaded = KittenTts(ModelConfig(id=MODEL, family="kittentts", source=str(model_dir)))
    loaded.load()
    return loaded


@pytest.fixture(scope="module")
def reference(model_dir) -> dict[str, np.ndarray]:
    """Each case's reference audio: its recorded model inputs replayed, checked by hash."""
    config = RUN.manifest["model"]["config"]
    session = ort.InferenceSession(
        str(model_dir / config["model_file"]), providers=["CPUExecutionProvider"]
    )
    with np.load(model_dir / config["voices"]) as voices:
        styles = {name: voices[name] for name in voices.files}
    aliases = config["voice_aliases"]
    audio = {}
    for name, case in CASES.items():
        voice = aliases.get(case["voice"], case["voice"])
        parts = []
        for chunk in RUN.document(f"{name}/chunks"):
            feeds = {
                "input_ids": np.array([chunk["ids"]], np.int64),
                "style": styles[voice][chunk["style_row"] : chunk["style_row"] + 1],
                "speed": np.array([chunk["speed"]], np.float32),
            }
            (waveform,) = session.run(["waveform"], feeds)
            parts.append(waveform[..., :-TRIM])
        clip = np.concatenate(parts).astype(np.float32)
        digest = hashlib.sha256(clip.astype("<f4").tobytes()).hexdigest()
        assert digest == case["sha256"], f"{name}: the replay is not the reference's audio"
        audio[name] = clip
    return audio


def settings_of(case) -> tts_pb2.SynthesisOptions:
    return tts_pb2.SynthesisOptions(
        voice=case["voice"],
        speed=case["speed"],
        kitten_tts=tts_pb2.KittenTtsOptions(clean_text=case["clean_text"]),
    )


def params_of(case) -> SynthesisParams:
    return SynthesisParams(
        voice=case["voice"],
        speed=float(np.float32(case["speed"])),
        family_options_case="kitten_tts",
        family_options={"clean_text": case["clean_text"]},
    )


def stub(channel) -> tts_pb2_grpc.TextToSpeechStub:
    return tts_pb2_grpc.TextToSpeechStub(channel)


def samples(data: bytes) -> np.ndarray:
    return np.frombuffer(data, "<f4")


def test_the_reference_ran_espeak_ng_1_52_through_phonemizer():
    assert RUN.manifest["espeak"]["version"] == "1.52.0"
    assert RUN.manifest["upstream"]["commit"].startswith("395171a")


@pytest.mark.parametrize("name", sorted(CASES))
def test_replayed_reference_matches_its_recorded_samples(name, reference):
    case = CASES[name]
    clip = reference[name]
    assert len(clip) == case["samples"]
    if "audio" in case:
        np.testing.assert_array_equal(clip, RUN.array(case["audio"]))
    else:
        np.testing.assert_array_equal(clip[:: case["excerpt_stride"]], RUN.array(case["excerpt"]))


@pytest.mark.parametrize("name", CLEAN)
def test_cleaning_equals_the_reference(name):
    case = CASES[name]
    assert kt.clean(case["text"]) == case["cleaned"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_chunks_phonemes_and_ids_equal_the_reference(name):
    case = CASES[name]
    recorded = RUN.document(f"{name}/chunks")
    assert kt.chunks(case["cleaned"]) == [chunk["text"] for chunk in recorded]
    for chunk in recorded:
        assert kt.phonemes(chunk["text"]) == chunk["phonemes"], chunk["text"]
        assert kt.token_ids(chunk["text"]) == chunk["ids"], chunk["text"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_style_rows_and_speeds_equal_the_reference(name, engine):
    case = CASES[name]
    settings = engine.prepare(params_of(case))
    rows = len(engine.styles[settings.voice])
    for chunk in RUN.document(f"{name}/chunks"):
        assert min(len(chunk["text"]), rows - 1) == chunk["style_row"]
        assert np.float32(settings.speed) == np.float32(chunk["speed"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_whole_text_cuts_leave_the_reference_chunks(name):
    case = CASES[name]
    prepare = kt.clean if case["clean_text"] else str
    pieces = kt.pieces(case["text"], case["clean_text"])
    got = [chunk for piece in pieces for chunk in kt.chunks(prepare(piece.text))]
    assert got == [chunk["text"] for chunk in RUN.document(f"{name}/chunks")]
    assert all(case["text"][p.start_char : p.end_char] == p.text for p in pieces)


@pytest.mark.parametrize("name", sorted(CASES))
def test_synthesize_equals_the_reference(name, server, reference):
    case = CASES[name]
    request = tts_pb2.SynthesizeRequest(
        model=MODEL, text=case["text"], options=settings_of(case), output_format=F32
    )
    with server.channel() as channel:
        reply = stub(channel).Synthesize(request, timeout=120)
    assert reply.audio.format.sample_rate_hz == 24000
    audio = samples(reply.audio.data)
    assert len(audio) == case["samples"]
    error = assert_close(audio, reference[name], f"{name}: Synthesize")
    print(f"synthesize {name}: worst error {error:.3g} of the peak")
    assert reply.summary.num_spans == len(kt.pieces(case["text"], case["clean_text"]))


@pytest.mark.parametrize("name", sorted(CASES))
def test_streaming_equals_the_reference_cut_at_its_chunks(name, server, reference):
    case = CASES[name]
    request = tts_pb2.StreamingSynthesizeRequest(
        model=MODEL, text=case["text"], options=settings_of(case), output_format=F32
    )
    with server.channel() as channel:
        responses = list(stub(channel).StreamingSynthesize(request, timeout=120))
    chunks = [r.chunk for r in responses if r.HasField("chunk")]
    audio = samples(b"".join(c.audio.data for c in chunks))
    error = assert_close(audio, reference[name], f"{name}: StreamingSynthesize")
    print(f"stream {name}: worst error {error:.3g} of the peak")
    # Each span ends where one of the reference's chunks ends.
    bounds = set(np.cumsum([c["samples"] for c in RUN.document(f"{name}/chunks")]).tolist())
    ends = {c.audio.sample_offset + c.audio.num_samples for c in chunks if c.end_of_span}
    assert ends <= bounds | {0}, f"{name}: span ends {sorted(ends)} off chunk ends"
    assert responses[-1].summary.total_samples == case["samples"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_bidi_equals_the_reference_where_its_cuts_keep_the_chunks(name, server, reference, engine):
    case = CASES[name]
    text = case["text"]

    def requests():
        config = tts_pb2.BidiSynthesizeConfig(
            model=MODEL, options=settings_of(case), output_format=F32
        )
        yield tts_pb2.BidiSynthesizeRequest(config=config)
        for start in range(0, len(text), 7):
            yield tts_pb2.BidiSynthesizeRequest(text=text[start : start + 7])

    with server.channel() as channel:
        responses = list(stub(channel).BidiSynthesize(requests(), timeout=120))
    audio = samples(b"".join(r.chunk.audio.data for r in responses if r.HasField("chunk")))
    prepare = kt.clean if case["clean_text"] else str
    pieces = split_text(text, engine.max_piece_chars)
    cut = [chunk for piece in pieces for chunk in kt.chunks(prepare(piece.text))]
    if cut == [chunk["text"] for chunk in RUN.document(f"{name}/chunks")]:
        assert_close(audio, reference[name], f"{name}: BidiSynthesize")
        return
    # The splitter cut where the reference does not: bidi speaks those pieces as
    # Synthesize would speak them one by one. Measure how far that is from the reference.
    settings = engine.prepare(params_of(case))
    own = np.concatenate([engine.synthesize(piece.text, settings) for piece in pieces])
    assert_close(audio, own, f"{name}: BidiSynthesize by its own pieces")
    common = min(len(audio), len(reference[name]))
    MEASURED[name] = (
        f"{len(audio)} samples vs the reference's {len(reference[name])}; first "
        f"{common} differ by {relative_error(audio[:common], reference[name][:common]):.3g}"
        " of the peak"
    )
    print(f"bidi {name}: {MEASURED[name]}")


def test_a_text_with_nothing_to_say_gives_no_audio(server):
    # The reference fails on it (nothing to concatenate); the service answers silence.
    request = tts_pb2.SynthesizeRequest(model=MODEL, text="... !?", output_format=F32)
    with server.channel() as channel:
        reply = stub(channel).Synthesize(request, timeout=60)
    assert reply.audio.data == b"" and reply.summary.total_samples == 0
