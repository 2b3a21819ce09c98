"""Chatterbox voice conversion (chatterbox-vc): S3Gen re-voicing a source's speech tokens."""
