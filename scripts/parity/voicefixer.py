"""VoiceFixer parity fixtures: the original `VoiceFixer.restore` path on tiny random weights.

The reference is haoheliu/voicefixer at PINNED. Weights are made by
tests/checkpoints.py save_voicefixer (seeded) and saved where the original reads them,
~/.cache/voicefixer/{analysis_module/checkpoints/vf.ckpt,
synthesis_module/44100/model.ckpt-1490000_trimed.pt}, with HOME pointed at a scratch
folder. The original's layer widths are fixed in its code, so two run-time patches
shrink them to the tiny checkpoint (the code paths stay the original's):
  * the restorer's UNet blocks get the checkpoint's widths (32/64/128/256/384 → tiny),
  * the vocoder's Config.refresh(44100) gets the checkpoint's widths and depth.
The analysis STFT keeps the official n_fft = 2048 (the only one built at 44.1 kHz).

Each case writes a WAV (float32) at its own rate and runs the original's `_load_wav`
(librosa.load, sr=44100) and `restore_inmem` on it: what `VoiceFixer.restore` does
short of writing its 16-bit output file. The 31 s case is longer than one 30 s
segment. Long outputs are kept on a sparse grid (every STRIDE-th sample) plus dense
windows at the start, each segment boundary and the end; clips are rebuilt from
their seed (tests/parity/voicefixer_clips.py).

    python scripts/parity/voicefixer.py --upstream /path/to/voicefixer [--seed N --out DIR]
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import soundfile
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import REPOSITORY, Fixture, parser, upstream_commit  # noqa: E402

# This script's own name would shadow the upstream package.
sys.path.remove(str(HERE))
sys.path[:0] = [str(REPOSITORY), str(REPOSITORY / "tests"), str(REPOSITORY / "tests" / "parity")]

from checkpoints import TINY_RESTORER, TINY_VOCODER, save_voicefixer  # noqa: E402
from voicefixer_clips import clip  # noqa: E402

PINNED = "aae2253"
FAMILY = "voicefixer"
RESTORER_SIZES = dict(TINY_RESTORER, n_fft=2048)
# The original's UNet widths, in order, and the tiny checkpoint's.
OFFICIAL_WIDTHS = (32, 64, 128, 256, 384, 384)
OUTPUT_GAIN = 0.05  # the tiny vocoder saturates its tanh otherwise
STRIDE = 37
WINDOW = 2205  # 50 ms at 44.1 kHz, each side of a boundary
SEGMENT = 30 * 44100
# (name, input rate, input samples, mode, clip seed offset)
CASES = [
    ("short", 16000, 9601, 0, 1),
    ("medium", 44100, 3 * 44100 + 123, 0, 2),
    ("mode1", 48000, 57600, 1, 3),
    ("long", 16000, 31 * 16000 + 5, 0, 4),
]
DENSE_UP_TO = 30000  # outputs up to this long are kept whole


def picks(length: int) -> np.ndarray:
    """The output samples kept for a case of this length (the suite computes the same)."""
    if length <= DENSE_UP_TO:
        return np.arange(length)
    keep = [np.arange(0, length, STRIDE)]
    for edge in [0, *range(SEGMENT, length, SEGMENT), length]:
        keep.append(np.arange(max(0, edge - WINDOW), min(length, edge + WINDOW)))
    return np.unique(np.concatenate(keep))


def state_digest(state: dict) -> str:
    """sha256 over the tensors inference uses, in key order (the suite checks that its
    regenerated checkpoint is this one)."""
    digest = hashlib.sha256()
    for key in sorted(state):
        if key.startswith(("vocoder.model.", "f_helper.istft.")):
            continue
        value = state[key].contiguous()
        digest.update(key.encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()


def stub_plotting(fixture: Fixture) -> None:
    """matplotlib and librosa.display are imported for training-time plots only."""
    for name in ("matplotlib", "matplotlib.pyplot", "matplotlib.cm", "librosa.display"):
        sys.modules[name] = types.ModuleType(name)
    import librosa

    librosa.display = sys.modules["librosa.display"]
    fixture.stub("matplotlib, matplotlib.pyplot, matplotlib.cm: training plots only")
    fixture.stub("librosa.display: imported by voicefixer/base.py for plots, never called")


def shrink_reference(fixture: Fixture) -> None:
    import torch.nn as nn
    import voicefixer.restorer.model_kqq_bn as kqq
    from voicefixer.vocoder.config import Config

    widths = dict(zip(OFFICIAL_WIDTHS, RESTORER_SIZES["widths"], strict=True))
    original_init = kqq.UNetResComplex_100Mb.__init__
    blocks = ("EncoderBlockRes", "DecoderBlockRes", "ConvBlockRes")

    def narrow(cls):
        def make(**kw):
            kw["in_channels"] = widths.get(kw["in_channels"], kw["in_channels"])
            kw["out_channels"] = widths.get(kw["out_channels"], kw["out_channels"])
            return cls(**kw)

        return make

    def tiny_init(self, channels, nsrc=1):
        saved = {name: getattr(kqq, name) for name in blocks}
        for name, cls in saved.items():
            setattr(kqq, name, narrow(cls))
        try:
            original_init(self, channels, nsrc)
        finally:
            for name, cls in saved.items():
                setattr(kqq, name, cls)
        self.after_conv2 = nn.Conv2d(widths[32], 1, kernel_size=(1, 1), bias=True)

    kqq.UNetResComplex_100Mb.__init__ = tiny_init
    fixture.patch(
        "restorer/model_kqq_bn.py UNetResComplex_100Mb: block widths "
        f"{OFFICIAL_WIDTHS} -> {RESTORER_SIZES['widths']} (tiny checkpoint); forward unchanged"
    )

    original_refresh = Config.refresh.__func__

    def tiny_refresh(cls, sr):
        original_refresh(cls, sr)
        Config.cond_channels = TINY_VOCODER["condition"]
        Config.channels = TINY_VOCODER["channels"]
        Config.resstack_depth = [TINY_VOCODER["depth"]] * 4

    Config.refresh = classmethod(tiny_refresh)
    fixture.patch(
        "vocoder/config.py Config.refresh(44100): cond_channels 512 -> "
        f"{TINY_VOCODER['condition']}, channels 1024 -> {TINY_VOCODER['channels']}, "
        f"resstack_depth 8 -> {TINY_VOCODER['depth']} (tiny checkpoint)"
    )


def main() -> None:
    args = parser(FAMILY, __doc__.splitlines()[0]).parse_args()
    commit = upstream_commit(args.upstream, PINNED)
    fixture = Fixture(
        args.out, FAMILY, {"repository": "haoheliu/voicefixer", "commit": commit}, args.seed
    )
    home = Path(tempfile.mkdtemp(prefix="voicefixer-home-"))
    os.environ["HOME"] = str(home)  # the original reads ~/.cache/voicefixer/...
    cache = home / ".cache" / "voicefixer"
    state, _ = save_voicefixer(
        cache, seed=args.seed, restorer_sizes=RESTORER_SIZES, output_gain=OUTPUT_GAIN
    )
    vf_path = cache / "analysis_module" / "checkpoints" / "vf.ckpt"

    sys.path.insert(0, str(args.upstream))
    deps = os.environ.get("VOICEFIXER_DEPS")
    if deps:
        sys.path.insert(1, deps)
    stub_plotting(fixture)
    shrink_reference(fixture)
    from voicefixer.base import VoiceFixer
    from voicefixer.restorer.model import VoiceFixer as Analysis

    # vf.ckpt holds the inverse-STFT tensors the original builds (unused by inference):
    # the original's loader refuses a wrong shape, so they are its own.
    bare = Analysis(channels=2, sample_rate=44100).state_dict()
    istft = {k: v for k, v in bare.items() if k.startswith("f_helper.istft.")}
    saved = torch.load(vf_path, weights_only=True)
    saved = {k: v for k, v in saved.items() if not k.startswith("f_helper.istft.")}
    torch.save({**saved, **istft}, vf_path)
    # The original loads vf.ckpt leniently (keys it lacks are skipped): check the layout.
    for key, value in bare.items():
        if key.startswith("vocoder."):
            continue
        assert key in saved or key in istft, f"vf.ckpt lacks {key}"
        assert tuple((saved.get(key, istft.get(key))).shape) == tuple(value.shape), key
    fixture.document(
        "weights",
        {
            "seed": args.seed,
            "restorer_sizes": {**RESTORER_SIZES, "widths": list(RESTORER_SIZES["widths"])},
            "vocoder_sizes": TINY_VOCODER,
            "output_gain": OUTPUT_GAIN,
            "digest": state_digest(state),
        },
    )

    torch.manual_seed(args.seed)
    model = VoiceFixer()
    for name, rate, samples, mode, offset in CASES:
        audio = clip(args.seed * 100 + offset, samples, rate)
        wav = home / f"{name}.wav"
        soundfile.write(wav, audio, rate, subtype="FLOAT")
        wav44 = model._load_wav(str(wav), sample_rate=44100)
        out = model.restore_inmem(wav44, cuda=False, mode=mode)[0]
        kept = picks(len(out))
        inputs_kept = picks(len(wav44))
        fixture.array(f"{name}/input44", wav44[inputs_kept])
        fixture.array(f"{name}/output", out[kept])
        fixture.case(
            name=name,
            rate=rate,
            samples=samples,
            mode=mode,
            clip_seed=args.seed * 100 + offset,
            input44_samples=len(wav44),
            output_samples=len(out),
            segments=-(-len(wav44) // SEGMENT),
            peak=float(np.max(np.abs(out))),
        )
        print(f"{name}: {samples} @ {rate} -> {len(wav44)} @ 44100 -> {len(out)} restored")
    fixture.finish("torch", "numpy", "librosa", "soxr", "torchlibrosa", "soundfile")


if __name__ == "__main__":
    main()
