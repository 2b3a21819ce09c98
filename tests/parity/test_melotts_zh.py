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

import pytest

from parity.melotts_support import MeloParity
from parity.support import (
    assert_close,
    assert_exact,
    assert_streaming_is_the_reference,
    assert_synthesize_is_the_reference,
)
from speechmesh.services.tts.engine import SynthesisParams

pytestmark = pytest.mark.xdist_group("melotts-zh-parity")
PARITY = MeloParity("melotts-zh", "zh")
MODEL = PARITY.model
ZH_MIX_EN = 3
"""symbols.py's language id of ZH_MIX_EN, the row every phone of the ZH model uses."""


reference = PARITY.reference
cases = PARITY.cases
options = PARITY.options
snapshot, engine, server = PARITY.fixtures()


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
    run = reference()
    assert_synthesize_is_the_reference(
        server, MODEL, run, case, options(case), case["name"], config="config"
    )


@pytest.mark.parametrize("case", cases("synthesis"))
def test_streaming_equals_the_reference(server, case):
    run = reference()
    assert_streaming_is_the_reference(server, MODEL, run, case, options(case), case["name"])
