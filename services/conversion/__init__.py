"""The conversion service (SpeakerEncoder, VoiceConversion, AudioRestoration).

The contract is in protos/speechmesh/conversion/v1; no server yet.
"""
