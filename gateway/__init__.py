"""The gateway (front door, routing, orchestrator).

The contract is in protos/speechmesh/orchestrator/v1; no server yet.
"""
