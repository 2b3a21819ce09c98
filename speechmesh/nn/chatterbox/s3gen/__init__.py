"""S3Gen: speech tokens + a reference voice → 24 kHz audio (Chatterbox's speech decoder).

Public API (stable):
  * `S3GenConfig` (config.py) — sizes, `meanflow` for turbo.
  * `load_s3gen(path, config=None, device="cpu")` (checkpoint.py) — strict, safe load
    of s3gen.safetensors / s3gen.pt / s3gen_meanflow.safetensors (STANDARD_FILE,
    MULTILINGUAL_FILE, TURBO_FILE); sizes read from the file; FailedPrecondition
    naming a missing file or key.
  * `S3Gen.embed_ref(wav_24k) -> Reference` — a voice's conditionals from 24 kHz audio
    (the caller keeps the first 10 s, as the reference's DEC_COND_LEN); per request,
    never stored on the model. `Reference.from_ref_dict(conds["gen"])` for conds.pt.
  * `S3Gen.generate([Row(tokens, reference, generator)], steps=None) -> [Output]` —
    rows batched, each row's audio independent of the batch; `Output.audio` is 24 kHz
    float32 (trim-faded, not watermarked). Tokens must be < 6561 (drop T3's SOS/EOS and
    specials first; turbo appends three SILENCE_TOKEN). The generator draws, in the
    reference's order, after whatever T3 drew from it.
  * `streaming.SentenceStream(s3gen, reference, generator).push(tokens_so_far, final)`
    — a sentence's audio as its tokens come (each push returns the new samples; they
    add up to the whole render's length); its own noise, drawn along time.
  * `S3Gen.tokenizer.tokenize([wav_16k], max_len=None)` — S3 speech tokens (T3's prompt:
    the first 6 s of the voice resampled 24 → 16 kHz with soxr as librosa does, and
    max_len = speech_cond_prompt_len).
"""

from speechmesh.nn.chatterbox.s3gen.checkpoint import (
    MULTILINGUAL_FILE,
    STANDARD_FILE,
    TURBO_FILE,
    load_s3gen,
)
from speechmesh.nn.chatterbox.s3gen.config import (
    SAMPLE_RATE,
    SILENCE_TOKEN,
    SPEECH_VOCAB,
    S3GenConfig,
)
from speechmesh.nn.chatterbox.s3gen.hift import SourceNoise
from speechmesh.nn.chatterbox.s3gen.model import Output, Reference, Row, S3Gen

__all__ = [
    "MULTILINGUAL_FILE",
    "SAMPLE_RATE",
    "SILENCE_TOKEN",
    "SPEECH_VOCAB",
    "STANDARD_FILE",
    "TURBO_FILE",
    "Output",
    "Reference",
    "Row",
    "S3Gen",
    "S3GenConfig",
    "SourceNoise",
    "load_s3gen",
]
