"""The VAD service: speechmesh.vad.v1.VoiceActivity on Silero VAD (onnxruntime, no torch)."""
