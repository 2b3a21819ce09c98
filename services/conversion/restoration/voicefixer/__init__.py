"""VoiceFixer: mel-domain restoration (denoiser + ResUNet) and its neural vocoder."""
