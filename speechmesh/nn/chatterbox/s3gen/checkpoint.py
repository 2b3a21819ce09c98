"""S3Gen's official checkpoint files and their strict, safe loading.

  * ResembleAI/chatterbox: `s3gen.safetensors` (standard); the multilingual model in
    the same repository ships `s3gen.pt` (read with torch.load(weights_only=True) only).
  * ResembleAI/chatterbox-turbo: `s3gen_meanflow.safetensors` (meanflow estimator).

The files hold tensors only, so the sizes are read from their shapes (`infer_config`):
the few that shapes do not show are fixed in the reference's code (64-dimensional
attention heads in the tokenizer and the estimator, CAM++'s dilations, HiFT's
upsampling rates) and taken as published. Every key must match the module tree
(model.py) except the tokenizer's mel filters
and window (the reference computes them and its own files may lack them) and batch
norms' `num_batches_tracked`; weight norm is folded, whether stored as the
parametrization pair `X.parametrizations.weight.original{0,1}` or the legacy
`X.weight_{g,v}`. A missing file or any other mismatch is a FailedPrecondition that
names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from speechmesh.nn.campplus import CampplusConfig
from speechmesh.nn.chatterbox.s3gen.config import (
    EncoderConfig,
    EstimatorConfig,
    HiFTConfig,
    S3GenConfig,
)
from speechmesh.nn.chatterbox.s3gen.model import S3Gen
from speechmesh.nn.chatterbox.s3tokenizer import S3TokenizerConfig
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.runtime.weights import load_state_dict, load_strict, require_files

STANDARD_FILE = "s3gen.safetensors"
MULTILINGUAL_FILE = "s3gen.pt"
TURBO_FILE = "s3gen_meanflow.safetensors"
IGNORED = ("*.num_batches_tracked", "tokenizer._mel_filters", "tokenizer.window")
_G, _V = ".parametrizations.weight.original0", ".parametrizations.weight.original1"


def fold_weight_norm(state: Mapping[str, Any]) -> dict[str, Any]:
    """Weight-norm pairs (parametrization or legacy names) folded into `X.weight`.

    Folded with torch's own kernel (`torch._weight_norm`, what both weight-norm APIs
    run at every forward), so the weights are the reference's to the last bit;
    the shared formula in runtime.weights differs by rounding (~4e-7 of a weight),
    which HiFT's exponential magnitudes amplify past 1e-5.
    """
    pairs: dict[str, dict[str, Any]] = {}
    folded: dict[str, Any] = {}
    for key, value in state.items():
        for g_name, v_name in ((_G, _V), (".weight_g", ".weight_v")):
            if key.endswith(g_name):
                pairs.setdefault(key[: -len(g_name)], {})["g"] = value
                break
            if key.endswith(v_name):
                pairs.setdefault(key[: -len(v_name)], {})["v"] = value
                break
        else:
            folded[key] = value
    orphans = sorted(name for name, pair in pairs.items() if len(pair) != 2)
    if orphans:
        raise FailedPrecondition(
            f"weight norm pairs without their other half: {', '.join(orphans)}"
        )
    for name, pair in pairs.items():
        v, g = torch.as_tensor(pair["v"]), torch.as_tensor(pair["g"])
        folded[f"{name}.weight"] = torch._weight_norm(v, g, 0)
    return folded


HEAD_DIM = 64  # the tokenizer's and the estimator's attention heads (fixed upstream)


def _count(state: Mapping[str, Any], prefix: str) -> int:
    """How many numbered children `prefix.N.` the state has."""
    found = {key[len(prefix) :].split(".", 1)[0] for key in state if key.startswith(prefix)}
    return len([n for n in found if n.isdigit()])


def _shape(state: Mapping[str, Any], key: str) -> tuple[int, ...]:
    if key not in state:
        raise FailedPrecondition(f"S3Gen checkpoint lacks {key}; it is not an S3Gen file")
    return tuple(state[key].shape)


def infer_config(state: Mapping[str, Any]) -> S3GenConfig:
    """The sizes of the network a (weight-norm folded) state holds."""
    tok = "tokenizer.encoder."
    n_state = _shape(state, tok + "conv1.weight")[0]
    tokenizer = S3TokenizerConfig(
        n_mels=_shape(state, tok + "conv1.weight")[1],
        n_state=n_state,
        n_head=n_state // HEAD_DIM,
        n_layer=_count(state, tok + "blocks."),
        fsmn_kernel=_shape(state, tok + "blocks.0.attn.fsmn_block.weight")[-1],
    )
    cam = "speaker_encoder."
    m_channels = _shape(state, cam + "head.conv1.weight")[0]
    growth = _shape(state, cam + "xvector.block1.tdnnd1.cam_layer.linear_local.weight")[0]
    campplus = CampplusConfig(
        feat_dim=_shape(state, cam + "xvector.tdnn.linear.weight")[1] // m_channels * 8,
        embedding_size=_shape(state, cam + "xvector.dense.linear.weight")[0],
        growth_rate=growth,
        bn_size=_shape(state, cam + "xvector.block1.tdnnd1.linear1.weight")[0] // growth,
        init_channels=_shape(state, cam + "xvector.tdnn.linear.weight")[0],
        m_channels=m_channels,
        block_layers=tuple(_count(state, f"{cam}xvector.block{i}.tdnnd") for i in range(1, 4)),
    )
    enc = "flow.encoder."
    size = _shape(state, enc + "after_norm.weight")[0]
    encoder = EncoderConfig(
        input_size=_shape(state, "flow.input_embedding.weight")[1],
        size=size,
        heads=_shape(state, enc + "encoders.0.self_attn.pos_bias_u")[0],
        linear_units=_shape(state, enc + "encoders.0.feed_forward.w_1.weight")[0],
        blocks=_count(state, enc + "encoders."),
        up_blocks=_count(state, enc + "up_encoders."),
        pre_lookahead=_shape(state, enc + "pre_lookahead_layer.conv1.weight")[-1] - 1,
        up_stride=(_shape(state, enc + "up_layer.conv.weight")[-1] - 1) // 2,
    )
    est = "flow.decoder.estimator."
    downs = _count(state, est + "down_blocks.")
    estimator = EstimatorConfig(
        in_channels=_shape(state, est + "time_mlp.linear_1.weight")[1],
        out_channels=_shape(state, est + "final_proj.weight")[0],
        channels=tuple(
            _shape(state, f"{est}down_blocks.{i}.0.res_conv.weight")[0] for i in range(downs)
        ),
        attention_head_dim=HEAD_DIM,
        n_blocks=_count(state, est + "down_blocks.0.1."),
        num_mid_blocks=_count(state, est + "mid_blocks."),
        num_heads=_shape(state, est + "down_blocks.0.1.0.attn1.to_q.weight")[0] // HEAD_DIM,
    )
    hift = HiFTConfig(
        in_channels=_shape(state, "mel2wav.conv_pre.weight")[1],
        base_channels=_shape(state, "mel2wav.conv_pre.weight")[0],
        nb_harmonics=_shape(state, "mel2wav.m_source.l_linear.weight")[1] - 1,
        n_fft=_shape(state, "mel2wav.conv_post.weight")[0] - 2,
        f0_channels=_shape(state, "mel2wav.f0_predictor.condnet.0.weight")[0],
    )
    return S3GenConfig(
        tokenizer=tokenizer,
        campplus=campplus,
        encoder=encoder,
        estimator=estimator,
        hift=hift,
        vocab_size=_shape(state, "flow.input_embedding.weight")[0],
        meanflow=est + "time_embed_mixer.weight" in state,
    )


def load_s3gen(path: Path, config: S3GenConfig | None = None, device: str = "cpu") -> S3Gen:
    """An S3Gen in eval mode from an official file (its folder is checked first); its
    sizes are the file's own unless `config` is given (then they must match)."""
    path = Path(path)
    (found,) = require_files(path.parent, [path.name])
    state = fold_weight_norm(load_state_dict(found))
    model = S3Gen(config or infer_config(state))
    load_strict(model, state, ignore=IGNORED)
    return model.to(device).eval()
