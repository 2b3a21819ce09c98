"""MeloTTS (English) served over gRPC against the reference TTS.tts_to_file.

scripts/parity/melotts.py ran myshell-ai/MeloTTS's tts_to_file on a tiny English model
with a tiny random BERT; here the same model and BERT (rebuilt from their seeds, digests
checked) and the lines of the reference's cmudict.rep the runs read are served by a real
TTS server. The pieces the reference's splitter made and each piece's phone ids, tones
and language ids must be the served front-end's exactly, its ja_bert features (the first
channels kept) within 1e-5 of their peak; the audio of Synthesize and StreamingSynthesize
(every piece and its trailing silence) within 1e-5 of its peak, the reference's own noise
drawn from the request's seed, other scales given as MeloTtsOptions.
"""

from __future__ import annotations

import pytest

from parity.melotts_support import MeloParity
from parity.support import (
    assert_close,
    assert_exact,
    assert_streaming_is_the_reference,
    assert_synthesize_is_the_reference,
)
from speechmesh.services.tts.engine import SynthesisParams

pytestmark = pytest.mark.xdist_group("melotts-parity")
PARITY = MeloParity("melotts", "en")
MODEL = PARITY.model


reference = PARITY.reference
cases = PARITY.cases
options = PARITY.options
snapshot, engine, server = PARITY.fixtures()


@pytest.mark.parametrize("case", cases("front_end"))
def test_pieces_and_model_inputs_are_the_references(engine, case):
    """The model input never leaves the server: the served engine's front-end."""
    settings = engine.prepare(SynthesisParams(language="en"))
    pieces = engine.pieces(case["text"], settings)
    assert [p.text for p in pieces] == case["pieces"]
    expected = reference().document(case["inputs"])
    assert len(expected) == len(pieces)
    kept = reference().manifest["bert_channels_kept"]
    for piece, wanted in zip(pieces, expected, strict=True):
        found = engine.front_end(piece.text).model_input
        assert_exact(found.phones, wanted["phones"], f"{piece.text}: phone ids")
        assert_exact(found.tones, wanted["tones"], f"{piece.text}: tones")
        assert_exact(found.languages, wanted["languages"], f"{piece.text}: language ids")
        assert not found.bert.any(), "English features go to the ja_bert input"
        features = reference().array(wanted["ja_bert"])
        assert_close(found.ja_bert[:kept].numpy(), features, f"{piece.text}: ja_bert")


@pytest.mark.parametrize("case", cases("synthesis"))
def test_synthesize_equals_the_reference(server, case):
    run = reference()
    assert_synthesize_is_the_reference(
        server, MODEL, run, case, options(case), case["name"], config="config"
    )


@pytest.mark.parametrize("case", cases("synthesis"))
def test_streaming_equals_the_reference(server, case):
    run = reference()
    assert_streaming_is_the_reference(server, MODEL, run, case, options(case), case["name"])
