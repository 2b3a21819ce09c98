"""IndexTTS-2 per-stage speed at the official sizes, random weights, a fixed number of codes.

Compute does not depend on weight values, so random weights time the real work; the
stop token's logit is pushed down so every run generates exactly --codes tokens.
Prints, per stage, the median time over --runs and the real-time factor of the
whole segment (time / seconds of audio produced).

    python benchmarks/indextts.py            # full: 250 codes, 25 steps, beams 1 and 3
    python benchmarks/indextts.py --quick    # a couple of minutes on 2 busy cores
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from speechmesh.services.indextts.bigvgan import BigVGAN
from speechmesh.services.indextts.config import BigVGANConfig, IndexTTSConfig
from speechmesh.services.indextts.s2mel import S2Mel, mel_frames
from speechmesh.services.indextts.sampling import SamplingSettings
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
    args = parser.parse_args()
    beams_list = [1, 3]
    if args.quick:
        args.codes, args.steps, args.runs, args.prompt_seconds, beams_list = 40, 4, 1, 3.0, [1]
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    torch.manual_seed(0)
    config = IndexTTSConfig()
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
        generated = None
        for beams in beams_list:
            settings = SamplingSettings(num_beams=beams, max_mel_tokens=args.codes)
            generator = torch.Generator(device=device).manual_seed(0)
            t_gen, generated = timed(
                lambda s=settings, g=generator: gpt.generate(conditioning, text_ids, s, g),
                args.runs,
            )
            results[f"gpt decode (beams {beams}, per token {t_gen / args.codes * 1000:.1f} ms)"] = (
                t_gen
            )
        assert generated is not None and len(generated.codes) == args.codes
        t_latent, _ = timed(lambda: gpt.latent(conditioning, text_ids, generated.codes), args.runs)
        results["gpt latent forward"] = t_latent
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
        decode = next(v for k, v in results.items() if k.startswith(f"gpt decode (beams {beams}"))
        total = t_cond + decode + t_s2mel + t_voc + (t_latent if beams > 1 else 0.0)
        print(f"  segment total, beams {beams}: {total:.2f} s → RTF {total / audio_s:.3f}")


if __name__ == "__main__":
    main()
