"""The IndexTTS-2 inference pipeline: checkpoint → stages → audio, one segment at a time.

prompt audio → (cached by hash) w2v-BERT layer-17 features normalised by the stats,
semantic codes + embeddings, 22.05 kHz reference mel, CAM++ style, the prompt's
length-regulated condition, speaker latents and the prompt's own emotion vector;
text → segments → per segment: GPT codes + latent → gpt_layer(latent) + code
embeddings → length regulator to int(codes × 1.72) frames → flow matching after the
prompt's frames with CFG → BigVGAN (256 samples a frame).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr
import torch

from speechmesh.runtime import weights
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.indextts import checkpoint
from speechmesh.services.indextts.bigvgan import BigVGAN, read_config
from speechmesh.services.indextts.campplus import CAMPPlus
from speechmesh.services.indextts.config import CampplusConfig, IndexTTSConfig
from speechmesh.services.indextts.emotion import EmotionMatrices, QwenEmotion, scale_weights
from speechmesh.services.indextts.layout import CheckpointFiles
from speechmesh.services.indextts.normalizer import TextNormalizer, read_glossary
from speechmesh.services.indextts.s2mel import S2Mel, mel_frames
from speechmesh.services.indextts.sampling import SamplingSettings
from speechmesh.services.indextts.semantic_codec import SemanticCodec
from speechmesh.services.indextts.spectral import kaldi_fbank, reference_mel, sinc_resample
from speechmesh.services.indextts.text import TextFrontEnd
from speechmesh.services.indextts.unified_voice import Generated, UnifiedVoice

PROMPT_SECONDS = 15
GPT_IGNORED = ("gpt.h.*.attn.bias", "gpt.h.*.attn.masked_bias")
CROSSFADE_FRAMES = 4


@dataclass
class PromptFeatures:
    semantic: torch.Tensor  # (1, T, 1024) normalised w2v-BERT features
    ref_mel: torch.Tensor  # (1, 80, P)
    style: torch.Tensor  # (1, 192)
    prompt_condition: torch.Tensor  # (1, P, 512)
    speaker_latents: torch.Tensor  # (1, 32, model_dim)
    speaker_emotion: torch.Tensor  # (1, model_dim): emotion vector of the speaker-side signal
    emotion: torch.Tensor  # (1, model_dim): the prompt's own emotion vector (emotion side)

    @property
    def default_emotion(self) -> torch.Tensor:
        """The emotion of a request without one: the prompt's own, blended at weight 1 from
        the speaker side as the reference computes it (not bit-equal to `emotion`)."""
        return self.speaker_emotion + 1.0 * (self.emotion - self.speaker_emotion)


@dataclass
class EmotionRequest:
    audio: np.ndarray | None = None
    audio_rate: int = 0
    vector: list[float] | None = None
    text: str | None = None
    """"" means the synthesized text itself."""
    weight: float = 1.0
    use_random: bool = False


@dataclass
class SegmentAudio:
    index: int
    samples: np.ndarray  # float32 in [-1, 1], 22.05 kHz
    codes: int
    last_in_segment: bool = True


@dataclass
class Timings:
    prompt_s: float = 0.0
    gpt_s: float = 0.0
    s2mel_s: float = 0.0
    vocoder_s: float = 0.0
    codes: list[int] = field(default_factory=list)


class IndexTTS2:
    def __init__(
        self,
        files: CheckpointFiles,
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
        text_cache: Path | None = None,
    ) -> None:
        self.files = files
        self.config: IndexTTSConfig = files.config
        self.device = torch.device(device)
        self.dtype = dtype
        normalizer = TextNormalizer(read_glossary(files.glossary), text_cache)
        self.text = TextFrontEnd(files.bpe_model, normalizer)
        self.gpt = _load(
            UnifiedVoice(self.config.gpt), checkpoint.read(files.gpt), "gpt.pth", GPT_IGNORED
        )
        self.s2mel = self._load_s2mel()
        stats = checkpoint.read(files.w2v_stat)
        for key in ("mean", "var"):
            if key not in stats:
                raise FailedPrecondition(
                    f"{files.w2v_stat} has no {key!r} entry (keys: {sorted(stats)})"
                )
        self.semantic_mean = stats["mean"].float()
        self.semantic_std = torch.sqrt(stats["var"].float())
        self.codec = _load(
            SemanticCodec(self.config.semantic_codec),
            checkpoint.read(files.semantic_codec),
            "semantic codec",
            ("decoder.*",),
        )
        self.campplus = _load(
            CAMPPlus(CampplusConfig()), checkpoint.read(files.campplus), "campplus"
        )
        bigvgan_config = read_config(files.bigvgan)
        generator = weights.unwrap(
            checkpoint.read(files.bigvgan / "bigvgan_generator.pt"), "generator"
        )
        self.vocoder = _load(BigVGAN(bigvgan_config), generator, "bigvgan_generator.pt")
        self.emotions = EmotionMatrices(
            checkpoint.read_tensor(files.emo_matrix),
            checkpoint.read_tensor(files.spk_matrix),
            self.config.emo_num,
        )
        self.extractor, self.w2v = _load_w2v_bert(files.w2v_bert)
        self.qwen = (
            QwenEmotion(files.qwen_emotion, self.device, dtype)
            if files.qwen_emotion is not None
            else None
        )
        self._prompts: OrderedDict[str, PromptFeatures] = OrderedDict()
        self._prompt_lock = threading.Lock()
        for module in (self.gpt, self.s2mel, self.codec, self.campplus, self.vocoder, self.w2v):
            module.to(self.device).eval()
        if self.dtype != torch.float32:
            self.gpt.to(self.dtype)

    def _load_s2mel(self) -> S2Mel:
        model = S2Mel(self.config.s2mel)
        net = weights.unwrap(checkpoint.read(self.files.s2mel), "net")
        for name in ("cfm", "length_regulator", "gpt_layer"):
            part = weights.unwrap(net, name)
            _load(
                getattr(model, name), weights.strip_prefix(part, "module."), f"s2mel.pth net/{name}"
            )
        return model

    @property
    def sample_rate(self) -> int:
        return self.vocoder.config.sampling_rate

    # ---------------------------------------------------------------------- prompts

    def skip_prompt_draws(self, generator: torch.Generator) -> None:
        """Advances a request's generator past the draws the reference makes before its GPT.

        The reference's w2v-BERT (transformers 4.52) draws torch.rand([]) once per layer
        (LayerDrop, in eval too) from the global CPU generator, on both prompt passes
        (speaker, emotion) of a prompt it has not cached; its GPT and flow then sample
        from that same generator. A seeded request here makes those draws too, so that
        on CPU it samples what the reference does for a new prompt. On CUDA the
        reference's samples come from the CUDA generator, which these draws never touch."""
        if generator.device.type != "cpu":
            return
        config = self.w2v.config
        per_pass = config.num_hidden_layers
        if getattr(config, "add_adapter", False):
            per_pass += config.num_adapter_layers
        for _ in range(2 * per_pass):  # one call each, as the reference draws them
            torch.rand([], generator=generator)

    @torch.inference_mode()
    def semantic_features(self, audio_16k: np.ndarray) -> torch.Tensor:
        inputs = self.extractor(audio_16k, sampling_rate=16000, return_tensors="pt")
        out = self.w2v(
            input_features=inputs["input_features"].to(self.device),
            attention_mask=inputs["attention_mask"].to(self.device),
            output_hidden_states=True,
        )
        hidden = out.hidden_states[self.config.w2v_layer]
        return (hidden - self.semantic_mean.to(self.device)) / self.semantic_std.to(self.device)

    @torch.inference_mode()
    def prompt(self, audio: np.ndarray, rate: int) -> PromptFeatures:
        """Features of a speaker prompt, cached by the hash of its samples and rate."""
        key = hashlib.sha256(
            np.ascontiguousarray(audio, dtype=np.float32).tobytes() + str(rate).encode()
        ).hexdigest()
        with self._prompt_lock:
            if key in self._prompts:
                self._prompts.move_to_end(key)
                return self._prompts[key]
        # Two 16 kHz signals, as the reference makes them: the speaker side resamples the
        # 15 s cut at 22.05 kHz with a windowed sinc, the emotion side resamples the
        # original straight to 16 kHz (soxr) and cuts it at 15 s.
        audio_22k = _resample(audio, rate, 22050)[: 22050 * PROMPT_SECONDS]
        audio_16k = sinc_resample(audio_22k, 22050, 16000)
        emotion_16k = _resample(audio, rate, 16000)[: 16000 * PROMPT_SECONDS]
        semantic = self.semantic_features(audio_16k)
        emotion_semantic = self.semantic_features(emotion_16k).to(self.dtype)
        _, embeddings = self.codec.quantize(semantic)
        spect = self.config.s2mel.preprocess_params
        wave = torch.from_numpy(audio_22k).float().unsqueeze(0).to(self.device)
        ref_mel = reference_mel(
            wave,
            spect.sr,
            spect.n_fft,
            spect.hop_length,
            spect.win_length,
            spect.n_mels,
            spect.fmin,
            spect.fmax,
        )
        fbank = kaldi_fbank(torch.from_numpy(audio_16k).float()).to(self.device)
        style = self.campplus((fbank - fbank.mean(dim=0, keepdim=True)).unsqueeze(0))
        condition = self.s2mel.length_regulator(embeddings, ref_mel.shape[-1])
        lengths = torch.tensor([semantic.shape[1]], device=self.device)
        gpt_in = semantic.to(self.dtype)
        features = PromptFeatures(
            semantic=semantic,
            ref_mel=ref_mel,
            style=style,
            prompt_condition=condition,
            speaker_latents=self.gpt.speaker_latents(gpt_in, lengths),
            speaker_emotion=self.gpt.emotion_vector(gpt_in, lengths),
            emotion=self.gpt.emotion_vector(
                emotion_semantic,
                torch.tensor([emotion_semantic.shape[1]], device=self.device),
            ),
        )
        with self._prompt_lock:
            self._prompts[key] = features
            while len(self._prompts) > 16:
                self._prompts.popitem(last=False)
        return features

    def emotion_from_text(
        self, request: EmotionRequest | None, text: str, generator: torch.Generator | None
    ) -> EmotionRequest | None:
        """A text emotion request as the vector the Qwen model reads from it (others as
        they are). The reference asks Qwen first, before any prompt work draws."""
        if request is None or request.text is None:
            return request
        if self.qwen is None:
            raise FailedPrecondition(
                "this checkpoint has no emotion text model (qwen0.6bemo4-merge)"
            )
        vector = self.qwen(request.text or text, generator)
        return EmotionRequest(vector=vector, weight=request.weight, use_random=request.use_random)

    @torch.inference_mode()
    def emotion_vector(
        self,
        prompt: PromptFeatures,
        request: EmotionRequest | None,
        text: str,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        if request is None:
            return prompt.default_emotion
        request = self.emotion_from_text(request, text, generator)
        weights_list = request.vector
        if weights_list is not None:
            scaled = scale_weights(weights_list, request.weight)
            return self.emotions.mix(
                scaled, prompt.style, prompt.default_emotion, request.use_random, generator
            )
        if request.audio is not None:
            audio_16k = _resample(request.audio, request.audio_rate, 16000)[
                : 16000 * PROMPT_SECONDS
            ]
            semantic = self.semantic_features(audio_16k).to(self.dtype)
            own = self.gpt.emotion_vector(
                semantic, torch.tensor([semantic.shape[1]], device=self.device)
            )
            base = prompt.speaker_emotion
            return base + request.weight * (own - base)
        return prompt.default_emotion

    # --------------------------------------------------------------------- segments

    @torch.inference_mode()
    def codes_to_mel(
        self,
        prompt: PromptFeatures,
        generated: Generated,
        steps: int,
        cfg_rate: float,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """(1, 80, int(codes × 1.72)) mel for the generated codes, after the prompt's frames."""
        codes = torch.tensor([generated.codes], device=self.device)
        latent = self.s2mel.gpt_layer(generated.latent.float())
        content = self.codec.embed(codes) + latent
        condition = self.s2mel.length_regulator(content, mel_frames(len(generated.codes)))
        mu = torch.cat([prompt.prompt_condition, condition], dim=1)
        mel = self.s2mel.cfm.inference(mu, prompt.ref_mel, prompt.style, steps, cfg_rate, generator)
        return mel[:, :, prompt.ref_mel.shape[-1] :]

    @torch.inference_mode()
    def vocode(self, mel: torch.Tensor) -> torch.Tensor:
        return self.vocoder(mel.float()).view(-1)

    def segments(
        self,
        text: str,
        prompt: PromptFeatures,
        emotion: torch.Tensor,
        settings: SamplingSettings,
        *,
        max_tokens: int = 120,
        first_max_tokens: int = 0,
        steps: int = 25,
        cfg_rate: float = 0.7,
        generator: torch.Generator | None = None,
        chunk_codes: int = 0,
        timings: Timings | None = None,
        cancelled: threading.Event | None = None,
    ) -> Iterator[SegmentAudio]:
        """Audio per text segment (or per chunk of `chunk_codes` codes within a segment).

        Once `cancelled` is set, no further segment starts and a chunked segment stops
        its GPT between tokens and its S2MEL before the next chunk."""
        import time

        timings = timings if timings is not None else Timings()
        conditioning = self.gpt.conditioning(prompt.speaker_latents, emotion.to(self.dtype))
        for index, segment in enumerate(self.text.segments(text, max_tokens, first_max_tokens)):
            if cancelled is not None and cancelled.is_set():
                return
            if chunk_codes > 0 and settings.num_beams == 1:
                yield from self._chunked(
                    index,
                    segment.ids,
                    prompt,
                    conditioning,
                    settings,
                    steps,
                    cfg_rate,
                    generator,
                    chunk_codes,
                    timings,
                    cancelled,
                )
                continue
            started = time.perf_counter()
            generated = self.gpt.generate(conditioning, segment.ids, settings, generator)
            timings.gpt_s += time.perf_counter() - started
            timings.codes.append(len(generated.codes))
            if not generated.codes:
                yield SegmentAudio(index, np.zeros(0, np.float32), 0)
                continue
            started = time.perf_counter()
            mel = self.codes_to_mel(prompt, generated, steps, cfg_rate, generator)
            timings.s2mel_s += time.perf_counter() - started
            started = time.perf_counter()
            wave = self.vocode(mel)
            timings.vocoder_s += time.perf_counter() - started
            yield SegmentAudio(index, wave.cpu().numpy().astype(np.float32), len(generated.codes))

    def _chunked(
        self,
        index,
        ids,
        prompt,
        conditioning,
        settings,
        steps,
        cfg_rate,
        generator,
        chunk_codes,
        timings,
        cancelled=None,
    ):  # type: ignore[no-untyped-def]
        """Codes in chunks; each chunk's mel is made with the codes before it as context and
        vocoded with CROSSFADE_FRAMES of the previous mel prepended, the overlap crossfaded.

        The GPT runs in a worker thread while S2MEL renders the chunks before; each has its
        own random generator (S2MEL's seeded from a copy of the request's, which the GPT
        keeps), so a seed repeats a stream exactly whatever the threads' timing. Each
        chunk's latent is the teacher-forced pass over all codes so far (the pass is
        causal: a prefix's latent does not change as codes are added)."""
        pieces: list[Generated] = []
        done = threading.Event()
        stop = threading.Event()
        error: list[BaseException] = []
        s2mel_generator = None
        if generator is not None:
            copy = torch.Generator(device=generator.device)
            copy.set_state(generator.get_state())
            seed = int(torch.randint(0, 2**62, (1,), generator=copy, device=generator.device))
            s2mel_generator = torch.Generator(device=generator.device).manual_seed(seed)

        def run() -> None:
            try:
                self.gpt.generate(
                    conditioning,
                    ids,
                    settings,
                    generator,
                    on_codes=chunk_codes,
                    sink=pieces,
                    cancelled=_Either(stop, cancelled),
                )
            except BaseException as failure:  # surfaced to the consumer below
                error.append(failure)
            finally:
                done.set()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        try:
            yield from self._render_chunks(
                index,
                ids,
                prompt,
                conditioning,
                steps,
                cfg_rate,
                s2mel_generator,
                pieces,
                done,
                stop,
                cancelled,
                timings,
            )
        finally:
            stop.set()  # a closed stream stops its GPT too
            worker.join()
        if error:
            raise error[0]

    def _render_chunks(
        self,
        index,
        ids,
        prompt,
        conditioning,
        steps,
        cfg_rate,
        generator,
        pieces,
        done,
        stop,
        cancelled,
        timings,
    ):  # type: ignore[no-untyped-def]
        stitcher = Crossfader(CROSSFADE_FRAMES * 256)
        all_codes: list[int] = []
        previous_mel: torch.Tensor | None = None
        taken = 0
        while True:
            if cancelled is not None and cancelled.is_set():
                stop.set()
                return
            if taken >= len(pieces):
                if done.is_set() and taken >= len(pieces):
                    break
                done.wait(0.005)
                continue
            piece = pieces[taken]
            taken += 1
            start_codes = len(all_codes)
            all_codes += piece.codes
            if not all_codes:
                continue
            latent = self.gpt.latent(conditioning, ids, all_codes)
            whole = Generated(list(all_codes), latent, piece.stopped)
            mel = self.codes_to_mel(prompt, whole, steps, cfg_rate, generator)
            new = mel[:, :, mel_frames(start_codes) :]
            head = previous_mel[:, :, -CROSSFADE_FRAMES:] if previous_mel is not None else None
            wave = (
                self.vocode(torch.cat([head, new], dim=2) if head is not None else new)
                .cpu()
                .numpy()
            )
            previous_mel = mel
            out = stitcher.push(wave, overlap=head is not None)
            yield SegmentAudio(index, out, len(piece.codes), last_in_segment=False)
        timings.codes.append(len(all_codes))
        yield SegmentAudio(index, stitcher.flush(), 0, last_in_segment=True)


class _Either:
    """Set once any of its events is: the GPT worker stops as soon as the caller goes
    away (`cancelled`), not only when the consumer closes the stream (`stop`)."""

    def __init__(self, *events: threading.Event | None) -> None:
        self.events = [e for e in events if e is not None]

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)


class Crossfader:
    """Joins overlapping vocoder outputs: each push holds back its last `fade` samples and
    blends them (linear ramps) with the next push's first `fade` samples, which re-render
    the same frames."""

    def __init__(self, fade: int) -> None:
        self.fade = fade
        self.held = np.zeros(0, np.float32)

    def push(self, wave: np.ndarray, overlap: bool) -> np.ndarray:
        wave = wave.astype(np.float32)
        if overlap and self.held.size:
            n = min(self.fade, self.held.size, wave.size)
            ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
            blended = self.held[:n] * (1 - ramp) + wave[:n] * ramp
            wave = np.concatenate([blended, wave[n:]])
        elif self.held.size:
            wave = np.concatenate([self.held, wave])
        keep = min(self.fade, wave.size)
        self.held = wave[wave.size - keep :]
        return wave[: wave.size - keep]

    def flush(self) -> np.ndarray:
        held, self.held = self.held, np.zeros(0, np.float32)
        return held


def _resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """librosa.load's resampling, as the reference reads its prompts: soxr HQ, then the
    length fixed to ceil(n × target / rate) (soxr may give one sample fewer; librosa pads
    a zero, which shows in the last mel frame and the 16 kHz sample count)."""
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if rate == target:
        return audio
    out = soxr.resample(audio, rate, target, quality="HQ").astype(np.float32)
    size = int(np.ceil(audio.shape[-1] * float(target) / rate))
    if out.shape[-1] < size:
        return np.pad(out, (0, size - out.shape[-1]))
    return out[:size]


def _load(module, state, what, ignore=()):  # type: ignore[no-untyped-def]
    try:
        checkpoint.load_module(module, state, ignore=ignore)
    except FailedPrecondition as error:
        raise FailedPrecondition(f"{what}: {error.message}") from error
    return module


def _load_w2v_bert(folder: Path):  # type: ignore[no-untyped-def]
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertModel

    try:
        extractor = SeamlessM4TFeatureExtractor.from_pretrained(str(folder), local_files_only=True)
        # Eager attention, as the reference's transformers (4.52) runs this model: the
        # fused kernel (sdpa, the default here) sums in another order, ~3e-6 of the peak
        # by layer 17, which after the flow leaves int16 samples 1-2 LSB off.
        model, info = Wav2Vec2BertModel.from_pretrained(
            str(folder),
            local_files_only=True,
            output_loading_info=True,
            attn_implementation="eager",
        )
    except (OSError, ValueError) as error:
        raise FailedPrecondition(f"w2v-BERT 2.0 at {folder} cannot be loaded: {error}") from error
    problems = {
        k: v
        for k, v in info.items()
        if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")
    }
    if problems:
        raise FailedPrecondition(f"w2v-BERT 2.0 at {folder} does not match its config: {problems}")
    return extractor, model
