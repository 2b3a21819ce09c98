"""HarmonySpeech V1 benchmark: per-stage time and real-time factor of the chain at the
official sizes, with random weights (the compute does not depend on the values).

Stages: text front-end, ForwardTacotron (prosody + mel), MB-MelGAN + PQMF. The models
are built from the sizes below and run as the engines run them; RTF is processing
seconds per second of audio. CPU always; CUDA too when a GPU is present.

Usage: python benchmarks/harmonyspeech.py [--quick] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from speechmesh.services.tts.harmonyspeech import text
from speechmesh.services.tts.harmonyspeech.checkpoint import MelGanVocoder
from speechmesh.services.tts.harmonyspeech.forward_tacotron import (
    ForwardTacotron,
    ForwardTacotronConfig,
)
from speechmesh.services.tts.harmonyspeech.melgan import MelGanConfig, MelGanGenerator

# ForwardTacotron's published defaults with a 256-d speaker embedding; the generator
# of the multi-band MelGAN recipe (384 channels, scales 5·5·2, 4 stacks, 4 bands).
SYNTHESIZER = {
    "embed_dims": 256, "series_embed_dims": 64, "num_chars": 66,
    "durpred_conv_dims": 256, "durpred_rnn_dims": 64, "durpred_dropout": 0.5,
    "pitch_conv_dims": 256, "pitch_rnn_dims": 128, "pitch_dropout": 0.5, "pitch_strength": 1.0,
    "energy_conv_dims": 256, "energy_rnn_dims": 64, "energy_dropout": 0.5,
    "energy_strength": 1.0, "rnn_dims": 512, "prenet_dims": 256, "prenet_k": 16,
    "prenet_num_highways": 4, "prenet_dropout": 0.5, "postnet_dims": 256, "postnet_k": 8,
    "postnet_num_highways": 4, "postnet_dropout": 0.0, "n_mels": 80,
    "speaker_embed_dims": 256, "padding_value": -11.5129,
}  # fmt: skip
VOCODER = {
    "in_channels": 80, "out_channels": 4, "kernel_size": 7, "channels": 384, "bias": True,
    "upsample_scales": [5, 5, 2], "stack_kernel_size": 3, "stacks": 4,
    "nonlinear_activation": "LeakyReLU", "nonlinear_activation_params": {"negative_slope": 0.2},
    "pad": "ReflectionPad1d", "pad_params": {}, "use_final_nonlinear_activation": True,
    "use_weight_norm": True, "use_causal_conv": False,
}  # fmt: skip
SENTENCE = "The quick brown fox jumps over the lazy dog, and then it runs far away."


def run(device: str, repeats: int) -> None:
    torch.manual_seed(0)
    model = ForwardTacotron(ForwardTacotronConfig.from_json(SYNTHESIZER, "bench"))
    model = model.to(device).eval()
    config = MelGanConfig.from_json(VOCODER, "bench")
    vocoder = MelGanVocoder(config, MelGanGenerator(config), device)
    speaker = torch.randn(1, 256, device=device)
    times: dict[str, list[float]] = {"front-end": [], "synthesizer": [], "vocoder": []}
    seconds = 0.0
    for attempt in range(repeats + 1):  # the first run warms up
        start = time.perf_counter()
        ids = text.token_ids(SENTENCE)
        front = time.perf_counter()
        symbols = torch.tensor([ids], device=device)
        with torch.inference_mode():
            # Durations fixed at 5 frames per symbol: random weights predict arbitrary ones.
            prosody = model.prosody(symbols, speaker)
            prosody = type(prosody)(
                torch.full_like(prosody.durations, 5.0), prosody.pitch, prosody.energy
            )
            mel = model.generate(symbols, speaker, prosody).float().cpu().numpy()
        synth = time.perf_counter()
        audio = vocoder(mel)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        done = time.perf_counter()
        if attempt:
            times["front-end"].append(front - start)
            times["synthesizer"].append(synth - front)
            times["vocoder"].append(done - synth)
            seconds = len(audio) / 16000
    total = statistics.median([sum(parts) for parts in zip(*times.values(), strict=True)])
    print(f"\n{device}: {len(ids)} symbols → {mel.shape[1]} frames → {seconds:.2f} s of audio")
    for stage, values in times.items():
        median = statistics.median(values)
        print(f"  {stage:<12} {median * 1000:8.1f} ms   RTF {median / seconds:.4f}")
    print(f"  {'chain':<12} {total * 1000:8.1f} ms   RTF {total / seconds:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else args.repeats
    run("cpu", repeats)
    if torch.cuda.is_available():
        run("cuda", repeats)


if __name__ == "__main__":
    main()
