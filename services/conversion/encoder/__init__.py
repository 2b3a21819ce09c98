"""SpeakerEncoder: speaker embeddings of reference audio (GE2E here; OpenVoice's
encoders come with its converter)."""
