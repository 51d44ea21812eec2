"""Test hosts on one machine: one Linux network namespace per "board", each with its own address, reached from the
host namespace over a veth pair. Needs root (CAP_NET_ADMIN) and iproute2; ``netns_available()`` says why not.

    with NetnsLab(["a", "b"]) as lab:
        lab.hosts["a"].address          # "10.213.<slot>.2", only ever inside a namespace this lab made
        lab.cut("b")                    # pull b's cable: its packets are dropped from now on
        lab.restore("b")

Addresses: every namespace gets 10.213.<slot>.<2+i>/32 (slot from the pid, so parallel runs do not collide). The host
namespace gets no 10.x address at all: a /32 route per host points into its veth, and a ``prohibit`` route for the
lab's whole /24 makes sure that traffic for a cut (or torn-down) host fails here instead of leaving the machine.
A cut sets the namespace's end of the veth down: the host's end stays up, so the kernel keeps routing into it and
the packets are dropped (a pulled cable, not a refused connection).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

SUBNET_PREFIX = "10.213"


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def netns_available() -> Optional[str]:
    """None when namespaces can be made here, else the reason (for pytest.skip)."""
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN)"
    probe = f"fnhil-probe-{os.getpid()}"
    made = run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace here: {made.stderr.strip()}"
    run("ip", "netns", "del", probe, check=False)
    return None


@dataclass
class NetnsHost:
    name: str            # short label, e.g. "a"
    netns: str           # namespace name
    address: str         # its IPv4 address (inside the namespace only)
    host_if: str         # veth end in the host namespace
    ns_if: str           # veth end inside the namespace

    def prefix(self) -> List[str]:
        """Command prefix that runs a program inside this host."""
        return ["ip", "netns", "exec", self.netns]


class NetnsLab:
    def __init__(self, names: Sequence[str], slot: Optional[int] = None) -> None:
        if not 0 < len(names) <= 50:
            raise ValueError("a lab has 1 to 50 hosts")
        self.slot = slot if slot is not None else os.getpid() % 250 + 1
        self.subnet = f"{SUBNET_PREFIX}.{self.slot}.0/24"
        tag = f"{self.slot:03d}"
        self.hosts: Dict[str, NetnsHost] = {}
        for i, name in enumerate(names):
            self.hosts[name] = NetnsHost(name=name, netns=f"fnhil-{tag}-{name}",
                                         address=f"{SUBNET_PREFIX}.{self.slot}.{2 + i}",
                                         host_if=f"fnh{tag}{i}", ns_if=f"fnn{tag}{i}")
        self._guarded = False

    def __enter__(self) -> "NetnsLab":
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    def up(self) -> None:
        # The guard first: from here on, traffic for this /24 either reaches one of our namespaces or fails here.
        run("ip", "route", "replace", "prohibit", self.subnet)
        self._guarded = True
        for h in self.hosts.values():
            run("ip", "netns", "add", h.netns)
            run("ip", "link", "add", h.host_if, "type", "veth", "peer", "name", h.ns_if, "netns", h.netns)
            run("ip", "-n", h.netns, "link", "set", "lo", "up")
            run("ip", "-n", h.netns, "addr", "add", f"{h.address}/32", "dev", h.ns_if)
            run("ip", "-n", h.netns, "link", "set", h.ns_if, "up")
            # Replies go back to whatever source address the host picked, through the veth (no gateway needed).
            run("ip", "-n", h.netns, "route", "add", "default", "dev", h.ns_if)
            run("ip", "link", "set", h.host_if, "up")
            run("ip", "route", "replace", f"{h.address}/32", "dev", h.host_if)

    def cut(self, name: str) -> None:
        run("ip", "-n", self.hosts[name].netns, "link", "set", self.hosts[name].ns_if, "down")

    def restore(self, name: str) -> None:
        h = self.hosts[name]
        run("ip", "-n", h.netns, "link", "set", h.ns_if, "up")
        run("ip", "-n", h.netns, "route", "replace", "default", "dev", h.ns_if)

    def down(self) -> None:
        for h in self.hosts.values():
            run("ip", "link", "del", h.host_if, check=False)      # takes its peer and the /32 route with it
            run("ip", "netns", "del", h.netns, check=False)
        if self._guarded:
            run("ip", "route", "del", "prohibit", self.subnet, check=False)
            self._guarded = False
