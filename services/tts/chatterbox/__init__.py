"""Chatterbox (Resemble AI) text-to-speech families (chatterbox, chatterbox-turbo,
chatterbox-multilingual): the text side here — voice encoder, text tokenizers, T3 — and
the engine; the speech side (S3 tokenizer, S3Gen) is speechmesh/nn/chatterbox/."""
