"""VoiceConversion: tone-colour conversion to a target voice, whole and streamed."""
