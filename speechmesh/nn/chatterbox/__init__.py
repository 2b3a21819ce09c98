"""Chatterbox's (Resemble AI) speech side, shared by the TTS families (chatterbox,
chatterbox-turbo, chatterbox-multilingual) and the conversion family (chatterbox-vc).

  * `s3tokenizer` — S3 speech tokenizer v2: 16 kHz audio → 25 Hz speech tokens.
  * `s3gen` — speech tokens + a reference voice → 24 kHz audio (CAM++ x-vector,
    upsampling conformer, flow-matching decoder, HiFT vocoder) and the official
    checkpoint loader; `s3gen.convert` is voice conversion.

The text side (voice encoder, text tokenizers, T3) is the TTS service's
(services/tts/chatterbox/). Needs torch.
"""
