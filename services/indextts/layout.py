"""Where the files of an IndexTTS-2 checkpoint are: the model folder and its auxiliaries.

The model folder is what `IndexTeam/IndexTTS-2` publishes (config.yaml, bpe.model,
gpt.pth, s2mel.pth, wav2vec2bert_stats.pt, feat1.pt, feat2.pt, qwen0.6bemo4-merge/).
The auxiliary models live under `<model>/hf_cache` (or another cache folder) either
flat (`w2v-bert-2.0/`, `semantic_codec_model.safetensors`, `campplus_cn_common.bin`,
`bigvgan/`) or as a Hugging Face hub cache (`models--ORG--NAME/snapshots/<rev>/...`).
Anything missing is one FailedPrecondition that lists every missing file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.indextts.config import IndexTTSConfig

W2V_BERT_REPO = "facebook/w2v-bert-2.0"
SEMANTIC_CODEC_REPO = "amphion/MaskGCT"
CAMPPLUS_REPO = "funasr/campplus"


@dataclass(frozen=True)
class CheckpointFiles:
    """Every file the pipeline reads, resolved to a path that exists."""

    folder: Path
    config: IndexTTSConfig
    bpe_model: Path
    gpt: Path
    s2mel: Path
    w2v_stat: Path
    emo_matrix: Path
    spk_matrix: Path
    w2v_bert: Path
    """A transformers directory (config.json, preprocessor_config.json, weights)."""
    semantic_codec: Path
    campplus: Path
    bigvgan: Path
    """A directory holding config.json and bigvgan_generator.pt."""
    qwen_emotion: Path | None
    """The emotion text model directory; None when the checkpoint has none."""
    glossary: Path | None = None
    """glossary.yaml: readings of terms, applied before normalisation; optional."""


def _snapshot(cache: Path, repo_id: str) -> Path | None:
    """The snapshot folder of a repo in a hub cache: refs/main's, else the only one."""
    root = cache / f"models--{repo_id.replace('/', '--')}"
    snapshots = root / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = root / "refs" / "main"
    if ref.is_file():
        pinned = snapshots / ref.read_text(encoding="utf-8").strip()
        if pinned.is_dir():
            return pinned
    found = sorted(p for p in snapshots.iterdir() if p.is_dir())
    return found[0] if len(found) == 1 else None


def _aux(cache: Path, flat: str, repo_id: str, inside: str, missing: list[str]) -> Path:
    """The flat path if it exists, else the file inside the repo's hub snapshot."""
    flat_path = cache / flat
    if flat_path.exists():
        return flat_path
    snapshot = _snapshot(cache, repo_id)
    if snapshot is not None:
        hub_path = snapshot / inside if inside else snapshot
        if hub_path.exists():
            return hub_path
    missing.append(
        f"{flat_path} (or {repo_id} in the hub cache {cache}{'/' + inside if inside else ''})"
    )
    return flat_path


def locate(folder: Path, aux_cache: Path | None = None) -> CheckpointFiles:
    """Resolves every file of the checkpoint in `folder`; FailedPrecondition lists what lacks."""
    folder = Path(folder)
    config_path = folder / "config.yaml"
    if not config_path.is_file():
        raise FailedPrecondition(
            f"IndexTTS-2 checkpoint folder {folder} has no config.yaml "
            "(download IndexTeam/IndexTTS-2 into it)"
        )
    config = IndexTTSConfig.from_yaml(config_path)
    cache = Path(aux_cache) if aux_cache is not None else folder / "hf_cache"
    missing: list[str] = []

    def own(name: str) -> Path:
        path = folder / name
        if not path.exists():
            missing.append(str(path))
        return path

    bpe = own(config.bpe_model)
    gpt = own(config.gpt_checkpoint)
    s2mel = own(config.s2mel_checkpoint)
    stat = own(config.w2v_stat)
    emo = own(config.emo_matrix)
    spk = own(config.spk_matrix)
    w2v = _aux(cache, "w2v-bert-2.0", W2V_BERT_REPO, "", missing)
    codec = _aux(
        cache,
        "semantic_codec_model.safetensors",
        SEMANTIC_CODEC_REPO,
        "semantic_codec/model.safetensors",
        missing,
    )
    campplus = _aux(
        cache, "campplus_cn_common.bin", CAMPPLUS_REPO, "campplus_cn_common.bin", missing
    )
    bigvgan = _aux(cache, "bigvgan", config.vocoder_name, "", missing)
    for name in ("config.json", "bigvgan_generator.pt"):
        if bigvgan.is_dir() and not (bigvgan / name).is_file():
            missing.append(str(bigvgan / name))
    if missing:
        raise FailedPrecondition(
            f"IndexTTS-2 checkpoint {folder} is incomplete; missing: " + "; ".join(missing)
        )
    qwen = folder / config.qwen_emo_path
    return CheckpointFiles(
        folder=folder,
        config=config,
        bpe_model=bpe,
        gpt=gpt,
        s2mel=s2mel,
        w2v_stat=stat,
        emo_matrix=emo,
        spk_matrix=spk,
        w2v_bert=w2v,
        semantic_codec=codec,
        campplus=campplus,
        bigvgan=bigvgan,
        qwen_emotion=qwen if (qwen / "config.json").is_file() else None,
        glossary=folder / "glossary.yaml" if (folder / "glossary.yaml").is_file() else None,
    )
