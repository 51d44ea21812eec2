"""Generated gRPC stubs of the fleetnas.agent.v1 contract (scripts/gen_stubs.py)."""
