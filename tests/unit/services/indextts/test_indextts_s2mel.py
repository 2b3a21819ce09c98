from __future__ import annotations

import torch
from indextts_checkpoint import TINY_BIGVGAN, randomize, tiny_config

from speechmesh.nn.spectral import kaldi_fbank, reference_mel, slaney_filters
from speechmesh.services.indextts.bigvgan import BigVGAN
from speechmesh.services.indextts.checkpoint import (
    fold_weight_norm,
    unfold_weight_norm,
    weight_normed,
)
from speechmesh.services.indextts.s2mel import S2Mel, mel_frames

S2MEL = tiny_config(60).s2mel


def test_length_laws():
    assert [mel_frames(n) for n in (0, 1, 100, 250, 1500)] == [0, 1, 172, 430, 2580]
    vocoder = randomize(BigVGAN(TINY_BIGVGAN), 0)
    with torch.no_grad():
        for frames in (1, 7, 20):
            assert vocoder(torch.randn(1, 80, frames)).shape == (1, 1, frames * 256)
    model = randomize(S2Mel(S2MEL), 0)
    with torch.no_grad():
        assert model.length_regulator(torch.randn(1, 10, 32), mel_frames(10)).shape == (1, 17, 16)


def test_cfg_formula_and_prompt_zeroing():
    cfm = randomize(S2Mel(S2MEL), 1).cfm
    mu, prompt, style = torch.randn(1, 12, 16), torch.randn(1, 80, 4), torch.randn(1, 192)
    noise = torch.randn(1, 80, 12)
    guided = cfm.inference(mu, prompt, style, steps=1, cfg_rate=0.7, noise=noise)
    assert torch.all(guided[:, :, :4] == 0)  # the prompt's frames stay zero
    # One Euler step from t=0 with dt=1: x = x0 + (1.7·v(cond) − 0.7·v(uncond)).
    x0 = noise.clone()
    x0[:, :, :4] = 0
    prompt_x = torch.zeros_like(x0)
    prompt_x[:, :, :4] = prompt
    lengths, t = torch.tensor([12]), torch.zeros(1)
    with torch.no_grad():
        cond = cfm.estimator(x0, prompt_x, lengths, t, style, mu)
        uncond = cfm.estimator(
            x0,
            torch.zeros_like(prompt_x),
            lengths,
            t,
            torch.zeros_like(style),
            torch.zeros_like(mu),
        )
    expected = x0 + 1.7 * cond - 0.7 * uncond
    assert torch.allclose(guided[:, :, 4:], expected[:, :, 4:], atol=1e-5)
    plain = cfm.inference(mu, prompt, style, steps=1, cfg_rate=0.0, noise=noise)
    assert torch.allclose(plain[:, :, 4:], (x0 + cond)[:, :, 4:], atol=1e-5)


def test_weight_norm_folds_to_what_torch_computes():
    conv = torch.nn.utils.weight_norm(torch.nn.ConvTranspose1d(4, 3, 5))
    with torch.no_grad():
        conv.weight_g.mul_(torch.rand_like(conv.weight_g) + 0.5)
        conv(torch.randn(1, 4, 3))  # recomputes conv.weight from g and v
    folded = fold_weight_norm({"up.weight_g": conv.weight_g, "up.weight_v": conv.weight_v})
    assert torch.allclose(folded["up.weight"], conv.weight, atol=1e-6)
    vocoder = randomize(BigVGAN(TINY_BIGVGAN), 2)
    names = weight_normed(vocoder)
    assert "conv_pre" in names and "ups.0.0" in names and "resblocks.0.convs1.0" in names
    published = unfold_weight_norm(vocoder.state_dict(), names)
    assert "conv_post.weight_v" in published and "conv_post.bias" not in published
    again = fold_weight_norm(published)
    assert all(torch.allclose(again[k], v, atol=1e-6) for k, v in vocoder.state_dict().items())


def test_spectral_front_ends():
    filters = slaney_filters(22050, 1024, 80, 0.0, None)
    assert filters.shape == (80, 513) and torch.all(filters >= 0)
    tone = torch.sin(torch.arange(22050) * 2 * torch.pi * 440 / 22050).unsqueeze(0)
    mel = reference_mel(tone, 22050, 1024, 256, 1024, 80, 0.0, None)
    assert mel.shape == (1, 80, 22050 // 256)
    peak = int(mel[0, :, 40].argmax())
    assert torch.all(mel[0, peak, 10:70] > mel[0, 60, 10:70])
    fbank = kaldi_fbank(torch.randn(16000) * 0.1)
    assert fbank.shape == (98, 80) and torch.isfinite(fbank).all()
