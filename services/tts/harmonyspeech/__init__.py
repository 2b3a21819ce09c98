"""HarmonySpeech V1: ForwardTacotron conditioned on a GE2E speaker embedding, vocoded by a
multi-band MelGAN (the `harmony-ai/harmony-speech-v1` checkpoints)."""
