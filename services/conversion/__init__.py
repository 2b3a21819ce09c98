"""The conversion service: speaker embeddings, voice conversion and audio restoration."""
