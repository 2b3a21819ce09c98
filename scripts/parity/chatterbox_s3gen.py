"""Chatterbox S3Gen parity fixtures: the reference's S3 tokenizer, embed_ref, S3Gen
inference (standard and turbo) and ChatterboxVC on tiny random weights.

The reference is the chatterbox-tts package at PINNED_VERSION (with its own
dependencies: s3tokenizer, diffusers, conformer, librosa, torchaudio), installed into
a folder outside the repository and passed as --upstream:

    pip install --no-deps --target /tmp/chatterbox-env chatterbox-tts==0.1.7 \
        s3tokenizer==0.3.0 diffusers==0.29.0 conformer==0.3.2 einops omegaconf ...
    python scripts/parity/chatterbox_s3gen.py --upstream /tmp/chatterbox-env

Weights: tests/parity/chatterbox_s3gen_weights.py (seeded) writes s3gen.safetensors
and s3gen_meanflow.safetensors in the official layout (weight norm as
parametrizations); the reference loads them with its own from-file path
(`load_state_dict(load_file(...))`, strict). Its network sizes are constants in its
code, so run-time patches give its constructors the tiny sizes (recorded in the
manifest); the code paths are the reference's.

Cases (clips are rebuilt from their seeds by parity.voicefixer_clips.clip):
  * reference: a 24 kHz voice through `embed_ref` — its 16 kHz resampling, the S3
    tokens, the 24 kHz mel, the CAM++ x-vector;
  * tokens: the S3 tokenizer on a 16 kHz clip of odd length, whole and with max_len;
  * synthesis / turbo: `S3Gen.inference` on seeded random tokens with that voice,
    after torch.manual_seed(seed): every random draw (the CFM noise, HiFT's phases and
    noise) is recorded with the encoder's output, the mel and the audio;
  * vc: `ChatterboxVC.generate(source.wav, target_voice_path=target.wav)` after
    torch.manual_seed(seed), its watermarker stubbed (the service does not watermark).

An independent run: `--seed N` (other weights, clips, tokens and seeds) and `--out DIR`;
`--cases cases.json` ({"vc": {...}}) also sets the vc case's clips (seeds, lengths,
rates: the files are written at their own rate and the reference loads them with
librosa) and its torch seed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import soundfile
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import REPOSITORY, Fixture, parser  # noqa: E402

sys.path.remove(str(HERE))
sys.path[:0] = [str(REPOSITORY), str(REPOSITORY / "tests"), str(REPOSITORY / "tests" / "parity")]

from chatterbox_s3gen_weights import (  # noqa: E402
    TINY_CAMPPLUS,
    TINY_ENCODER,
    TINY_ESTIMATOR,
    TINY_HIFT,
    TINY_TOKENIZER,
    save_s3gen,
)
from voicefixer_clips import clip  # noqa: E402

PINNED_VERSION = "0.1.7"
FAMILY = "chatterbox_s3gen"
VOICE_SAMPLES = 21600  # 0.9 s at 24 kHz
TOKENIZER_SAMPLES = 12345  # 16 kHz, not a whole number of tokens
SOURCE_SAMPLES = 14400  # 0.6 s at 24 kHz (the VC source; librosa resamples it to 16 kHz)
NEW_TOKENS = 16
MAX_LEN = 7
SMALL_DRAW = 8192  # values; larger draws are kept as hashes


def check_version(upstream: Path) -> str:
    found = [
        d.metadata["Version"]
        for d in importlib.metadata.distributions(path=[str(upstream)])
        if d.metadata["Name"] == "chatterbox-tts"
    ]
    if found != [PINNED_VERSION]:
        sys.exit(
            f"{upstream} holds chatterbox-tts {found or 'nothing'}; "
            f"the fixtures pin {PINNED_VERSION}"
        )
    return PINNED_VERSION


def shrink_reference(fixture: Fixture) -> None:
    """The reference's S3Gen builds its parts with constant sizes: give them the tiny ones."""
    import chatterbox.models.s3gen.s3gen as s3gen
    import chatterbox.models.s3gen.transformer.upsample_encoder as upsample
    from s3tokenizer.model_v2 import S3TokenizerV2

    defaults = S3TokenizerV2.__init__.__defaults__[0]
    defaults.n_audio_state = TINY_TOKENIZER.n_state
    defaults.n_audio_head = TINY_TOKENIZER.n_head
    defaults.n_audio_layer = TINY_TOKENIZER.n_layer
    fixture.patch(
        "s3tokenizer/model_v2.py S3TokenizerV2: its default ModelConfig (which chatterbox's "
        f"S3Tokenizer always uses) n_audio_state 1280 -> {TINY_TOKENIZER.n_state}, n_audio_head "
        f"20 -> {TINY_TOKENIZER.n_head}, n_audio_layer 6 -> {TINY_TOKENIZER.n_layer}"
    )
    size = TINY_ENCODER.size

    def sized(cls, **fixed):
        def build(*args, **kwargs):
            return cls(*args, **{**kwargs, **fixed})

        return build

    upsample.PreLookaheadLayer = sized(upsample.PreLookaheadLayer, channels=size)
    upsample.Upsample1D = sized(upsample.Upsample1D, channels=size, out_channels=size)
    s3gen.UpsampleConformerEncoder = sized(
        s3gen.UpsampleConformerEncoder,
        input_size=TINY_ENCODER.input_size,
        output_size=size,
        attention_heads=TINY_ENCODER.heads,
        linear_units=TINY_ENCODER.linear_units,
        num_blocks=TINY_ENCODER.blocks,
    )
    s3gen.CausalMaskedDiffWithXvec = sized(
        s3gen.CausalMaskedDiffWithXvec, input_size=TINY_ENCODER.input_size
    )
    fixture.patch(
        "models/s3gen/s3gen.py S3Token2Mel: UpsampleConformerEncoder input_size/output_size "
        f"512 -> {size}, attention_heads 8 -> {TINY_ENCODER.heads}, linear_units 2048 -> "
        f"{TINY_ENCODER.linear_units}, num_blocks 6 -> {TINY_ENCODER.blocks} (its 4 up blocks "
        f"kept); transformer/upsample_encoder.py PreLookaheadLayer and Upsample1D channels "
        f"512 -> {size}; CausalMaskedDiffWithXvec input_size 512 -> {TINY_ENCODER.input_size}"
    )
    s3gen.ConditionalDecoder = sized(
        s3gen.ConditionalDecoder,
        channels=list(TINY_ESTIMATOR.channels),
        attention_head_dim=TINY_ESTIMATOR.attention_head_dim,
        n_blocks=TINY_ESTIMATOR.n_blocks,
        num_mid_blocks=TINY_ESTIMATOR.num_mid_blocks,
        num_heads=TINY_ESTIMATOR.num_heads,
    )
    fixture.patch(
        "models/s3gen/s3gen.py ConditionalDecoder: channels [256] -> "
        f"{list(TINY_ESTIMATOR.channels)}, "
        f"attention_head_dim 64 -> {TINY_ESTIMATOR.attention_head_dim}, n_blocks 4 -> "
        f"{TINY_ESTIMATOR.n_blocks}, num_mid_blocks 12 -> {TINY_ESTIMATOR.num_mid_blocks}, "
        f"num_heads 8 -> {TINY_ESTIMATOR.num_heads}"
    )
    s3gen.CAMPPlus = sized(
        s3gen.CAMPPlus,
        growth_rate=TINY_CAMPPLUS.growth_rate,
        bn_size=TINY_CAMPPLUS.bn_size,
        init_channels=TINY_CAMPPLUS.init_channels,
    )
    fixture.patch(
        f"models/s3gen/s3gen.py CAMPPlus: growth_rate 32 -> {TINY_CAMPPLUS.growth_rate}, "
        f"bn_size 4 -> {TINY_CAMPPLUS.bn_size}, init_channels 128 -> {TINY_CAMPPLUS.init_channels}"
    )
    s3gen.HiFTGenerator = sized(s3gen.HiFTGenerator, base_channels=TINY_HIFT.base_channels)
    s3gen.ConvRNNF0Predictor = sized(s3gen.ConvRNNF0Predictor, cond_channels=TINY_HIFT.f0_channels)
    fixture.patch(
        f"models/s3gen/s3gen.py S3Token2Wav: HiFTGenerator base_channels 512 -> "
        f"{TINY_HIFT.base_channels}, ConvRNNF0Predictor cond_channels 512 -> "
        f"{TINY_HIFT.f0_channels}"
    )


class Draws:
    """Records every random draw made while active (torch.randn, randn_like, rand)."""

    def __init__(self) -> None:
        self.taken: list[tuple[str, torch.Tensor]] = []

    def __enter__(self) -> Draws:
        self.saved = {name: getattr(torch, name) for name in ("randn", "randn_like", "rand")}
        for name, original in self.saved.items():
            setattr(torch, name, self._recorder(name, original))
        return self

    def _recorder(self, name, original):
        def draw(*args, **kwargs):
            value = original(*args, **kwargs)
            self.taken.append((name, value.detach().clone()))
            return value

        return draw

    def __exit__(self, *exc) -> None:
        for name, original in self.saved.items():
            setattr(torch, name, original)


def run_inference(
    fixture: Fixture, model, name: str, tokens, ref_dict, seed: int, **kwargs
) -> dict:
    captured = {}
    hook = model.flow.encoder.register_forward_hook(lambda m, i, o: captured.update(h=o[0]))
    torch.manual_seed(seed)
    with Draws() as draws:
        wav, _ = model.inference(speech_tokens=tokens, ref_dict=dict(ref_dict), **kwargs)
    hook.remove()
    torch.manual_seed(seed)
    mel = model.flow_inference(tokens, ref_dict=dict(ref_dict), finalize=True, **kwargs)
    fixture.array(f"{name}/encoder", captured["h"][0])
    fixture.array(f"{name}/mel", mel[0])
    fixture.array(f"{name}/audio", wav[0])
    return {
        "draws": record_draws(fixture, name, draws),
        "audio_samples": int(wav.shape[1]),
        "mel_frames": int(mel.shape[2]),
    }


def record_draws(fixture: Fixture, name: str, draws: Draws) -> list[dict]:
    """Each draw: small ones kept, large ones (HiFT's noise) by shape and SHA-256 of
    their float32 bytes (the suite redraws them from the seed)."""
    kept = []
    for index, (kind, value) in enumerate(draws.taken):
        entry = {"call": kind, "shape": list(value.shape)}
        if value.numel() <= SMALL_DRAW:
            entry["file"] = fixture.array(f"{name}/draw{index}", value)
        else:
            entry["sha256"] = hashlib.sha256(value.float().numpy().tobytes()).hexdigest()
        kept.append(entry)
    return kept


def main() -> None:
    options = parser(FAMILY, __doc__.splitlines()[0])
    options.add_argument(
        "--cases",
        type=Path,
        help='JSON {"vc": {field: value}} replacing the vc case\'s clips (seeds, lengths, '
        "rates) and torch seed (an independent run)",
    )
    args = options.parse_args()
    version = check_version(args.upstream)
    fixture = Fixture(
        args.out, FAMILY, {"package": "chatterbox-tts", "version": version}, args.seed
    )
    weights = Path(tempfile.mkdtemp(prefix="chatterbox-s3gen-"))
    standard, standard_digest = save_s3gen(weights, args.seed)
    turbo, turbo_digest = save_s3gen(weights, args.seed + 10, meanflow=True)
    fixture.document(
        "weights",
        {
            "seed": args.seed,
            "digest": standard_digest,
            "turbo_seed": args.seed + 10,
            "turbo_digest": turbo_digest,
        },
    )

    sys.path.insert(0, str(args.upstream))
    shrink_reference(fixture)
    import chatterbox.vc as vc
    from chatterbox.models.s3gen import S3Gen
    from safetensors.torch import load_file

    class NoWatermark:
        def apply_watermark(self, wav, sample_rate):
            return wav

    vc.perth = types.SimpleNamespace(PerthImplicitWatermarker=NoWatermark)
    fixture.stub(
        "perth.PerthImplicitWatermarker (chatterbox/vc.py): identity; "
        "the service does not watermark"
    )

    model = S3Gen()
    model.load_state_dict(load_file(standard), strict=True)
    model.eval()

    voice = clip(args.seed * 100 + 1, VOICE_SAMPLES, 24000)
    ref = model.embed_ref(torch.from_numpy(voice), 24000)
    from chatterbox.models.s3gen.s3gen import get_resampler

    wav16 = get_resampler(24000, 16000, "cpu")(torch.from_numpy(voice)[None])[0]
    fixture.array("reference/wav16", wav16)
    fixture.array("reference/tokens", ref["prompt_token"][0])
    fixture.array("reference/mel", ref["prompt_feat"][0])
    fixture.array("reference/embedding", ref["embedding"][0])
    fixture.case(
        kind="reference",
        name="reference",
        clip_seed=args.seed * 100 + 1,
        samples=VOICE_SAMPLES,
        rate=24000,
    )

    clip16 = clip(args.seed * 100 + 2, TOKENIZER_SAMPLES, 16000)
    tokens, _ = model.tokenizer([torch.from_numpy(clip16)])
    short, _ = model.tokenizer.forward([clip16], max_len=MAX_LEN)
    fixture.array("tokens/whole", tokens[0])
    fixture.array("tokens/max_len", short[0])
    fixture.case(
        kind="tokens",
        name="tokens",
        clip_seed=args.seed * 100 + 2,
        samples=TOKENIZER_SAMPLES,
        rate=16000,
        max_len=MAX_LEN,
    )

    rng = np.random.default_rng(args.seed)
    speech = torch.from_numpy(rng.integers(0, 6561, NEW_TOKENS)).long()[None]
    fixture.array("synthesis/tokens", speech[0])
    info = run_inference(fixture, model, "synthesis", speech, ref, args.seed + 1)
    fixture.case(kind="synthesis", name="synthesis", torch_seed=args.seed + 1, steps=10, **info)

    turbo_model = S3Gen(meanflow=True)
    turbo_model.load_state_dict(load_file(turbo), strict=True)
    turbo_model.eval()
    turbo_ref = turbo_model.embed_ref(torch.from_numpy(voice), 24000)
    fixture.array("turbo/embedding", turbo_ref["embedding"][0])
    info = run_inference(
        fixture, turbo_model, "turbo", speech, turbo_ref, args.seed + 2, n_cfm_timesteps=2
    )
    fixture.case(kind="turbo", name="turbo", torch_seed=args.seed + 2, steps=2, **info)

    vc_case = {
        "torch_seed": args.seed + 3,
        "source_seed": args.seed * 100 + 3,
        "source_samples": SOURCE_SAMPLES,
        "source_rate": 24000,
        "target_seed": args.seed * 100 + 1,
        "target_samples": VOICE_SAMPLES,
        "target_rate": 24000,
    }
    if args.cases is not None:  # an independent run: other clips, rates and seeds
        overrides = json.loads(args.cases.read_text(encoding="utf-8"))
        unknown = sorted(set(overrides) - {"vc"}) + sorted(
            set(overrides.get("vc", {})) - set(vc_case)
        )
        if unknown:
            sys.exit(f"--cases: only the vc case's {', '.join(vc_case)} can be set, not {unknown}")
        vc_case.update(overrides.get("vc", {}))
        fixture.patch(f"vc case's fields replaced: {json.dumps(overrides)}")
    files = Path(tempfile.mkdtemp(prefix="chatterbox-vc-"))
    source = clip(vc_case["source_seed"], vc_case["source_samples"], vc_case["source_rate"])
    target = clip(vc_case["target_seed"], vc_case["target_samples"], vc_case["target_rate"])
    soundfile.write(files / "source.wav", source, vc_case["source_rate"], subtype="FLOAT")
    soundfile.write(files / "target.wav", target, vc_case["target_rate"], subtype="FLOAT")
    converter = vc.ChatterboxVC(model, "cpu")
    torch.manual_seed(vc_case["torch_seed"])
    with Draws() as draws:
        out = converter.generate(
            str(files / "source.wav"), target_voice_path=str(files / "target.wav")
        )
    fixture.array("vc/audio", out[0])
    fixture.case(
        kind="vc",
        name="vc",
        **vc_case,
        draws=record_draws(fixture, "vc", draws),
        audio_samples=int(out.shape[1]),
    )
    fixture.finish("torch", "torchaudio", "librosa", "s3tokenizer", "diffusers", "numpy")


if __name__ == "__main__":
    main()
