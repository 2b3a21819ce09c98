"""VITS: the posterior encoder and coupling flow (flow), the HiFi-GAN decoder (decoder),
the relative-attention text encoder (text_encoder) and the duration predictors with the
alignment they expand (duration)."""
