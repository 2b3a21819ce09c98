from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.indextts.config import IndexTTSConfig
from speechmesh.services.indextts.layout import locate

pytestmark = pytest.mark.xdist_group("indextts-checkpoint")

OFFICIAL_YAML = (Path(__file__).parent / "official_config.yaml").read_text(encoding="utf-8")


def test_defaults_are_the_official_config():
    official = IndexTTSConfig.from_dict(yaml.safe_load(OFFICIAL_YAML))
    # The spect "fmax: None" string means no upper limit, as in the reference.
    assert official == IndexTTSConfig()
    assert official.s2mel.preprocess_params.fmax is None


def test_config_round_trips_and_names_bad_fields():
    config = IndexTTSConfig()
    assert IndexTTSConfig.from_dict(config.to_dict()) == config
    raw = yaml.safe_load(OFFICIAL_YAML)
    raw["gpt"]["layers"] = "many"
    with pytest.raises(FailedPrecondition, match=r"gpt: layers must be an integer"):
        IndexTTSConfig.from_dict(raw)
    raw = yaml.safe_load(OFFICIAL_YAML)
    raw["emo_num"] = [1, 2]
    with pytest.raises(FailedPrecondition, match="emo_num"):
        IndexTTSConfig.from_dict(raw)


def test_layout_names_every_missing_file(tiny_checkpoint: Path, tmp_path: Path):
    files = locate(tiny_checkpoint)
    assert files.bigvgan.name == "bigvgan" and files.qwen_emotion is None
    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, broken)
    (broken / "gpt.pth").unlink()
    (broken / "hf_cache" / "campplus_cn_common.bin").unlink()
    with pytest.raises(FailedPrecondition) as error:
        locate(broken)
    assert "gpt.pth" in error.value.message and "campplus_cn_common.bin" in error.value.message
    with pytest.raises(FailedPrecondition, match=r"no config\.yaml"):
        locate(tmp_path / "nothing")


def test_hub_cache_layout_is_found(tiny_checkpoint: Path, tmp_path: Path):
    folder = tmp_path / "hub"
    shutil.copytree(tiny_checkpoint, folder)
    cache = folder / "hf_cache"
    moves = {
        "w2v-bert-2.0": ("facebook/w2v-bert-2.0", ""),
        "semantic_codec_model.safetensors": ("amphion/MaskGCT", "semantic_codec/model.safetensors"),
        "campplus_cn_common.bin": ("funasr/campplus", "campplus_cn_common.bin"),
        "bigvgan": ("nvidia/bigvgan_v2_22khz_80band_256x", ""),
    }
    for flat, (repo, inside) in moves.items():
        root = cache / f"models--{repo.replace('/', '--')}"
        target = root / "snapshots" / "0123abcd" / inside
        target.parent.mkdir(parents=True, exist_ok=True)
        (cache / flat).rename(target)
        (root / "refs").mkdir()
        (root / "refs" / "main").write_text("0123abcd")
    files = locate(folder)
    assert (
        files.semantic_codec
        == cache / "models--amphion--MaskGCT/snapshots/0123abcd/semantic_codec/model.safetensors"
    )
    assert (files.w2v_bert / "config.json").is_file() and (files.bigvgan / "config.json").is_file()
