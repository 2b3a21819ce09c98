"""Tiny random IndexTTS-2 checkpoints written in the official file formats and key names."""

from __future__ import annotations

import io
import json
from pathlib import Path

import sentencepiece
import torch
import yaml
from safetensors.torch import save_file

from speechmesh.services.indextts.bigvgan import BigVGAN
from speechmesh.services.indextts.campplus import CAMPPlus
from speechmesh.services.indextts.checkpoint import unfold_weight_norm, weight_normed
from speechmesh.services.indextts.config import (
    BigVGANConfig,
    CampplusConfig,
    ConformerConfig,
    DiTConfig,
    GptConfig,
    IndexTTSConfig,
    LengthRegulatorConfig,
    S2MelConfig,
    SemanticCodecConfig,
    WavenetConfig,
)
from speechmesh.services.indextts.s2mel import S2Mel
from speechmesh.services.indextts.semantic_codec import SemanticCodec
from speechmesh.services.indextts.unified_voice import UnifiedVoice

W2V_DIM = 32
CORPUS = [
    "Hello world, this is a small test of the speech system.",
    "The quick brown fox jumps over the lazy dog!",
    "How are you today? I am fine, thank you.",
    "你好世界，今天天气很好。我们去公园散步吧！",
    "Speech synthesis turns text into audio, one segment at a time.",
    "欢迎大家来体验语音合成，并给予我们意见与反馈，谢谢大家。",
]

TINY_BIGVGAN = BigVGANConfig(
    upsample_rates=(4, 4, 4, 4),
    upsample_kernel_sizes=(8, 8, 8, 8),
    upsample_initial_channel=32,
    resblock_kernel_sizes=(3,),
    resblock_dilation_sizes=((1, 3, 5),),
)


def tiny_config(vocab: int, w2v_layer: int = 2) -> IndexTTSConfig:
    small = ConformerConfig(output_size=16, linear_units=32, attention_heads=2, num_blocks=1)
    return IndexTTSConfig(
        gpt=GptConfig(
            model_dim=32,
            max_mel_tokens=60,
            max_text_tokens=80,
            heads=2,
            layers=2,
            number_text_tokens=vocab,
            number_mel_codes=18,
            start_mel_token=16,
            stop_mel_token=17,
            condition_module=small,
            emo_condition_module=small,
            semantic_dim=W2V_DIM,
        ),
        semantic_codec=SemanticCodecConfig(
            codebook_size=16,
            hidden_size=W2V_DIM,
            codebook_dim=4,
            vocos_dim=16,
            vocos_intermediate_dim=32,
            vocos_num_layers=1,
        ),
        s2mel=S2MelConfig(
            length_regulator=LengthRegulatorConfig(
                channels=16, in_channels=W2V_DIM, content_codebook_size=8
            ),
            DiT=DiTConfig(
                hidden_dim=16, num_heads=2, depth=3, content_dim=16, content_codebook_size=8
            ),
            wavenet=WavenetConfig(hidden_dim=16, num_layers=2),
            gpt_latent_dims=(32, 8, 8, W2V_DIM),
        ),
        emo_num=(2, 1, 1, 1, 1, 1, 1, 2),
        w2v_layer=w2v_layer,
    )


def randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every weight random (so no test passes on zeros); norm statistics kept valid."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            if not tensor.is_floating_point() or name.endswith(("filter", ".pe", "freqs")):
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.2)
    return module.eval()


def codec_decoder(config: SemanticCodecConfig, seed: int) -> dict[str, torch.Tensor]:
    """The codec's decoder as the published file holds it (the service never reads it)."""
    generator = torch.Generator().manual_seed(seed)
    dim, inner, width = config.vocos_dim, config.vocos_intermediate_dim, config.hidden_size
    shapes = {
        "decoder.0.embed.weight": (dim, width, 7),
        "decoder.0.embed.bias": (dim,),
        "decoder.0.norm.weight": (dim,),
        "decoder.0.norm.bias": (dim,),
        "decoder.0.final_layer_norm.weight": (dim,),
        "decoder.0.final_layer_norm.bias": (dim,),
        "decoder.1.weight": (width, dim),
        "decoder.1.bias": (width,),
    }
    for i in range(config.vocos_num_layers):
        block = f"decoder.0.convnext.{i}"
        shapes |= {
            f"{block}.gamma": (dim,),
            f"{block}.dwconv.weight": (dim, 1, 7),
            f"{block}.dwconv.bias": (dim,),
            f"{block}.norm.weight": (dim,),
            f"{block}.norm.bias": (dim,),
            f"{block}.pwconv1.weight": (inner, dim),
            f"{block}.pwconv1.bias": (inner,),
            f"{block}.pwconv2.weight": (dim, inner),
            f"{block}.pwconv2.bias": (dim,),
        }
    return {k: torch.randn(v, generator=generator) * 0.2 for k, v in shapes.items()}


def published(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return unfold_weight_norm(module.state_dict(), weight_normed(module))


def train_bpe(folder: Path, vocab: int = 120) -> Path:
    from speechmesh.services.indextts.normalizer import fold_punctuation
    from speechmesh.services.indextts.text import pre_tokenize

    # From memory to memory: the model then records no file paths, so it is the same
    # bytes wherever it is built.
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter([pre_tokenize(fold_punctuation(line)) for line in CORPUS * 4]),
        model_writer=model,
        vocab_size=vocab,
        model_type="bpe",
        bos_id=0,
        eos_id=1,
        unk_id=2,
        pad_id=-1,
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    (folder / "bpe.model").write_bytes(model.getvalue())
    return folder / "bpe.model"


def write_checkpoint(
    folder: Path,
    layout: str = "flat",
    seed: int = 0,
    module_prefix: bool = True,
    w2v_layers: int = 2,
    runs_to_limit: bool = False,
) -> IndexTTSConfig:
    """A complete tiny checkpoint in `folder` (aux models under hf_cache, flat or hub layout).

    Every file follows from `seed` alone. `w2v_layers` (≥ the layer the GPT reads) sizes
    w2v-BERT; the reference reads hidden state 17 whatever its config, so its parity
    weights have 17 layers. `runs_to_limit` biases the GPT's head away from the stop and
    start tokens, so that every segment has max_mel_tokens codes (random weights otherwise
    stop within a few draws of 18 and leave some seeds with no audio at all)."""
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertConfig, Wav2Vec2BertModel

    folder.mkdir(parents=True, exist_ok=True)
    train_bpe(folder)
    vocab = sentencepiece.SentencePieceProcessor(
        model_file=str(folder / "bpe.model")
    ).get_piece_size()
    config = tiny_config(vocab, w2v_layer=min(w2v_layers, 17))
    noise = torch.Generator().manual_seed(seed + 5)
    (folder / "config.yaml").write_text(
        yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8"
    )
    gpt = randomize(UnifiedVoice(config.gpt), seed).state_dict()
    if runs_to_limit:
        for token in (config.gpt.stop_mel_token, config.gpt.start_mel_token):
            gpt["mel_head.bias"][token] = -50.0
    torch.save(gpt, folder / "gpt.pth")
    s2mel = randomize(S2Mel(config.s2mel), seed + 1)
    prefix = "module." if module_prefix else ""
    net = {
        name: {prefix + k: v for k, v in published(getattr(s2mel, name)).items()}
        for name in ("cfm", "length_regulator", "gpt_layer")
    }
    torch.save({"net": net}, folder / "s2mel.pth")
    torch.save(
        {
            "mean": torch.randn(W2V_DIM, generator=noise) * 0.1,
            "var": torch.rand(W2V_DIM, generator=noise) + 0.5,
        },
        folder / "wav2vec2bert_stats.pt",
    )
    rows = sum(config.emo_num)
    torch.save(torch.randn(rows, 192, generator=noise), folder / "feat1.pt")
    torch.save(torch.randn(rows, config.gpt.model_dim, generator=noise), folder / "feat2.pt")

    cache = folder / "hf_cache"

    def place(flat: str, repo: str, inside: str) -> Path:
        if layout == "flat":
            path = cache / flat
        else:
            root = cache / f"models--{repo.replace('/', '--')}"
            (root / "refs").mkdir(parents=True, exist_ok=True)
            (root / "refs" / "main").write_text("0123abcd", encoding="utf-8")
            path = root / "snapshots" / "0123abcd" / inside
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    w2v_dir = place("w2v-bert-2.0", "facebook/w2v-bert-2.0", "")
    torch.manual_seed(seed)
    w2v = Wav2Vec2BertModel(
        Wav2Vec2BertConfig(
            hidden_size=W2V_DIM,
            num_hidden_layers=w2v_layers,
            num_attention_heads=2,
            intermediate_size=64,
            output_hidden_size=W2V_DIM,
            conv_depthwise_kernel_size=3,
        )
    )
    w2v.save_pretrained(str(w2v_dir))
    SeamlessM4TFeatureExtractor().save_pretrained(str(w2v_dir))
    codec = published(randomize(SemanticCodec(config.semantic_codec), seed + 2))
    codec.update(codec_decoder(config.semantic_codec, seed + 6))
    save_file(
        {k: v.contiguous() for k, v in codec.items()},
        str(
            place(
                "semantic_codec_model.safetensors",
                "amphion/MaskGCT",
                "semantic_codec/model.safetensors",
            )
        ),
    )
    campplus = randomize(CAMPPlus(CampplusConfig()), seed + 3)
    torch.save(
        campplus.state_dict(),
        place("campplus_cn_common.bin", "funasr/campplus", "campplus_cn_common.bin"),
    )
    bigvgan_dir = place("bigvgan", config.vocoder_name, "")
    bigvgan_dir.mkdir(parents=True, exist_ok=True)
    vocoder = randomize(BigVGAN(TINY_BIGVGAN), seed + 4)
    torch.save({"generator": published(vocoder)}, bigvgan_dir / "bigvgan_generator.pt")
    body = {k: list(v) if isinstance(v, tuple) else v for k, v in TINY_BIGVGAN.__dict__.items()}
    (bigvgan_dir / "config.json").write_text(json.dumps(body), encoding="utf-8")
    return config
