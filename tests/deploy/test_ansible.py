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
    # Four boards, one dialling out; rpi5-03 was not provisioned (no registered install result): it is not listed.
    (tmp_path / "inventory.yml").write_text(
        "all:\n  hosts:\n    localhost: {ansible_connection: local}\n"
        "fleetnas_agents:\n  children:\n    rpi5:\n      vars: {fleetnas_class: rpi5}\n      hosts:\n"
        "        rpi5-01: {ansible_host: rpi5-01.local, fleetnas_install: {rc: 0}}\n"
        "        rpi5-02: {ansible_host: 192.0.2.12, fleetnas_port: 50052, fleetnas_install: {rc: 0}}\n"
        "        rpi5-03: {ansible_host: rpi5-03.local}\n"
        "        rpi5-04: {fleetnas_connect: 'nas-host.example.org:50052', fleetnas_install: {rc: 0}}\n"
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
        "rpi5-04": ("dial-in", "rpi5", tokens / "rpi5-04.token"),   # behind NAT: it dials the host's hub
    }
    assert (tmp_path / "devices.toml").stat().st_mode & 0o077 == 0, "devices.toml names token files: keep it 0600"


@pytest.mark.slow
def test_playbook_builds_a_wheel_of_the_checkout_and_provisions_a_local_board(tmp_path):
    """The whole playbook against this machine as the board, over a local connection: the role builds a wheel of the
    checkout on the controller (the default source), stages it with install.sh, which installs with --prefix (no
    system changes: no user, unit or udev rule), fetches the token and writes devices.toml. About a minute."""
    from fleetnas.host.fleet.devices import load_devices
    prefix = tmp_path / "board"
    (tmp_path / "inventory.yml").write_text(
        "all:\n  hosts:\n    localhost: {ansible_connection: local}\n"
        "fleetnas_agents:\n  hosts:\n    board-01:\n"
        "      ansible_connection: local\n      ansible_host: 127.0.0.1\n      fleetnas_class: cpu\n"
        "      fleetnas_litert: 'no'\n      fleetnas_listen: 127.0.0.1:0\n"
        f"      fleetnas_staging_dir: {tmp_path / 'staging'}\n      fleetnas_conf_dir: {prefix / 'etc'}\n"
        f"      fleetnas_install_args: [--prefix, {prefix}]\n")
    proc = ansible("-i", "inventory.yml", str(ANSIBLE / "playbook.yml"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert (tmp_path / "staging" / "fleetnas-0.1.0-py3-none-any.whl").is_file() or \
        list((tmp_path / "staging").glob("fleetnas-*.whl")), "the role staged no wheel"
    token = tmp_path / "fleetnas-tokens" / "board-01.token"
    assert token.read_text() == (prefix / "etc" / "token").read_text()
    selftest = subprocess.run([str(prefix / "venv" / "bin" / "fleetnas-agent"), "selftest"], capture_output=True,
                              text=True, timeout=300)
    assert selftest.returncode == 0, selftest.stdout + selftest.stderr
    [device] = load_devices(tmp_path / "devices.toml")
    assert (device.name, device.device_class, device.token_file) == ("board-01", "cpu", token)
