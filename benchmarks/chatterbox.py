"""Chatterbox speed at the official sizes, random weights, a fixed number of speech tokens.

Compute does not depend on weight values, so random weights time the real work; the
stop token's logit is pushed down so T3 generates exactly --tokens tokens (25 per
second of speech). Per variant (standard: Llama-520M T3 with guidance, S3Gen with 10
flow steps; turbo: GPT-2-medium T3, meanflow S3Gen with 2 steps), prints the median
time of T3's generation (a batch of --batch requests, each with its own voice) and of
S3Gen's rendering of one request, and the real-time factor (time / seconds of audio).

    python benchmarks/chatterbox.py            # 100 tokens (4 s), batches 1 and 4
    python benchmarks/chatterbox.py --quick    # 50 tokens, batch 1, standard only
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from speechmesh.nn.chatterbox.s3gen import Reference, Row, S3Gen, S3GenConfig
from speechmesh.services.tts.chatterbox.t3 import config as t3_config
from speechmesh.services.tts.chatterbox.t3.conditioning import T3Conditionals
from speechmesh.services.tts.chatterbox.t3.config import STOP_SPEECH
from speechmesh.services.tts.chatterbox.t3.generation import Sampling, T3Job, generate
from speechmesh.services.tts.chatterbox.t3.model import T3

TOKEN_RATE = 25


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


def never_stop(model: T3) -> None:
    """A speech head whose stop logit is always far below the rest."""
    head = model.speech_head
    biased = nn.Linear(head.in_features, head.out_features, bias=True).to(head.weight.device)
    with torch.no_grad():
        biased.weight.copy_(head.weight)
        biased.bias.zero_()
        if head.bias is not None:
            biased.bias.copy_(head.bias)
        biased.bias[STOP_SPEECH] = -1e4
    model.speech_head = biased


def t3_jobs(config: t3_config.T3Config, batch: int, tokens: int, device) -> list[T3Job]:  # type: ignore[no-untyped-def]
    sampling = Sampling() if config.backbone == "llama" else Sampling(cfg_weight=0.0, top_p=0.95)
    text = list(range(1, 61))  # a 60-token sentence
    return [
        T3Job(
            T3Conditionals(
                torch.randn(config.speaker_size, device=device),
                torch.randint(0, 6561, (config.prompt_tokens,), device=device),
            ),
            text,
            sampling,
            torch.Generator(device=device).manual_seed(i),
            max_new_tokens=tokens,
        )
        for i in range(batch)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--batches", default="1,4", help="T3 batch sizes, comma-separated")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    batches, variants = [int(b) for b in args.batches.split(",")], ["standard", "turbo"]
    if args.quick:
        args.tokens, batches, variants = 50, [1], ["standard"]
    device = torch.device(args.device)
    torch.manual_seed(0)
    audio_s = args.tokens / TOKEN_RATE
    for variant in variants:
        t3_sizes = t3_config.STANDARD if variant == "standard" else t3_config.TURBO
        started = time.perf_counter()
        model = T3(t3_sizes).eval().to(device)
        never_stop(model)
        s3gen = S3Gen(S3GenConfig(meanflow=variant == "turbo")).eval().to(device)
        print(f"{variant}: built T3 and S3Gen in {time.perf_counter() - started:.1f} s on {device}")
        for batch in batches:
            seconds, out = timed(
                lambda b=batch, m=model, c=t3_sizes: generate(
                    m, t3_jobs(c, b, args.tokens, device)
                ),
                args.runs,
            )
            assert all(len(tokens) == args.tokens for tokens in out)  # type: ignore[union-attr]
            print(
                f"  T3 {args.tokens} tokens x {batch} request(s): {seconds:7.2f} s "
                f"({seconds / args.tokens * 1000:.0f} ms/step), "
                f"RTF {seconds / (audio_s * batch):.3f}"
            )
        prompt = 250  # S3Gen keeps 10 s of the reference: 250 tokens, 500 mel frames
        reference = Reference(
            torch.randint(0, 6561, (prompt,), device=device),
            torch.randn(2 * prompt, 80, device=device),
            torch.randn(192, device=device),
        )
        row = Row(
            torch.randint(0, 6561, (args.tokens,), device=device),
            reference,
            torch.Generator(device=device).manual_seed(0),
        )
        seconds, _ = timed(lambda r=row, s=s3gen: s.generate([r]), args.runs)
        steps = s3gen.config.cfm_steps
        print(
            f"  S3Gen {args.tokens} tokens ({steps} flow steps): {seconds:7.2f} s, "
            f"RTF {seconds / audio_s:.3f}"
        )


if __name__ == "__main__":
    with torch.inference_mode():
        main()
