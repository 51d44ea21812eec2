"""Super-networks: the only torch users on the host. See base.py for the protocol and README.md for the built-ins."""
from fleetnas.host.supernets.base import SuperNet, get_supernet, list_supernets

__all__ = ["SuperNet", "get_supernet", "list_supernets"]
