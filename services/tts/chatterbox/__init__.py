"""Chatterbox (Resemble AI): zero-shot TTS in three variants (standard, turbo,
multilingual): a voice encoder and T3 (text to speech tokens) here, S3Gen (speech tokens
to 24 kHz audio) in `s3gen/`."""
