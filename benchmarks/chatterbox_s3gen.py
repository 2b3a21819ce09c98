"""Chatterbox S3Gen benchmark: real-time factor at the official sizes, random weights.

S3Gen (S3 tokenizer, CAM++, conformer encoder, CFM estimator, HiFT) is built at the
published sizes with torch's default random initialisation; the weights do not change
the work. Measured, each the median of --repeats runs:
  * embed_ref of a 10 s reference (mel, 16 kHz resampling, tokens, x-vector);
  * generate for a fixed number of new speech tokens (25 per second of audio) with
    that voice: standard (10 Euler steps with guidance: 20 estimator passes) and turbo
    (meanflow, 2 steps, no guidance), one row and a batch of --batch rows.
RTF = wall seconds / seconds of audio produced (all rows).

Usage: python benchmarks/chatterbox_s3gen.py [--tokens 50 150] [--batch 4]
       [--repeats 3] [--device cpu|cuda] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from speechmesh.nn.chatterbox.s3gen import Row, S3Gen, S3GenConfig

RATE = 24000


def timed(repeats: int, work, sync) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        work()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--tokens", type=int, nargs="+", default=[50, 150])
    args.add_argument("--batch", type=int, default=4)
    args.add_argument("--repeats", type=int, default=3)
    args.add_argument("--device", default="cpu")
    args.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    options = args.parse_args()
    if options.threads:
        torch.set_num_threads(options.threads)
    device = torch.device(options.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    voice = (0.1 * np.random.default_rng(0).standard_normal(10 * RATE)).astype(np.float32)
    for meanflow in (False, True):
        torch.manual_seed(0)
        model = S3Gen(S3GenConfig(meanflow=meanflow)).to(device).eval()
        name = "turbo" if meanflow else "standard"
        if not meanflow:
            params = sum(p.numel() for p in model.parameters()) / 1e6
            seconds = timed(options.repeats, lambda m=model: m.embed_ref(voice), sync)
            print(f"S3Gen {params:.0f}M parameters; embed_ref of 10 s: {seconds:.2f} s")
        reference = model.embed_ref(voice)
        for count in options.tokens:
            tokens = torch.randint(0, 6561, (count,), generator=torch.Generator().manual_seed(1))
            audio_s = count / 25
            for rows in (1, options.batch):
                batch = [
                    Row(tokens, reference, torch.Generator().manual_seed(i)) for i in range(rows)
                ]
                seconds = timed(options.repeats, lambda b=batch, m=model: m.generate(b), sync)
                print(
                    f"{name:8s} {count:4d} tokens ({audio_s:.0f} s) x {rows} rows: "
                    f"{seconds:.2f} s, RTF {seconds / (audio_s * rows):.3f}"
                )


if __name__ == "__main__":
    main()
