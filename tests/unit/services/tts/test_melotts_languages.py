"""MeloTTS language front-ends without their packages: the model does not load (it is
NOT_SERVING) with a FailedPrecondition naming the package; and the splitter the CJK
languages use."""

from __future__ import annotations

import sys

import pytest

from speechmesh.runtime.config import ModelConfig
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.tts.melotts.engine import MeloTts
from speechmesh.services.tts.melotts.splitting import split_cjk

FRONT_ENDS = {
    "ES": ("gruut", "spanish"),
    "FR": ("gruut", "french"),
    "KR": ("jamo", "korean"),
    "JP": ("pykakasi", "japanese"),
}


@pytest.mark.parametrize("mark", sorted(FRONT_ENDS))
def test_a_missing_front_end_package_is_failed_precondition(mark, monkeypatch, tmp_path):
    from parity.melotts_weights import rebuild_reference_model
    from parity.support import ReferenceRun

    package, module = FRONT_ENDS[mark]
    try:
        run = ReferenceRun(f"melotts-{mark.lower()}")
    except FileNotFoundError:
        pytest.skip(f"no melotts-{mark.lower()} fixtures")
    options = rebuild_reference_model(run, tmp_path)
    monkeypatch.setitem(sys.modules, package, None)  # an import of it raises ImportError
    for name in (module, "gruut_g2p"):
        monkeypatch.delitem(sys.modules, f"speechmesh.services.tts.melotts.{name}", False)
    engine = MeloTts(
        ModelConfig(id="m", family="melotts", source=str(tmp_path / "model"), options=options)
    )
    with pytest.raises(FailedPrecondition, match=f"{mark} front-end needs {package}"):
        engine.load()


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("안녕하세요. 만나서 반갑습니다!", ["안녕하세요. 만나서 반갑습니다!"]),
        # As the reference: every CJK sentence mark becomes ".".
        ("오늘은 좋은 날입니다。날씨가 좋아요！", ["오늘은 좋은 날입니다.", "날씨가 좋아요."]),
        ("긴 문장이 하나 있습니다. 네.", ["긴 문장이 하나 있습니다. 네."]),
        ("네. 아니요, 그렇지 않습니다.", ["네. 아니요, 그렇지 않습니다."]),
        ("", []),
    ],
)
def test_split_cjk_joins_short_cuts_as_the_reference(text, pieces):
    assert split_cjk(text) == pieces
