"""S3Gen: speech tokens + a reference voice → 24 kHz audio (Chatterbox's speech decoder).

Public API (stable):
  * `S3GenConfig` (config.py) — sizes, `meanflow` for turbo.
  * `load_s3gen(path, config=None, device="cpu")` (checkpoint.py) — strict, safe load
    of s3gen.safetensors / s3gen.pt / s3gen_meanflow.safetensors.
  * `S3Gen.embed_ref(wav_24k) -> Reference` — a voice's conditionals (per request,
    never stored on the model); `Reference.from_ref_dict(conds["gen"])` for conds.pt.
  * `S3Gen.generate([Row(tokens, reference, generator)], steps=None) -> [Output]` —
    batched rows, each row's audio independent of the batch.
  * `S3Gen.tokenizer.tokenize([wav_16k], max_len=None)` — S3 speech tokens.
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
