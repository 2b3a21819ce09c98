"""S3Gen rendering a sentence while its speech tokens are still coming (chunked streams).

S3Gen is not causal: its encoder and its decoder's attention see every frame, so a
frame's mel changes as tokens are added, and HiFT's audio at a frame depends on mel
frames on either side. `SentenceStream` renders each time more tokens have come
(`push`) and hands out only audio that later tokens can no longer change through the
vocoder, as CosyVoice-style streaming does, here for a decoder without chunk masks:

- flow: each push renders the prompt and all tokens so far again (the decoder's
  attention is global). Until the sentence's last push, the last `pre_lookahead` (3)
  tokens only serve as the encoder's lookahead: their frames are not rendered (the
  reference's finalize=False).
- mel: the frames that the audio handed out depends on are kept (the cache of finished
  frames); the frames after them come from each newer render, which saw more of the
  sentence, faded in over the last render's frames that no audio depends on yet.
- vocoder: each push vocodes a window from `context` frames before the audio handed
  out so far to the last rendered frame, and hands out audio only up to `hold` frames
  before that end (the rest waits for its right context, at the next push). HiFT's
  excitation continues across windows: F0 is read with the predictor's own context,
  each harmonic's phase is carried over in cycles, and one set of random phases and one
  noise sequence serve the whole sentence. With `context` at HiFT's receptive field the
  joins need no crossfade: the audio handed out is HiFT's output for the whole kept mel,
  to rounding.
- randomness: the ODE's noise and the excitation's noise are drawn in blocks along time
  (`PrefixNoise`), so a longer render starts with the noise of a shorter one; a stream
  draws from its own generator, so the same seed and chunk size repeat the audio.

What differs from the sentence rendered whole is the mel of the kept frames: each was
finished with the context of its push (`hold` − `context` frames and the 3-token
lookahead to its right, at least).
"""

from __future__ import annotations

import math

import torch

from speechmesh.nn.chatterbox.s3gen.config import MEL_BINS, SAMPLE_RATE, TOKEN_MEL_RATIO
from speechmesh.nn.chatterbox.s3gen.flow import FlowRow
from speechmesh.nn.chatterbox.s3gen.hift import SourceNoise
from speechmesh.nn.chatterbox.s3gen.model import Reference, S3Gen

RECEPTIVE_FRAMES = 20
"""HiFT's reach, in mel frames to each side (conv_pre, the k-11 resblocks at 8 samples
a frame, F0's five k-3 convolutions on the excitation's path): each window's left
context, and the frames after the audio handed out that stay as they are."""
HOLD_FRAMES = 24
"""Frames at the end of a render whose audio waits for the next push: HiFT's reach,
and 4 frames that the next render (with more context) replaces."""
F0_CONTEXT = 5  # the F0 predictor's five k-3 convolutions
NOISE_BLOCK_FRAMES = 50  # draws are made one second of frames at a time


class PrefixNoise:
    """Standard normal draws along time, made in fixed blocks as they are needed: any
    take is a prefix of every longer one."""

    def __init__(
        self, rows: int, block: int, generator: torch.Generator | None, device: torch.device
    ) -> None:
        self.rows, self.block = rows, block
        self.generator, self.device = generator, device
        self.drawn = torch.zeros(rows, 0)

    def take(self, length: int) -> torch.Tensor:
        if self.drawn.shape[1] < length:
            blocks = [self.drawn]
            have = self.drawn.shape[1]
            while have < length:  # drawn on the CPU, as S3Gen's other draws
                blocks.append(torch.randn(self.rows, self.block, generator=self.generator))
                have += self.block
            self.drawn = torch.cat(blocks, dim=1)
        return self.drawn[:, :length].to(self.device)


class SentenceStream:
    """One sentence's audio, handed out as its tokens come (see the module's text)."""

    def __init__(
        self,
        s3gen: S3Gen,
        reference: Reference,
        generator: torch.Generator | None,
        steps: int | None = None,
        context: int = RECEPTIVE_FRAMES,
        hold: int = HOLD_FRAMES,
    ) -> None:
        if hold < context:
            raise ValueError(f"hold ({hold}) must be at least the context ({context})")
        self.s3gen, self.reference = s3gen, reference
        self.steps = steps or s3gen.config.cfm_steps
        self.context, self.hold = context, hold
        self.lookahead = s3gen.config.encoder.pre_lookahead
        device = s3gen.device
        harmonics = s3gen.config.hift.nb_harmonics + 1
        phase = torch.rand(harmonics, 1, generator=generator)
        self.phase = (-math.pi + phase * (2 * math.pi)).to(device)
        self.mel_noise = PrefixNoise(
            MEL_BINS, TOKEN_MEL_RATIO * NOISE_BLOCK_FRAMES, generator, device
        )
        per_frame = s3gen.mel2wav.upsample
        self.source_noise = PrefixNoise(
            harmonics, per_frame * NOISE_BLOCK_FRAMES, generator, device
        )
        self.mel = torch.zeros(MEL_BINS, 0, device=device)
        """The kept mel of the sentence's frames (the prompt's cut)."""
        self.f0 = torch.zeros(0, device=device)
        """F0 of the frames whose audio is out, as their window read it."""
        self.sent = 0  # frames whose audio is out
        self.fixed = 0  # frames that audio depends on: never replaced
        self.rendered = 0  # tokens of the last push

    @torch.inference_mode()
    def push(self, tokens: torch.Tensor, final: bool) -> torch.Tensor:
        """All of the sentence's speech tokens so far (< 6561, each push extending the
        last); returns the new audio (24 kHz float32). After the push with `final`
        every sample of the sentence is out."""
        tokens = tokens.reshape(-1).to(self.s3gen.device)
        vocab = self.s3gen.config.vocab_size
        if len(tokens) < self.rendered:
            raise ValueError(f"{len(tokens)} tokens after {self.rendered}: a push extends the last")
        if len(tokens) and (int(tokens.max()) >= vocab or int(tokens.min()) < 0):
            raise ValueError(f"tokens outside [0, {vocab})")
        self.rendered = len(tokens)
        hold = 0 if final else self.lookahead
        empty = torch.zeros(0, device=self.s3gen.device)
        if len(tokens) <= hold:
            return self._vocode(self.mel.shape[1]) if final else empty
        ref = self.reference
        frames = TOKEN_MEL_RATIO * (len(ref.prompt_tokens) + len(tokens) - hold)
        row = FlowRow(
            tokens=tokens,
            prompt_tokens=ref.prompt_tokens,
            prompt_mel=ref.prompt_mel,
            embedding=ref.embedding,
            noise=self.mel_noise.take(frames),
            hold=hold,
        )
        mel = self.s3gen.flow([row], self.steps)[0]
        keep = min(self.fixed, mel.shape[1])
        new = mel[:, keep:].clone()
        old = self.mel[:, keep:]
        if old.shape[1]:
            # The last render's frames that no audio depends on yet: faded into this
            # render's (linear ramps), so the mel has no step where the renders meet.
            ramp = torch.linspace(0, 1, old.shape[1] + 2, device=new.device)[1:-1]
            new[:, : old.shape[1]] = old * (1 - ramp) + new[:, : old.shape[1]] * ramp
        self.mel = torch.cat([self.mel[:, :keep], new], dim=1)
        end = self.mel.shape[1] if final else self.mel.shape[1] - self.hold
        if end <= self.sent:
            return empty
        return self._vocode(end)

    def _vocode(self, end: int) -> torch.Tensor:
        """The audio of frames [sent, end), from a window with HiFT's context around it."""
        hift = self.s3gen.mel2wav
        per_frame = hift.upsample
        width = self.mel.shape[1]
        if end <= self.sent:
            return torch.zeros(0, device=self.mel.device)
        start = max(0, self.sent - self.context)
        lead = max(0, start - F0_CONTEXT)
        f0 = hift.f0_predictor(self.mel[None, :, lead:width])[0][start - lead :]
        harmonics = torch.arange(1, self.phase.shape[0] + 1, device=f0.device, dtype=f0.dtype)
        # Each harmonic's phase before the window, in turns: the steps HiFT adds per
        # sample (float32, as it computes them), summed in float64 over the samples
        # before, as a whole output's cumulative sum adds them.
        steps = self.f0[:start, None] * harmonics[None, :] / SAMPLE_RATE
        before = (steps.double() * per_frame).sum(dim=0)
        noise = self.source_noise.take(width * per_frame)[:, start * per_frame :]
        source = hift.m_source(
            f0.repeat_interleave(per_frame), SourceNoise(self.phase, noise), before
        )
        audio = hift.decode(self.mel[:, start:width], source)
        out = audio[(self.sent - start) * per_frame : (end - start) * per_frame].clone()
        # The sentence's first 40 ms: silenced, then faded in, as the whole output is.
        fade = self.s3gen.trim_fade
        first = self.sent * per_frame
        if first < fade.shape[0]:
            n = min(out.shape[0], fade.shape[0] - first)
            out[:n] = out[:n] * fade[first : first + n]
        self.f0 = torch.cat([self.f0[: self.sent], f0[self.sent - start : end - start]])
        self.sent = end
        self.fixed = min(width, end + self.context)
        return out
