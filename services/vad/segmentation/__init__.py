"""Speech segmentation, the public face of the VAD package.

What every service that finds speech uses (the VAD service's Detect and
StreamingDetect, the STT service's endpointing and long-audio cuts): the detector
contract a VAD family implements, the validated parameters, and one detection run
from audio to speech events.
"""

from speechmesh.services.vad.segmentation.detector import (
    VOICE_ACTIVITY,
    VadJob,
    VadResult,
    VoiceActivityDetector,
)
from speechmesh.services.vad.segmentation.params import check_room_for_speech, vad_params
from speechmesh.services.vad.segmentation.run import DetectionRun, SpeechEvent
from speechmesh.services.vad.segmentation.segmenter import EventKind, VadParams

__all__ = [
    "VOICE_ACTIVITY",
    "DetectionRun",
    "EventKind",
    "SpeechEvent",
    "VadJob",
    "VadParams",
    "VadResult",
    "VoiceActivityDetector",
    "check_room_for_speech",
    "vad_params",
]
