"""Chatterbox streaming within a sentence (ChatterboxOptions.stream_chunk_tokens): S3Gen's
time to the first audio and the chunked audio's difference from the whole sentence.

S3Gen renders a sentence of --tokens random speech tokens with a random voice of
--prompt tokens (10 s: 250), at the tests' tiny sizes or the official ones, with the
parity run's random weights (tests/parity/chatterbox_s3gen_weights.py: scaled so the
activations stay in range). For each chunk size N (--chunks), a SentenceStream is
pushed the tokens every N, as T3 makes them, then the whole sentence; the same tokens
are then rendered whole with the stream's own noise (ODE and excitation), so what
differs is the chunking alone. Printed per N:

  * first: the tokens T3 must have made before S3Gen hands out audio, and S3Gen's time
    up to then (every push so far); the time to first audio is that plus T3's time for
    those tokens (--t3-ms per token: T3's step time, measured by benchmarks/chatterbox.py);
  * total: S3Gen's time over all pushes, against one whole render (times: medians of
    --runs runs);
  * max |chunked − whole| / peak of the whole, for the audio and for the mel, and the
    signal-to-difference ratio of the audio in dB;
and, first, how far S3Gen's non-causality reaches: how much the mel of a render moves
when a third more tokens are added, by distance from the render's end.

    python benchmarks/chatterbox_streaming.py --sizes tiny
    python benchmarks/chatterbox_streaming.py --sizes official --tokens 100 --chunks 25,50
    python benchmarks/chatterbox_streaming.py --s3gen s3gen.safetensors --variants standard
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from parity.chatterbox_s3gen_weights import randomize, tiny_config

from speechmesh.nn.chatterbox.s3gen import (
    Reference,
    Row,
    S3Gen,
    S3GenConfig,
    SourceNoise,
    load_s3gen,
)
from speechmesh.nn.chatterbox.s3gen.flow import FlowRow
from speechmesh.nn.chatterbox.s3gen.streaming import SentenceStream

TOKEN_RATE = 25


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def build(sizes: str, meanflow: bool, device: torch.device, path: str = "") -> S3Gen:
    if path:  # a real checkpoint (s3gen.safetensors, s3gen_meanflow.safetensors, ...)
        return load_s3gen(Path(path), None, str(device)).eval()
    config = tiny_config(meanflow) if sizes == "tiny" else S3GenConfig(meanflow=meanflow)
    model = S3Gen(config)
    model.load_state_dict(randomize(model, seed=3))
    return model.eval().to(device)


def voice(model: S3Gen, prompt: int, g: torch.Generator) -> Reference:
    mel = torch.randn(2 * prompt, 80, generator=g) * 2 - 6  # log-mel-like levels
    size = model.config.campplus.embedding_size
    return Reference(
        torch.randint(0, 6561, (prompt,), generator=g).to(model.device),
        mel.to(model.device),
        torch.randn(size, generator=g).to(model.device),
    )


def chunked(model: S3Gen, ref: Reference, tokens: torch.Tensor, chunk: int):  # type: ignore[no-untyped-def]
    """The stream, its audio, (tokens, S3Gen seconds) at the first audio, S3Gen's seconds."""
    stream = SentenceStream(model, ref, torch.Generator().manual_seed(1))
    parts, spent, first = [], 0.0, None
    for end in [*range(chunk, len(tokens), chunk), len(tokens)]:
        sync()
        started = time.perf_counter()
        part = stream.push(tokens[:end], final=end == len(tokens))
        sync()
        spent += time.perf_counter() - started
        parts.append(part)
        if first is None and part.numel():
            first = (end, spent)
    return stream, torch.cat(parts), first, spent


def measure(model: S3Gen, ref: Reference, tokens: torch.Tensor, chunk: int, runs: int) -> dict:
    """Times: medians of `runs` (the machine may be shared); errors: of the last run."""
    firsts, spents, wholes = [], [], []
    for _ in range(runs):
        stream, audio, first, spent = chunked(model, ref, tokens, chunk)
        firsts.append(first[1])
        spents.append(spent)
        frames = 2 * (len(ref.prompt_tokens) + len(tokens))
        width = stream.mel.shape[1]
        draws = SourceNoise(stream.phase, stream.source_noise.take(width * model.mel2wav.upsample))
        row = Row(tokens, ref, noise=stream.mel_noise.take(frames), source=draws)
        sync()
        started = time.perf_counter()
        whole = model.generate([row])[0]
        sync()
        wholes.append(time.perf_counter() - started)
    diff = audio - whole.audio
    peak = whole.audio.abs().max()
    return {
        "first": (first[0], statistics.median(firsts)),
        "spent": statistics.median(spents),
        "whole": statistics.median(wholes),
        "audio": float(diff.abs().max() / peak),
        "mel": float((stream.mel - whole.mel).abs().max() / whole.mel.abs().max()),
        "snr": 10 * math.log10(float(whole.audio.square().sum() / diff.square().sum())),
        "same_length": audio.shape == whole.audio.shape,
    }


def reach(model: S3Gen, ref: Reference, tokens: torch.Tensor, more: int) -> dict[int, float]:
    """How much the mel of a render of all but the last `more` tokens moves when they
    are added: max change / peak, by distance (frames) before the shorter render's end."""
    prompt = len(ref.prompt_tokens)
    noise = torch.randn(80, 2 * (prompt + len(tokens)), generator=torch.Generator().manual_seed(2))

    def render(count: int) -> torch.Tensor:
        width = 2 * (prompt + count)
        row = FlowRow(
            tokens[:count], ref.prompt_tokens, ref.prompt_mel, ref.embedding, noise[:, :width]
        )
        return model.flow([row], model.config.cfm_steps)[0]

    whole = render(len(tokens))
    short = render(len(tokens) - more)
    width = short.shape[1]
    moved = (short - whole[:, :width]).abs().amax(dim=0) / whole.abs().max()
    return {d: float(moved[width - d - 10 : width - d].max()) for d in (0, 20, 40, 80) if d < width}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", choices=("tiny", "official"), default="tiny")
    parser.add_argument("--variants", default="standard,turbo")
    parser.add_argument("--s3gen", default="", help="a checkpoint to load instead (one variant)")
    parser.add_argument("--tokens", type=int, default=150)
    parser.add_argument("--prompt", type=int, default=250)
    parser.add_argument("--chunks", default="10,25,50")
    parser.add_argument("--t3-ms", type=float, default=0.0, help="T3's time per token")
    parser.add_argument("--runs", type=int, default=3, help="median of this many timings")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    seconds = args.tokens / TOKEN_RATE
    for variant in args.variants.split(","):
        model = build(args.sizes, variant == "turbo", device, args.s3gen)
        ref = voice(model, args.prompt, g)
        tokens = torch.randint(0, 6561, (args.tokens,), generator=g).to(device)
        print(
            f"{variant} S3Gen ({args.sizes}, {model.config.cfm_steps} flow steps), "
            f"{args.tokens} tokens ({seconds:.1f} s), prompt {args.prompt} tokens, {device}"
        )
        moved = reach(model, ref, tokens, args.tokens // 3)
        print(
            f"  {args.tokens // 3} tokens more move the mel by "
            + ", ".join(f"{v:.3f}" for v in moved.values())
            + " of its peak at "
            + ", ".join(map(str, moved))
            + " frames before the shorter render's end"
        )
        for chunk in [int(c) for c in args.chunks.split(",")]:
            m = measure(model, ref, tokens, chunk, args.runs)
            made, spent = m["first"]
            t3 = args.t3_ms / 1000
            print(
                f"  N={chunk:3d}: first audio after {made} tokens, S3Gen {spent:6.2f} s "
                f"(time to first audio {made * t3 + spent:6.2f} s; whole sentence "
                f"{args.tokens * t3 + m['whole']:6.2f} s) | S3Gen total {m['spent']:6.2f} s "
                f"vs whole {m['whole']:6.2f} s | max err audio {m['audio']:.2e}, "
                f"mel {m['mel']:.2e} of peak, SNR {m['snr']:5.1f} dB"
                + ("" if m["same_length"] else " | LENGTH DIFFERS")
            )


if __name__ == "__main__":
    with torch.inference_mode():
        main()
