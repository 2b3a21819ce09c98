"""Chatterbox's (Resemble AI) speech side, shared by the TTS families (chatterbox,
chatterbox-turbo, chatterbox-multilingual) and the conversion family (chatterbox-vc).

  * `s3tokenizer` — S3 speech tokenizer v2: 16 kHz audio → 25 Hz speech tokens.
  * `s3gen` — speech tokens + a reference voice → 24 kHz audio (CAM++ x-vector,
    upsampling conformer, flow-matching decoder, HiFT vocoder) and the official
    checkpoint loader. Voice conversion is S3Gen on the source's tokens with the
    target's conditionals (services/conversion/conversion/chatterbox/engine.py).

The text side (voice encoder, text tokenizers, T3) is the TTS service's
(services/tts/chatterbox/). Needs torch.
"""
