"""fleetnas host: the controller (search, super-networks, export, fleet dispatch, reports).

Talks to agents only through the fleetnas.agent.v1 contract (fleetnas.host.fleet.client is its gRPC client;
.hub and .tunnel serve the agents that dial in).
"""
