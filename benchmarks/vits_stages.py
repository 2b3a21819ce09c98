"""The stage timing the VITS benchmarks share (OpenVoice V1 base speakers, MeloTTS): the
fixed-length decode after the duration predictors, and the per-stage report."""

from __future__ import annotations

import statistics

import torch

from speechmesh.nn.vits.duration import expand


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def decode_fixed(model, logw, mask, mean, g, frames_per_id: int, device: str) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """Flow and decoder on `frames_per_id` frames per id: the same work for every run,
    whatever the random durations say."""
    durations = torch.full_like(logw, float(frames_per_id)) * mask
    path, y_mask = expand(durations, mask)
    mean = torch.matmul(path, mean.transpose(1, 2)).transpose(1, 2)
    z = model.flow(mean, y_mask, g, reverse=True)
    audio = model.dec(z * y_mask, g)[0, 0]
    synchronize(device)
    return audio


def report(label: str, ids: int, seconds: float, times: dict[str, list[float]]) -> None:
    """Median time and RTF of each stage and of the whole piece."""
    total = statistics.median([sum(parts) for parts in zip(*times.values(), strict=True)])
    print(f"\n{label}: {ids} ids → {seconds:.2f} s of audio")
    for stage, values in times.items():
        median = statistics.median(values)
        print(f"  {stage:<18} {median * 1000:8.1f} ms   RTF {median / seconds:.4f}")
    print(f"  {'piece':<18} {total * 1000:8.1f} ms   RTF {total / seconds:.4f}")
