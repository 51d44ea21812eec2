"""The Ansible provisioning: the playbook parses, and the devices.toml it writes is one fleetnas reads back.

Runs the real ansible-playbook (Debian's ansible-core) for the controller-side play; the board-side play runs
install.sh over ssh and is covered by the chroot end-to-end test of install.sh itself. Skipped without ansible.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ANSIBLE = Path(__file__).resolve().parents[2] / "deploy" / "ansible"

pytestmark = pytest.mark.skipif(shutil.which("ansible-playbook") is None,
                                reason="ansible-playbook not installed (apt-get install ansible-core)")


def ansible(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(cwd), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(cwd / ".ansible-tmp"), "LANG": "C.UTF-8"}
    return subprocess.run(["ansible-playbook", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=120)


def test_playbook_and_example_inventory_pass_syntax_check(tmp_path):
    proc = ansible("--syntax-check", "-i", str(ANSIBLE / "inventory.example.yml"), str(ANSIBLE / "playbook.yml"),
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_devices_file_lists_provisioned_boards_and_fleetnas_reads_it(tmp_path):
    from fleetnas.host.fleet.devices import load_devices
    # Three boards; rpi5-03 was not provisioned (no registered install result), so it must not be listed.
    (tmp_path / "inventory.yml").write_text(
        "all:\n  hosts:\n    localhost: {ansible_connection: local}\n"
        "fleetnas_agents:\n  children:\n    rpi5:\n      vars: {fleetnas_class: rpi5}\n      hosts:\n"
        "        rpi5-01: {ansible_host: rpi5-01.local, fleetnas_install: {rc: 0}}\n"
        "        rpi5-02: {ansible_host: 192.0.2.12, fleetnas_port: 50052, fleetnas_install: {rc: 0}}\n"
        "        rpi5-03: {ansible_host: rpi5-03.local}\n"
        "    orin_nano:\n      vars: {fleetnas_class: orin-nano}\n      hosts:\n"
        "        orin-01: {ansible_host: orin-01.local, fleetnas_install: {rc: 0}}\n")
    proc = ansible("-i", "inventory.yml", str(ANSIBLE / "playbook.yml"), "--limit", "localhost", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    registry = load_devices(tmp_path / "devices.toml")
    got = {d.name: (d.address, d.device_class, d.token_file) for d in registry}
    tokens = tmp_path / "fleetnas-tokens"
    assert got == {
        "orin-01": ("orin-01.local:50051", "orin-nano", tokens / "orin-01.token"),
        "rpi5-01": ("rpi5-01.local:50051", "rpi5", tokens / "rpi5-01.token"),
        "rpi5-02": ("192.0.2.12:50052", "rpi5", tokens / "rpi5-02.token"),
    }
    assert (tmp_path / "devices.toml").stat().st_mode & 0o077 == 0, "devices.toml names token files: keep it 0600"
