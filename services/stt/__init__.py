"""The STT service (speechmesh.stt.v1.SpeechToText).

The contract is in protos/speechmesh/stt/v1; no server yet.
"""
