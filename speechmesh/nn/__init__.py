"""Neural-network building blocks that model families of more than one service share.

Families of different services never import each other; what their networks have in
common (VITS's flows and HiFi-GAN decoder: the OpenVoice converter and the OpenVoice
base speakers; CAM++: IndexTTS-2 and Chatterbox; Chatterbox's S3 tokenizer and S3Gen:
its TTS and voice-conversion families) lives here, beneath every service, with the
official module names so checkpoints load as published. Needs torch.
"""
