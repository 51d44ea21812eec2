"""The deploy scripts: shellcheck-clean, valid bash, and their argument checks fail with a clear message.

The scripts are run for real (bash, shellcheck); nothing is mocked. Argument errors are reported before the root
check, so these run unprivileged.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SCRIPTS = sorted(DEPLOY.rglob("*.sh"))
INSTALL = DEPLOY / "install.sh"


def test_every_deploy_script_is_found():
    names = {p.relative_to(DEPLOY).as_posix() for p in SCRIPTS}
    assert {"install.sh", "uninstall.sh", "termux/install.sh", "ci/chroot-install-test.sh"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_script_is_shellcheck_clean(script):
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    proc = subprocess.run(["shellcheck", "--external-sources", "--severity=style", script.name],
                          cwd=script.parent, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_script_parses_and_is_executable(script):
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert script.stat().st_mode & 0o111, f"{script} is not executable (git update-index --chmod=+x)"
    assert script.read_text().startswith("#!/"), f"{script} has no shebang"


def run_install(*args):
    return subprocess.run(["bash", str(INSTALL), *args], capture_output=True, text=True, timeout=30)


def test_install_help_lists_every_option_it_parses():
    proc = run_install("--help")
    assert proc.returncode == 0
    parsed = set(re.findall(r"^\s+(--[a-z-]+)\)", INSTALL.read_text(), flags=re.M))
    for option in parsed - {"--help"}:
        assert option in proc.stdout, f"{option} is parsed but not in --help"


@pytest.mark.parametrize("args, expected", [
    (["--listen", "50051"], "--listen must be HOST:PORT"),
    (["--listen", "0.0.0.0:50051; rm -rf /"], "--listen must be HOST:PORT"),
    (["--cache-quota-mb", "-5"], "--cache-quota-mb must be a positive whole number"),
    (["--litert", "maybe"], "--litert must be auto, yes or no"),
    (["--jetson-fixed-clocks", "max"], "--jetson-fixed-clocks takes an nvpmodel mode number"),
    (["--tls-cert", "/nonexistent/agent.crt"], "TLS needs both --tls-cert and --tls-key"),
    (["--tls-cert", "/nonexistent/a.crt", "--tls-key", "/nonexistent/a.key"], "TLS file '/nonexistent/a.crt'"),
    (["--connect", "nas-host"], "--connect must be the host's HOST:PORT"),
    (["--connect", "nas-host:50052", "--name", "rpi 5"], "--name may hold only letters, digits"),
    (["--connect", "nas-host:50052", "--connect-tls-ca", "/nonexistent/ca.pem"], "--connect-tls-ca: '/nonexistent"),
    (["--frobnicate"], "unknown option '--frobnicate'"),
    (["--package"], "--package needs a value"),
    (["--wheel", "fleetnas.tar.gz"], "--wheel takes a .whl file"),
    (["--wheel", "/nonexistent/fleetnas-0.1.0-py3-none-any.whl"], "does not exist or is not readable"),
    (["--wheel", "/nonexistent/a.whl", "--package", "fleetnas"], "--wheel and --package both name what to install"),
    (["--find-links", "/nonexistent/wheels"], "--find-links: '/nonexistent/wheels' is not a directory"),
])
def test_install_rejects_bad_arguments_with_a_clear_message(args, expected):
    proc = run_install(*args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_termux_script_refuses_to_run_outside_termux(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(["bash", str(DEPLOY / "termux" / "install.sh")], capture_output=True, text=True,
                          env=env, timeout=30)
    assert proc.returncode == 2
    assert "Termux" in proc.stderr and "deploy/install.sh" in proc.stderr
