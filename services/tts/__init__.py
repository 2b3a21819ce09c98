"""The TTS service: speechmesh.tts.v1.TextToSpeech and Vocoder, on Piper and KittenTTS."""
