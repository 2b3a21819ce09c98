"""The TTS service (speechmesh.tts.v1.TextToSpeech, Vocoder).

The contract is in protos/speechmesh/tts/v1; no server yet.
"""
