"""Reference outputs of IndexTTS-2 (index-tts/index-tts, indextts/infer_v2.py).

Builds a tiny random checkpoint in the official layout (tests/indextts_checkpoint.py,
every file determined by --seed; the hub cache layout, so the reference's own
hf_hub_download and from_pretrained calls find the auxiliary models offline), then
runs the reference's IndexTTS2.infer on a synthetic speaker prompt and records, per
case and per stage:

- text: the normalised text (its TextNormalizer, WeTextProcessing on Linux), the
  tokens, the segments and their ids;
- prompt: w2v-BERT features of the speaker side and of the emotion side, the
  semantic codes, the reference mel, the CAM++ style, the prompt condition;
- per segment: the emotion vector, the GPT codes (greedy = top_k 1, sampled, beams),
  the teacher-forced latent, the CFM input, the noise it drew (read from the same
  generator state, not changed), the mel it made, BigVGAN's waveform;
- the int16 waveform that infer() returns.

The reference runs with its own dependency versions (transformers 4.52, torchaudio,
librosa, WeTextProcessing), which this repository does not use: install them into a
folder with `pip install --no-deps --target DIR ...` and pass it as --site (see
docs/services/indextts.md, "Parity"). The checkpoint is built first in this
interpreter without --site, so the tiny weights are the ones the tests rebuild.

    python scripts/parity/indextts.py --upstream /tmp/index-tts --site /tmp/indextts-site
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
from common import REPOSITORY, Fixture, parser

PINNED = "6432baf"
FAMILY = "indextts"
PROMPT_RATE = 24000
PROMPT_SECONDS = 0.47
THREADS = 2
"""torch's intra-op threads for the reference run: the DiT's sums split by thread count, so
the served path reproduces the int16 output bit for bit only with the same count."""

# Each case is one infer() call; `seed` goes to torch.manual_seed (and random.seed)
# right before it, as the service's request seed seeds its generator.
CASES = [
    {
        "name": "en_greedy",
        "text": "It's 3:30 pm on May 5, 2024. The quick brown fox jumps over the lazy dog!",
        "seed": 11,
        "segment_tokens": 24,
        # top_k 1 and a mild repetition penalty: greedy codes that run to the limit.
        "sampling": {"top_k": 1, "num_beams": 1, "repetition_penalty": 1.5, "max_mel_tokens": 20},
    },
    {
        "name": "zh_beams",
        "text": "今天是2024年5月5日，气温25°C。你好世界，我们去公园散步吧！",
        "seed": 12,
        "segment_tokens": 40,
        "sampling": {"num_beams": 3, "max_mel_tokens": 14},
    },
    {
        "name": "en_sampled_vector",
        "text": "How are you today? I am fine, thank you.",
        "seed": 13,
        "segment_tokens": 120,
        "sampling": {"num_beams": 1, "max_mel_tokens": 18},
        "emotion_vector": [0.3, 0.0, 0.0, 0.1, 0.0, 0.0, 0.2, 0.0],
        "emotion_weight": 0.8,
    },
]
# Texts only normalised and tokenised (no synthesis): the front-end's rules.
TEXT_ONLY = [
    "IndexTTS 正式发布1.0版本了，效果666",
    "晕XUAN4是一种GAN3觉",
    "“衣裳”不读衣chang2，而是读衣shang5",
    "电话：135-4567-8900",
    "This sales for 2.5% off, only $12.5.",
    "GPT-5-nano and F5-TTS are models, where's the money?",
    "克里斯托弗·诺兰导演了3部电影，约瑟夫·高登-莱维特主演。",
    "苹果于2030/1/2发布新 iPhone 2X 系列手机，最低售价仅 ¥12999",
    "这酒...里...有毒...",
    "See you at 8:00 AM, ok? Then 'we go'. Fine!",
    "a",
]
GLOSSARY = {"TTS": {"en": "T T S", "zh": "T T S"}, "M.2": {"en": "M dot two", "zh": "M 二"}}


def prompt_audio(seed: int) -> np.ndarray:
    """A voiced-looking prompt: harmonics of a gliding pitch plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(PROMPT_RATE * PROMPT_SECONDS)) / PROMPT_RATE
    pitch = 140 + 30 * np.sin(2 * np.pi * 1.5 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / PROMPT_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 6))
    audio = 0.25 * voice * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(
        t.size
    )
    return audio.astype(np.float32)


def build(work: Path, seed: int) -> dict:
    """Checkpoint and prompt in `work`, made with this repository's interpreter."""
    import soundfile

    sys.path.insert(0, str(REPOSITORY / "tests"))
    from indextts_checkpoint import write_checkpoint

    folder = work / "checkpoints"
    write_checkpoint(folder, layout="hub", seed=seed, w2v_layers=17)
    (folder / "glossary.yaml").write_text(
        json.dumps(GLOSSARY, ensure_ascii=False), encoding="utf-8"
    )
    soundfile.write(work / "prompt.wav", prompt_audio(seed), PROMPT_RATE, subtype="FLOAT")
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def main() -> None:
    args = parser(FAMILY, __doc__.splitlines()[0])
    args.add_argument(
        "--site",
        type=Path,
        required=True,
        help="folder holding the reference's own dependencies (pip install --target)",
    )
    args.add_argument(
        "--cases",
        type=Path,
        help="JSON {case name: {text, seed}} replacing those of the cases (an independent run)",
    )
    args.add_argument("--work", type=Path, help=argparse_hidden())
    options = args.parse_args()
    if options.work is not None:  # the second half, in the reference's environment
        run_reference(options)
        return
    commit = upstream_commit(options.upstream)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        hashes = build(work, options.seed)
        (work / "build.json").write_text(json.dumps({"commit": commit, "checkpoint": hashes}))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(options.site), str(options.upstream), str(Path(__file__).parent)]
        )
        env["HF_HUB_OFFLINE"] = "1"
        env["HF_HUB_CACHE"] = str(work / "checkpoints" / "hf_cache")
        env["PYTHONHASHSEED"] = "0"
        subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--work", str(work)],
            env=env,
            cwd=work,
            check=True,
        )


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


def upstream_commit(checkout: Path) -> str:
    """The checkout's commit: git, or the COMMIT file of a `git archive` extraction."""
    head = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not head and (checkout / "COMMIT").is_file():
        head = (checkout / "COMMIT").read_text().strip()
    if not head.startswith(PINNED):
        sys.exit(f"{checkout} is at {head or 'no known commit'}; the fixtures pin {PINNED}")
    return head


# ------------------------------------------------------------- in the reference's env


class Recorder:
    """Wraps reference callables to record what they were given and returned."""

    def __init__(self) -> None:
        self.calls: dict[str, list] = {}

    def wrap(self, owner, name: str, key: str, keep):  # type: ignore[no-untyped-def]
        original = getattr(owner, name)

        def wrapped(*a, **k):  # type: ignore[no-untyped-def]
            out = original(*a, **k)
            self.calls.setdefault(key, []).append(keep(a, k, out))
            return out

        setattr(owner, name, wrapped)

    def take(self, key: str) -> list:
        return self.calls.pop(key, [])


def narrow_hard_coded_widths(infer_v2, fixture: Fixture) -> None:  # type: ignore[no-untyped-def]
    """The reference builds some layers at the released widths whatever its config says
    (w2v-BERT's 1024 in UnifiedVoice, the 1280 → 256 → 128 → 1024 gpt_layer in MyModel);
    at construction, those widths become the tiny config's. Weights still come from the
    checkpoint files (verify_loaded checks every tensor)."""
    import itertools

    import torch
    from indextts.gpt import model_v2

    real_voice, real_model = infer_v2.UnifiedVoice, infer_v2.MyModel

    def unified_voice(**kwargs):  # type: ignore[no-untyped-def]
        width = kwargs.pop("semantic_dim", 1024)
        saved = model_v2.ConformerEncoder, model_v2.PerceiverResampler, model_v2.nn
        nn = types.SimpleNamespace(**{n: getattr(torch.nn, n) for n in dir(torch.nn)})
        nn.Linear = lambda a, b, *r, **k: torch.nn.Linear(width if a == 1024 else a, b, *r, **k)
        model_v2.ConformerEncoder = lambda input_size, **k: saved[0](
            input_size=width if input_size == 1024 else input_size, **k
        )
        model_v2.PerceiverResampler = lambda dim, **k: saved[1](width if dim == 1024 else dim, **k)
        model_v2.nn = nn
        try:
            return real_voice(**kwargs)
        finally:
            model_v2.ConformerEncoder, model_v2.PerceiverResampler, model_v2.nn = saved

    def my_model(args, use_gpt_latent=False):  # type: ignore[no-untyped-def]
        model = real_model(args, use_gpt_latent=use_gpt_latent)
        dims = list(args.gpt_latent_dims)
        model.models["gpt_layer"] = torch.nn.Sequential(
            *(torch.nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        )
        return model

    infer_v2.UnifiedVoice, infer_v2.MyModel = unified_voice, my_model
    fixture.patch(
        "UnifiedVoice built with the tiny w2v-BERT width where it hard-codes 1024 "
        "(conditioning and emotion conformer inputs, emotion perceiver, emovec_layer); the "
        "config's gpt.semantic_dim (not an official key) removed from its arguments"
    )
    fixture.patch(
        "MyModel's gpt_layer built as Linear layers over s2mel.gpt_latent_dims instead of "
        "the hard-coded 1280 -> 256 -> 128 -> 1024"
    )


def verify_loaded(tts, folder: Path, fixture: Fixture) -> None:  # type: ignore[no-untyped-def]
    """Every tensor of gpt.pth and s2mel.pth is what the reference modules hold (its
    s2mel loader skips mis-shaped keys without failing)."""
    import torch

    def same(module, saved: dict, what: str) -> None:  # type: ignore[no-untyped-def]
        state = module.state_dict()
        for key, value in saved.items():
            key = key.removeprefix("module.")
            if key.endswith(("attn.bias", "attn.masked_bias")) and key not in state:
                continue
            assert key in state, f"{what}: {key} not in the reference module"
            assert torch.equal(state[key].float(), value.float()), f"{what}: {key} differs"

    same(tts.gpt, torch.load(folder / "gpt.pth", weights_only=True), "gpt.pth")
    net = torch.load(folder / "s2mel.pth", weights_only=True)["net"]
    for name in ("cfm", "length_regulator", "gpt_layer"):
        same(tts.s2mel.models[name], net[name], f"s2mel.pth {name}")
    fixture.patch("checked: every tensor of gpt.pth and s2mel.pth is loaded in the reference")


def run_reference(options) -> None:  # type: ignore[no-untyped-def]
    import random

    import soundfile
    import torch

    # This script is itself named indextts.py: its folder must not shadow the package.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.insert(0, str(options.upstream))
    work = options.work
    built = json.loads((work / "build.json").read_text())
    fixture = Fixture(
        options.out,
        FAMILY,
        {"repository": "index-tts/index-tts", "commit": built["commit"]},
        options.seed,
    )
    fixture.manifest["checkpoint"] = {
        "builder": "tests/indextts_checkpoint.py write_checkpoint(layout='hub', w2v_layers=17)",
        "sha256": built["checkpoint"],
        "glossary": GLOSSARY,
    }
    fixture.manifest["prompt"] = {"rate": PROMPT_RATE, "seconds": PROMPT_SECONDS}
    torch.set_num_threads(THREADS)
    fixture.manifest["torch_threads"] = THREADS
    fixture.patch(
        "hub downloads: none patched; HF_HUB_OFFLINE=1 and HF_HUB_CACHE=<work>/checkpoints/"
        "hf_cache (the reference sets the same relative path), so its hf_hub_download "
        "(MaskGCT codec, CAM++), from_pretrained('facebook/w2v-bert-2.0') and "
        "BigVGAN.from_pretrained read the tiny models from a hub-layout cache"
    )
    fixture.patch(
        "torchaudio 2.11 imported without its C++ extension (_torchaudio*.so removed from "
        "the --site folder: it is built for torch 2.11); Resample and compliance.kaldi.fbank "
        "are pure torch"
    )
    from transformers.utils import import_utils

    import_utils._kernels_available = False
    fixture.patch(
        "transformers 4.52 told the `kernels` package is absent (the one installed for "
        "transformers 5 does not import with huggingface_hub 0.x; no kernel is used on CPU)"
    )
    modelscope = types.ModuleType("modelscope")
    modelscope.AutoModelForCausalLM = None
    sys.modules["modelscope"] = modelscope
    fixture.stub(
        "modelscope: imported by infer_v2 for the Qwen emotion model only, which no case uses"
    )

    matplotlib = types.ModuleType("matplotlib")
    matplotlib.use = lambda backend: None
    matplotlib.pylab = types.ModuleType("matplotlib.pylab")
    sys.modules["matplotlib"] = matplotlib
    sys.modules["matplotlib.pylab"] = matplotlib.pylab
    fixture.stub("matplotlib: imported by BigVGAN's utils for its spectrogram plots only")

    dac = options.upstream / "indextts" / "s2mel" / "dac"
    for name, path in (("indextts.s2mel.dac", dac), ("indextts.s2mel.dac.nn", dac / "nn")):
        package = types.ModuleType(name)
        package.__path__ = [str(path)]
        sys.modules[name] = package
    fixture.stub(
        "indextts.s2mel.dac and dac.nn package __init__s (they import descript-audiotools for "
        "the DAC codec and its training losses); dac.nn.quantize and layers load as written"
    )

    from indextts import infer_v2

    class NoQwen:
        def __init__(self, path: str) -> None:
            self.path = path

        def inference(self, text: str):  # type: ignore[no-untyped-def]
            raise RuntimeError("the Qwen emotion model is not part of the parity cases")

    infer_v2.QwenEmotion = NoQwen
    fixture.stub("infer_v2.QwenEmotion: not built (no Qwen weights; emotion text not compared)")

    narrow_hard_coded_widths(infer_v2, fixture)
    tts = infer_v2.IndexTTS2(
        cfg_path="checkpoints/config.yaml",
        model_dir="checkpoints",
        device="cpu",
        use_cuda_kernel=False,
    )
    verify_loaded(tts, work / "checkpoints", fixture)
    rec = Recorder()
    norm = tts.normalizer
    rec.wrap(norm, "normalize", "normalize", lambda a, k, out: (a[0], out))
    rec.wrap(tts, "get_emb", "features", lambda a, k, out: out.detach().clone())
    codec = tts.semantic_codec
    rec.wrap(codec, "quantize", "quantize", lambda a, k, out: out[0].detach().clone())
    rec.wrap(tts.campplus_model, "forward", "style", lambda a, k, out: out.detach().clone())
    rec.wrap(
        tts.gpt,
        "inference_speech",
        "generate",
        lambda a, k, out: {
            "text_ids": a[1][0].tolist(),
            "emovec": k["emo_vec"].detach().clone(),
            "codes": out[0][0].tolist(),
        },
    )
    rec.wrap(tts.gpt, "forward", "latent", lambda a, k, out: out.detach().clone())
    cfm = tts.s2mel.models["cfm"]
    original_cfm = cfm.inference

    def cfm_inference(mu, x_lens, prompt, style, f0, n_timesteps, temperature=1.0, **kw):  # type: ignore[no-untyped-def]
        # The noise the reference is about to draw: the same call on a copy of the
        # generator state, which is then restored, so the run itself is unchanged.
        state = torch.get_rng_state()
        noise = torch.randn([mu.size(0), cfm.in_channels, mu.size(1)], device=mu.device)
        torch.set_rng_state(state)
        out = original_cfm(mu, x_lens, prompt, style, f0, n_timesteps, temperature, **kw)
        rec.calls.setdefault("cfm", []).append(
            {"mu": mu.detach().clone(), "noise": noise * temperature, "mel": out.detach().clone()}
        )
        return out

    cfm.inference = cfm_inference
    rec.wrap(tts.bigvgan, "forward", "bigvgan", lambda a, k, out: out.detach().clone())
    fixture.patch(
        "recording wrappers on normalize, get_emb, semantic_codec.quantize, campplus "
        "forward, gpt.inference_speech, gpt.forward, cfm.inference (noise read from a "
        "saved generator state, then the state restored) and bigvgan.forward; each "
        "calls the original unchanged"
    )

    # Text front-end alone.
    texts = []
    for text in TEXT_ONLY:
        tokens = tts.tokenizer.tokenize(text)
        normalised = [out for _, out in rec.take("normalize")]
        texts.append(
            {
                "text": text,
                "normalized": normalised[0] if normalised else None,
                "tokens": tokens,
                "ids": tts.tokenizer.convert_tokens_to_ids(tokens),
                "segments": {str(n): tts.tokenizer.split_segments(tokens, n) for n in (20, 120)},
            }
        )
    fixture.document("text", texts)

    if options.cases is not None:
        overrides = json.loads(options.cases.read_text(encoding="utf-8"))
        for case in CASES:
            case.update(overrides.get(case["name"], {}))
        replaced = json.dumps(overrides, ensure_ascii=False)
        fixture.patch(f"cases' texts and seeds replaced: {replaced}")
    prompt_done = False
    for case in CASES:
        name = case["name"]
        # Each case as for a new prompt: the reference's w2v-BERT draws from the global
        # generator only when it computes prompt features (see skip_prompt_draws).
        tts.cache_spk_cond = tts.cache_emo_cond = None
        tts.cache_spk_audio_prompt = tts.cache_emo_audio_prompt = None
        torch.manual_seed(case["seed"])
        random.seed(case["seed"])
        kwargs = dict(case["sampling"])
        if "emotion_vector" in case:
            kwargs["emo_vector"] = case["emotion_vector"]
            kwargs["emo_alpha"] = case["emotion_weight"]
        rate, wav = tts.infer(
            spk_audio_prompt=str(work / "prompt.wav"),
            text=case["text"],
            output_path=None,
            interval_silence=200,
            max_text_tokens_per_segment=case["segment_tokens"],
            **kwargs,
        )
        assert rate == 22050
        normalised = [out for _, out in rec.take("normalize")]
        tokens = tts.tokenizer.tokenize(case["text"])
        rec.take("normalize")
        segments = tts.tokenizer.split_segments(tokens, case["segment_tokens"])
        features, quantized, styles = rec.take("features"), rec.take("quantize"), rec.take("style")
        if not prompt_done:  # one prompt in every case: the reference caches it after the first
            speaker, emotion = features
            audio, _ = soundfile.read(work / "prompt.wav", dtype="float32")
            fixture.array("prompt/audio", audio)
            fixture.array("prompt/speaker_features", speaker.float())
            fixture.array("prompt/emotion_features", emotion.float())
            fixture.array("prompt/semantic_codes", quantized[0].int())
            fixture.array("prompt/style", styles[0].float())
            fixture.array("prompt/ref_mel", tts.cache_mel.float())
            fixture.array("prompt/condition", tts.cache_s2mel_prompt.float())
            prompt_done = True
        generated = rec.take("generate")
        latents = rec.take("latent")
        cfms = rec.take("cfm")
        waves = rec.take("bigvgan")
        assert len(generated) == len(latents) == len(cfms) == len(waves) == len(segments)
        record = {
            **case,
            "normalized": normalised[0],
            "tokens": tokens,
            "segments": [],
            "samples": int(wav.shape[0]),
        }
        for index, (gen, latent, flow, wave) in enumerate(
            zip(generated, latents, cfms, waves, strict=True)
        ):
            stem = f"{name}/segment{index}"
            fixture.array(f"{stem}/emovec", gen["emovec"].float())
            fixture.array(f"{stem}/latent", latent.float())
            fixture.array(f"{stem}/mu", flow["mu"].float())
            fixture.array(f"{stem}/noise", flow["noise"].float())
            fixture.array(f"{stem}/mel", flow["mel"].float())
            fixture.array(f"{stem}/wave", wave.float().view(-1))
            record["segments"].append(
                {
                    "tokens": segments[index],
                    "text_ids": gen["text_ids"],
                    "raw_codes": gen["codes"],
                }
            )
        fixture.array(f"{name}/int16", np.asarray(wav).reshape(-1).astype(np.int16))
        fixture.case(**record)
    fixture.patch(
        "the prompt cache (cache_spk_cond, cache_emo_cond) cleared before each case, so "
        "every case runs as the reference runs a prompt it has not seen"
    )
    fixture.manifest["steps"] = {"diffusion_steps": 25, "cfg_rate": 0.7}
    fixture.finish(
        "torch",
        "torchaudio",
        "transformers",
        "librosa",
        "WeTextProcessing",
        "pynini",
        "sentencepiece",
        "numpy",
        "soxr",
    )


if __name__ == "__main__":
    main()
