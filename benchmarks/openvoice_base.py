"""OpenVoice V1 base speaker benchmark: per-stage time and real-time factor at the
official EN size (myshell-ai/OpenVoice checkpoints/base_speakers/EN/config.json), with
random weights (the compute does not depend on the values).

Stages: text front-end (splitting, cjke cleaners, ids), text encoder and both duration
predictors, then flow and HiFi-GAN decoder. Random weights predict arbitrary durations,
so the frames are fixed at 4 per id (about what the released voices speak at: 2n + 1
ids with blanks, 256-sample hops at 22 050 Hz). RTF is processing seconds per second of
audio. CPU always; CUDA too when a GPU is present.

Usage: python benchmarks/openvoice_base.py [--quick] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch
from vits_stages import decode_fixed, report, synchronize

from speechmesh.services.tts.openvoice import text
from speechmesh.services.tts.openvoice.config import BaseSpeakerConfig
from speechmesh.services.tts.openvoice.modules import SynthesizerTrn

SYMBOLS = ["_", *",.!?-~…", *"NQabdefghijklmnopstuvwxyzɑæʃʑçɯɪɔɛɹðəɫɥɸʊɾʒθβŋɦ⁼ʰ`^#*=ˈˌ→↓↑ "]
OFFICIAL = {
    "data": {
        "text_cleaners": ["cjke_cleaners2"], "sampling_rate": 22050, "filter_length": 1024,
        "hop_length": 256, "win_length": 1024, "add_blank": True, "n_speakers": 10,
    },
    "model": {
        "inter_channels": 192, "hidden_channels": 192, "filter_channels": 768, "n_heads": 2,
        "n_layers": 6, "kernel_size": 3, "p_dropout": 0.1, "resblock": "1",
        "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "upsample_rates": [8, 8, 2, 2], "upsample_initial_channel": 512,
        "upsample_kernel_sizes": [16, 16, 4, 4], "gin_channels": 256,
    },
    "speakers": {"default": 1, "whispering": 2, "friendly": 9},
    "symbols": SYMBOLS,
}  # fmt: skip
TEXTS = {
    "EN": "The quick brown fox jumps over the lazy dog, and then it runs far away.",
    "ZH": "今天天气很好，我们一起去公园散步吧。",
}
FRAMES_PER_ID = 4


def run(device: str, language: str, repeats: int) -> None:
    torch.manual_seed(0)
    model = SynthesizerTrn(BaseSpeakerConfig.from_json(OFFICIAL, "bench")).to(device).eval()
    times: dict[str, list[float]] = {"front-end": [], "encoder+durations": [], "flow+decoder": []}
    seconds, ids = 0.0, []
    for attempt in range(repeats + 1):  # the first run warms up
        start = time.perf_counter()
        (piece,) = text.split(TEXTS[language], language)
        ids = text.symbol_ids(text.clean(piece, language), SYMBOLS, add_blank=True)
        front = time.perf_counter()
        with torch.inference_mode():
            x_ids = torch.tensor([ids], device=device)
            x, mean, _, mask = model.enc_p(x_ids, torch.tensor([len(ids)], device=device))
            g = model.emb_g(torch.tensor([1], device=device)).unsqueeze(-1)
            noise = torch.randn(1, 2, x.size(2), device=device) * 0.6
            logw = 0.2 * model.sdp(x, mask, g, noise) + 0.8 * model.dp(x, mask, g)
            synchronize(device)
            encoded = time.perf_counter()
            audio = decode_fixed(model, logw, mask, mean, g, FRAMES_PER_ID, device)
        done = time.perf_counter()
        if attempt:
            times["front-end"].append(front - start)
            times["encoder+durations"].append(encoded - front)
            times["flow+decoder"].append(done - encoded)
            seconds = audio.numel() / 22050
    report(f"{device} {language}", len(ids), seconds, times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else args.repeats
    for language in TEXTS:
        run("cpu", language, repeats)
        if torch.cuda.is_available():
            run("cuda", language, repeats)


if __name__ == "__main__":
    main()
