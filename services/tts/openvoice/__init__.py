"""OpenVoice V1 base speakers (family openvoice-v1-base): VITS with the reference's text
front-end, its sentence splitting and its silences."""
