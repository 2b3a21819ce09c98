"""MeloTTS in Spanish, French and Korean served over gRPC against the reference's
TTS.tts_to_file.

scripts/parity/melotts_languages.py ran myshell-ai/MeloTTS's tts_to_file, per language,
on a tiny model with a tiny random BERT whose tokenizer is set as the language's official
one; here the same model and BERT (rebuilt from their seeds, digests checked) are served
by a real TTS server. As tests/parity/test_melotts.py for English: the reference's pieces
and each piece's phone ids, tones and language ids exactly, its ja_bert features (the
first channels kept) and the audio of Synthesize and StreamingSynthesize within 1e-5 of
their peak. A language whose front-end packages are not installed is skipped.
"""

from __future__ import annotations

import importlib.util

import pytest
from support import start_server
from tts_support import tts_config

from parity.melotts_support import model_config, synthesis_options
from parity.melotts_weights import rebuild_reference_model
from parity.support import (
    ReferenceRun,
    assert_close,
    assert_exact,
    assert_streaming_is_the_reference,
    assert_synthesize_is_the_reference,
)
from speechmesh.runtime.config import ModelConfig
from speechmesh.services.tts.engine import SynthesisParams
from speechmesh.services.tts.melotts.engine import LANGUAGES, MeloTts
from speechmesh.tts.v1 import tts_pb2

pytestmark = pytest.mark.xdist_group("melotts-languages-parity")
# The packages each front-end imports (the melotts extra installs them).
NEEDS = {
    "ES": ("gruut",),
    "FR": ("gruut",),
    "KR": ("g2pkk", "jamo", "mecab"),
    "JP": ("pykakasi", "fugashi", "unidic_lite"),
}


def reference(mark: str) -> ReferenceRun:
    return ReferenceRun(f"melotts-{mark.lower()}")


def cases(kind: str) -> list:
    found = []
    for mark, packages in NEEDS.items():
        missing = [p for p in packages if importlib.util.find_spec(p) is None]
        try:
            run = reference(mark)
        except FileNotFoundError:
            skip = pytest.mark.skip(reason=f"no melotts-{mark.lower()} fixtures")
            found.append(pytest.param(mark, None, id=mark, marks=skip))
            continue
        marks = [pytest.mark.skip(reason=f"{', '.join(missing)} not installed")] if missing else []
        found += [
            pytest.param(mark, c, id=f"{mark}-{c['name']}", marks=marks)
            for c in run.cases
            if c["kind"] == kind
        ]
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Per language, lazily: the model config, then an engine or a running server."""
    configs: dict[str, dict] = {}
    engines: dict[str, MeloTts] = {}
    servers: dict[str, object] = {}

    def config(mark: str) -> dict:
        if mark not in configs:
            root = tmp_path_factory.mktemp(f"melotts-{mark.lower()}")
            model_options = rebuild_reference_model(reference(mark), root)
            configs[mark] = model_config(f"melotts-{mark.lower()}", root, model_options)
        return configs[mark]

    def get(mark: str, what: str):
        if what == "engine" and mark not in engines:
            engines[mark] = MeloTts(ModelConfig(**config(mark)))
            engines[mark].load()
        if what == "server" and mark not in servers:
            folder = tmp_path_factory.mktemp(f"melotts-{mark.lower()}-srv")
            servers[mark] = start_server("tts", tts_config([config(mark)]), folder)
        return config(mark), (engines if what == "engine" else servers)[mark]

    yield get
    for server in servers.values():
        server.stop()


def options(mark: str, case) -> tts_pb2.SynthesisOptions:
    return synthesis_options(case, LANGUAGES[mark].tag)


@pytest.mark.parametrize(("mark", "case"), cases("front_end"))
def test_pieces_and_model_inputs_are_the_references(served, mark, case):
    _, engine = served(mark, "engine")
    settings = engine.prepare(SynthesisParams(language=LANGUAGES[mark].tag))
    pieces = engine.pieces(case["text"], settings)
    assert [p.text for p in pieces] == case["pieces"]
    run = reference(mark)
    expected = run.document(case["inputs"])
    assert len(expected) == len(pieces)
    kept = run.manifest["bert_channels_kept"]
    for piece, wanted in zip(pieces, expected, strict=True):
        found = engine.front_end(piece.text).model_input
        assert_exact(found.phones, wanted["phones"], f"{piece.text}: phone ids")
        assert_exact(found.tones, wanted["tones"], f"{piece.text}: tones")
        assert_exact(found.languages, wanted["languages"], f"{piece.text}: language ids")
        assert not found.bert.any(), f"{mark} features go to the ja_bert input"
        features = run.array(wanted["ja_bert"])
        assert_close(found.ja_bert[:kept].numpy(), features, f"{piece.text}: ja_bert")


@pytest.mark.parametrize(("mark", "case"), cases("synthesis"))
def test_synthesize_equals_the_reference(served, mark, case):
    config, server = served(mark, "server")
    run, what = reference(mark), f"{mark} {case['name']}"
    assert_synthesize_is_the_reference(
        server, config["id"], run, case, options(mark, case), what, config="config"
    )


@pytest.mark.parametrize(("mark", "case"), cases("synthesis"))
def test_streaming_equals_the_reference(served, mark, case):
    config, server = served(mark, "server")
    run, what = reference(mark), f"{mark} {case['name']}"
    assert_streaming_is_the_reference(server, config["id"], run, case, options(mark, case), what)
