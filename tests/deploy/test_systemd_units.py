"""The systemd units, checked by systemd itself: `systemd-analyze verify` and the offline security score.

systemd-analyze runs with --root on a throw-away tree that holds the units, the host's stock units (targets), and
executables at the paths ExecStart names, so the check covers the files exactly as install.sh installs them.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD_DIR = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
UNITS = sorted(p.name for p in SYSTEMD_DIR.glob("*.service"))
HOST_UNITS = next((p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
                   if (p / "multi-user.target").exists()), None)
MAX_EXPOSURE = 3.0   # systemd's scale: 0 = locked down, 10 = unprotected; "OK" is below 4.5

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None or HOST_UNITS is None,
                                reason="systemd-analyze or the stock systemd units are not available here")


def exec_paths(unit_text: str):
    for line in unit_text.splitlines():
        m = re.match(r"^Exec\w+=[-+@!:]*(/\S+)", line)
        if m:
            yield m.group(1)


def exec_argv(exec_start: str, env: dict) -> list:
    """The agent's arguments of a unit's ExecStart= line, expanded as systemd does (${X}: one word, $X: split)."""
    argv = []
    for word in exec_start.split("=", 1)[1].split()[1:]:
        if word.startswith("${"):
            argv.append(env[word[2:-1]])
        elif word.startswith("$"):
            argv.extend(env[word[1:]].split())
        else:
            argv.append(word)
    return argv


@pytest.fixture
def unit_root(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(HOST_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for name in UNITS:
        text = (SYSTEMD_DIR / name).read_text()
        (root / "etc/systemd/system" / name).write_text(text)
        for exe in exec_paths(text):
            target = root / exe.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("#!/bin/sh\n")
            target.chmod(0o755)
    return root


def analyze(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", f"--root={root}", *args], capture_output=True, text=True,
                          timeout=60, cwd="/")


@pytest.mark.parametrize("unit", UNITS)
def test_unit_verifies_without_a_single_warning(unit_root, unit):
    proc = analyze(unit_root, "verify", unit)
    assert proc.returncode == 0 and not (proc.stdout + proc.stderr).strip(), proc.stdout + proc.stderr


def test_verify_does_catch_a_broken_unit(unit_root):
    # Guards the check above: a misspelt hardening key must show up, or "no warnings" would prove nothing.
    good = (unit_root / "etc/systemd/system/fleetnas-agent.service").read_text()
    (unit_root / "etc/systemd/system/broken.service").write_text(
        good.replace("ProtectSystem=strict", "ProtectSystm=strict"))
    proc = analyze(unit_root, "verify", "broken.service")
    assert "Unknown key 'ProtectSystm'" in proc.stdout + proc.stderr


def test_agent_unit_is_hardened(unit_root):
    text = (SYSTEMD_DIR / "fleetnas-agent.service").read_text()
    for directive in ("Restart=always", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                      "User=fleetnas", "CapabilityBoundingSet=\n"):
        assert directive in text, directive
    proc = analyze(unit_root, "security", "--offline=yes", "fleetnas-agent.service")
    m = re.search(r"Overall exposure level for fleetnas-agent\.service: ([\d.]+)", proc.stdout)
    assert m, proc.stdout[-2000:] + proc.stderr
    assert float(m.group(1)) <= MAX_EXPOSURE, f"exposure {m.group(1)} > {MAX_EXPOSURE}:\n{proc.stdout}"


def test_exec_start_flags_are_ones_the_agent_accepts():
    from fleetnas.agent.cli import build_parser
    text = (SYSTEMD_DIR / "fleetnas-agent.service").read_text()
    line = next(l for l in text.splitlines() if l.startswith("ExecStart="))
    env = {"FLEETNAS_LISTEN": "0.0.0.0:50051", "FLEETNAS_CACHE_QUOTA_MB": "2048",
           "FLEETNAS_EXTRA_ARGS": "--tls-cert /etc/fleetnas/tls/agent.crt --tls-key /etc/fleetnas/tls/agent.key"}
    args = build_parser().parse_args(exec_argv(line, env))
    assert args.command == "serve" and args.listen == "0.0.0.0:50051"
    assert str(args.token_file) == "/etc/fleetnas/token" and str(args.tls_key) == "/etc/fleetnas/tls/agent.key"


def test_the_dial_out_unit_runs_connect_with_flags_the_agent_accepts_and_replaces_the_listening_one():
    from fleetnas.agent.cli import build_parser
    text = (SYSTEMD_DIR / "fleetnas-agent-connect.service").read_text()
    assert "Conflicts=fleetnas-agent.service" in text
    assert "Conflicts=fleetnas-agent-connect.service" in (SYSTEMD_DIR / "fleetnas-agent.service").read_text()
    agent_unit = (SYSTEMD_DIR / "fleetnas-agent.service").read_text()
    hardening = [l for l in agent_unit.splitlines() if l.startswith(("Protect", "Restrict", "NoNewPrivileges",
                                                                     "CapabilityBoundingSet", "SystemCall"))]
    assert hardening and all(l in text.splitlines() for l in hardening), "the dial-out unit is hardened alike"
    line = next(l for l in text.splitlines() if l.startswith("ExecStart="))
    env = {"FLEETNAS_CONNECT": "nas-host.example.org:50052", "FLEETNAS_NAME": "rpi5-07",
           "FLEETNAS_CACHE_QUOTA_MB": "2048", "FLEETNAS_CONNECT_ARGS": "--tls-ca /etc/fleetnas/tls/hub-ca.crt"}
    args = build_parser().parse_args(exec_argv(line, env))
    assert args.command == "connect" and args.hub == "nas-host.example.org:50052" and args.name == "rpi5-07"
    assert str(args.token_file) == "/etc/fleetnas/token" and str(args.tls_ca) == "/etc/fleetnas/tls/hub-ca.crt"
