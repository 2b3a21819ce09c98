"""IndexTTS-2 per-stage speed at the official sizes, random weights, a fixed number of codes.

Compute does not depend on weight values, so random weights time the real work; the
stop token's logit is pushed down so every run generates exactly --codes tokens.
Prints, per stage, the median time over --runs and the real-time factor of the
whole segment (time / seconds of audio produced).

    python benchmarks/indextts.py            # full: 250 codes, 25 steps, beams 1 and 3
    python benchmarks/indextts.py --quick    # a couple of minutes on 2 busy cores
    python benchmarks/indextts.py --stages prompt   # the prompt stages alone

The prompt stages (w2v-BERT 2.0 at its published size on both 16 kHz signals, the
semantic codec, the reference mel, Kaldi fbank + CAM++) run once per new prompt; the
service caches them by the prompt's hash.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from speechmesh.services.indextts.bigvgan import BigVGAN
from speechmesh.services.indextts.campplus import CAMPPlus
from speechmesh.services.indextts.config import BigVGANConfig, CampplusConfig, IndexTTSConfig
from speechmesh.services.indextts.s2mel import S2Mel, mel_frames
from speechmesh.services.indextts.sampling import SamplingSettings
from speechmesh.services.indextts.semantic_codec import SemanticCodec
from speechmesh.services.indextts.spectral import kaldi_fbank, reference_mel, sinc_resample
from speechmesh.services.indextts.unified_voice import UnifiedVoice


def timed(fn, runs: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, out = [], None
    for _ in range(runs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        started = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def prompt_stages(config: IndexTTSConfig, seconds: float, device: torch.device, runs: int):  # type: ignore[no-untyped-def]
    """Per-stage times of a new prompt, as the pipeline computes them."""
    import numpy as np
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertConfig, Wav2Vec2BertModel

    started = time.perf_counter()
    w2v = Wav2Vec2BertModel(Wav2Vec2BertConfig()).eval().to(device)  # w2v-bert-2.0's sizes
    w2v.config._attn_implementation = "eager"  # as the service loads it
    extractor = SeamlessM4TFeatureExtractor()
    codec = SemanticCodec(config.semantic_codec).eval().to(device)
    campplus = CAMPPlus(CampplusConfig()).eval().to(device)
    print(f"built w2v-BERT 2.0, semantic codec, CAM++ in {time.perf_counter() - started:.1f} s")
    rng = np.random.default_rng(0)
    audio_22k = (0.1 * rng.standard_normal(int(seconds * 22050))).astype(np.float32)
    spect = config.s2mel.preprocess_params
    results: dict[str, float] = {}
    with torch.inference_mode():
        results["sinc resample 22.05 → 16 kHz"], audio_16k = timed(
            lambda: sinc_resample(audio_22k, 22050, 16000), runs
        )

        def features():  # type: ignore[no-untyped-def]
            inputs = extractor(audio_16k, sampling_rate=16000, return_tensors="pt")
            out = w2v(
                input_features=inputs["input_features"].to(device),
                attention_mask=inputs["attention_mask"].to(device),
                output_hidden_states=True,
            )
            return out.hidden_states[config.w2v_layer]

        t_w2v, semantic = timed(features, runs)
        results["w2v-BERT features (one signal; a prompt makes two)"] = t_w2v
        results["semantic codec quantize"], _ = timed(lambda: codec.quantize(semantic), runs)
        wave = torch.from_numpy(audio_22k)[None].to(device)
        results["reference mel"], _ = timed(
            lambda: reference_mel(
                wave,
                spect.sr,
                spect.n_fft,
                spect.hop_length,
                spect.win_length,
                spect.n_mels,
                spect.fmin,
                spect.fmax,
            ),
            runs,
        )

        def style():  # type: ignore[no-untyped-def]
            fbank = kaldi_fbank(torch.from_numpy(audio_16k)).to(device)
            return campplus((fbank - fbank.mean(dim=0, keepdim=True)).unsqueeze(0))

        results["Kaldi fbank + CAM++ style"], _ = timed(style, runs)
    total = sum(results.values()) + t_w2v  # the emotion side's second w2v-BERT pass
    results["prompt total (two w2v-BERT passes)"] = total
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="40 codes, 4 steps, 1 run, beams 1 only"
    )
    parser.add_argument("--codes", type=int, default=250)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--prompt-seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--stages", default="all", choices=["all", "prompt", "segment"])
    args = parser.parse_args()
    beams_list = [1, 3]
    if args.quick:
        args.codes, args.steps, args.runs, args.prompt_seconds, beams_list = 40, 4, 1, 3.0, [1]
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    torch.manual_seed(0)
    config = IndexTTSConfig()
    if args.stages in ("all", "prompt"):
        stages = prompt_stages(config, args.prompt_seconds, device, args.runs)
        print(f"prompt: {args.prompt_seconds:.1f} s at 22.05 kHz")
        width = max(len(k) for k in stages)
        for name, seconds in stages.items():
            print(f"  {name:<{width}}  {seconds * 1000:9.1f} ms")
        if args.stages == "prompt":
            return
    started = time.perf_counter()
    gpt = UnifiedVoice(config.gpt).eval().to(device, dtype)
    with torch.no_grad():
        gpt.mel_head.bias[config.gpt.stop_mel_token] = -1e4
    s2mel = S2Mel(config.s2mel).eval().to(device)
    vocoder = BigVGAN(BigVGANConfig()).eval().to(device)
    print(
        f"built full-size GPT, S2MEL, BigVGAN in {time.perf_counter() - started:.1f} s "
        f"on {device} ({args.dtype})"
    )

    frames_50hz = int(args.prompt_seconds * 50)
    prompt_frames = int(args.prompt_seconds * 22050 / 256)
    features = torch.randn(1, frames_50hz, 1024, device=device, dtype=dtype)
    text_ids = list(range(2, 42))  # a 40-token segment
    audio_s = mel_frames(args.codes) * 256 / 22050
    print(
        f"segment: {len(text_ids)} text tokens → {args.codes} codes → {audio_s:.2f} s of audio; "
        f"prompt {args.prompt_seconds:.1f} s; {args.steps} flow steps"
    )

    with torch.inference_mode():
        lengths = torch.tensor([frames_50hz], device=device)
        t_cond, conditioning = timed(
            lambda: gpt.conditioning(
                gpt.speaker_latents(features, lengths), gpt.emotion_vector(features, lengths)
            ),
            args.runs,
        )
        results = {"gpt conditioning": t_cond}
        codes = list(range(100, 100 + args.codes))
        t_latent, _ = timed(lambda: gpt.latent(conditioning, text_ids, codes), args.runs)
        results["gpt latent pass (teacher-forced, alone)"] = t_latent
        generated = None
        for beams in beams_list:
            settings = SamplingSettings(num_beams=beams, max_mel_tokens=args.codes)
            generator = torch.Generator(device=device).manual_seed(0)
            t_gen, generated = timed(
                lambda s=settings, g=generator: gpt.generate(conditioning, text_ids, s, g),
                args.runs,
            )
            # generate() ends with the teacher-forced latent pass (timed alone below).
            per_token = (t_gen - t_latent) / args.codes * 1000
            results[f"gpt decode + latent (beams {beams}, {per_token:.1f} ms a token)"] = t_gen
        assert generated is not None and len(generated.codes) == args.codes
        mu = torch.randn(1, prompt_frames + mel_frames(args.codes), 512, device=device)
        ref_mel = torch.randn(1, 80, prompt_frames, device=device)
        style = torch.randn(1, 192, device=device)
        t_s2mel, mel = timed(
            lambda: s2mel.cfm.inference(mu, ref_mel, style, args.steps, 0.7), args.runs
        )
        results["s2mel flow matching (cfg 0.7)"] = t_s2mel
        target = mel[:, :, prompt_frames:]
        t_voc, wave = timed(lambda: vocoder(target), args.runs)
        results["bigvgan"] = t_voc
        assert wave.shape[-1] == mel_frames(args.codes) * 256

    width = max(len(k) for k in results)
    for name, seconds in results.items():
        print(f"  {name:<{width}}  {seconds * 1000:9.1f} ms")
    for beams in beams_list:
        decode = next(v for k, v in results.items() if f"(beams {beams}," in k)
        total = t_cond + decode + t_s2mel + t_voc
        print(f"  segment total, beams {beams}: {total:.2f} s → RTF {total / audio_s:.3f}")


if __name__ == "__main__":
    main()
