"""OpenVoice V1/V2 tone-colour conversion: modules, checkpoint loader and engines."""
