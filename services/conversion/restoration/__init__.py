"""AudioRestoration: denoising and restoration (DeepFilterNet3, RNNoise, VoiceFixer)."""
