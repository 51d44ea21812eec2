"""Talking to the fleet: the agent client (the host's only gRPC user), device registry and dispatch."""
