"""Chatterbox (Resemble AI): zero-shot TTS (standard, turbo, multilingual) and voice conversion.

The speech side: `s3tokenizer` (16 kHz audio → 25 Hz speech tokens) and `s3gen`
(speech tokens + a reference voice → 24 kHz audio: CAM++ x-vector, conformer
encoder, flow-matching decoder, HiFT vocoder). The text side (voice encoder, text
tokenizers, T3) and the engine live beside them. Needs torch.
"""
