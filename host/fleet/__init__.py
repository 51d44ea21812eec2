"""Talking to the fleet.

contract.py   the seam: records for the agent contract (RuntimeConfig, TimingConfig, DeviceInfo, MeasureResult, ...)
client.py     AgentClient, the host's gRPC client; agent error statuses come back as typed errors
hub.py        where dial-in agents connect (`--listen`); tunnel.py: the grpc.Channel AgentClient uses over their
              stream; dial_in.py: the devices it serves; last_seen.py: when each was last connected
devices.py    the devices file and the registry of devices by class (local.py: `--devices local`)
formats.py    which model format a fleet loads with a runtime, as its devices report it
dispatcher.py the dispatch loop: per-class queues (jobs.py), one worker per device, retry and suspect policy
              (health.py), crash recovery of in-flight candidates (recovery.py)
measurements.py  the Measurement record and the cross-run measurement cache
"""
