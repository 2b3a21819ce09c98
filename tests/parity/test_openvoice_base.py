"""OpenVoice V1 base speakers served over gRPC against the reference BaseSpeakerTTS.tts.

scripts/parity/openvoice_base.py ran myshell-ai/OpenVoice's tts() on a tiny English and a
tiny Chinese base speaker; here the same checkpoints (rebuilt from their seed, digest
checked) are served by a real TTS server. The pieces the reference's splitter made and
each piece's ids must be the served front-end's exactly; the audio of Synthesize and
StreamingSynthesize (every piece and its trailing silence) must be the reference's
within 1e-5 of its peak, with the reference's own noise drawn from the request's seed
and with other scales given as OpenVoiceOptions (both noises 0: deterministic).
"""

from __future__ import annotations

import json

import pytest
from support import start_server
from tts_support import tts_config

from parity.openvoice_weights import digest, random_state, save_checkpoint
from parity.support import (
    ReferenceRun,
    assert_exact,
    assert_streaming_is_the_reference,
    assert_synthesize_is_the_reference,
)
from speechmesh.runtime.config import ModelConfig
from speechmesh.services.tts.engine import SynthesisParams
from speechmesh.services.tts.openvoice.engine import OpenVoiceV1Base
from speechmesh.tts.v1 import tts_pb2

pytestmark = pytest.mark.xdist_group("openvoice-base-parity")
MODEL = "openvoice-base-parity"
TAGS = {"EN": "en", "ZH": "zh"}


def reference() -> ReferenceRun:
    return ReferenceRun("openvoice_base")


def cases(kind: str) -> list:
    try:
        found = [c for c in reference().cases if c["kind"] == kind]
    except FileNotFoundError:
        return [pytest.param(None, marks=pytest.mark.skip(reason="no openvoice_base fixtures"))]
    return [pytest.param(c, id=c["name"]) for c in found]


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    run = reference()
    root = tmp_path_factory.mktemp("openvoice-base-parity")
    for language, folder in run.manifest["layout"].items():
        recorded = run.document(f"{language}/weights")
        keys = [(key, shape) for key, shape in recorded["keys"]]
        state = random_state(keys, recorded["seed"])
        assert digest(state) == recorded["sha256"], "the rebuilt weights are not the reference's"
        save_checkpoint(state, root / folder / "checkpoint.pth")
        config = json.dumps(run.document(f"{language}/config"), ensure_ascii=False)
        (root / folder / "config.json").write_text(config, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def engine(snapshot) -> OpenVoiceV1Base:
    loaded = OpenVoiceV1Base(
        ModelConfig(id=MODEL, family="openvoice-v1-base", source=str(snapshot), threads=1)
    )
    loaded.load()
    return loaded


@pytest.fixture(scope="module")
def server(snapshot, tmp_path_factory):
    models = [{"id": MODEL, "family": "openvoice-v1-base", "source": str(snapshot), "threads": 1}]
    running = start_server("tts", tts_config(models), tmp_path_factory.mktemp("ov-base-srv"))
    yield running
    running.stop()


def options(case) -> tts_pb2.SynthesisOptions:
    fields = {"voice": case["style"], "language": TAGS[case["language"]], "seed": case["seed"]}
    if case["speed"] != 1.0:
        fields["speed"] = case["speed"]
    if case["scales"] is not None:
        fields["openvoice"] = tts_pb2.OpenVoiceOptions(**case["scales"])
    return tts_pb2.SynthesisOptions(**fields)


@pytest.mark.parametrize("case", cases("front_end"))
def test_pieces_and_ids_are_the_references(engine, case):
    """The ids never leave the server: the served engine's front-end, piece by piece."""
    settings = engine.prepare(SynthesisParams(language=TAGS[case["language"]]))
    pieces = engine.pieces(case["text"], settings)
    assert [p.text for p in pieces] == case["pieces"]
    expected = reference().document(case["ids"])
    assert len(expected) == len(pieces)
    for piece, ids in zip(pieces, expected, strict=True):
        assert_exact(engine.phoneme_ids(piece.text, settings), ids, piece.text)


@pytest.mark.parametrize("case", cases("synthesis"))
def test_synthesize_equals_the_reference(server, case):
    run = reference()
    assert_synthesize_is_the_reference(
        server, MODEL, run, case, options(case), case["name"], config="EN/config"
    )


@pytest.mark.parametrize("case", cases("synthesis"))
def test_streaming_equals_the_reference(server, case):
    run = reference()
    assert_streaming_is_the_reference(server, MODEL, run, case, options(case), case["name"])
