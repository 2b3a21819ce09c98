"""The IndexTTS-2 service (speechmesh.indextts.v1.IndexTTS).

The contract is in protos/speechmesh/indextts/v1; no server yet.
"""
