"""VITS: the posterior encoder and coupling flow (flow), the HiFi-GAN decoder (decoder),
the relative-attention text encoder (text_encoder) and the duration predictors with the
alignment they expand (duration); what every VITS family reads alike, torch-free: its
config.json and the scales of one inference (config)."""
