"""deploy/install.sh for real, without root: `--prefix DIR` installs the agent from this checkout into a fresh venv.

This is the newcomer's default path (a wheel built from the checkout, then the agent's base dependencies from the
package index or pip's cache: grpcio, protobuf, numpy, onnxruntime), then the offline-board path (a wheel built with
`pip wheel . --no-deps`, the dependencies fetched with `pip download`, `install.sh --wheel ... --find-links DIR
--no-index`). The installed `fleetnas-agent` must answer `info --json` and pass `selftest`. About a minute; LiteRT is
left out (`--litert no`) to keep it short.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "deploy" / "install.sh"


def install(*args, timeout=600):
    return subprocess.run(["bash", str(INSTALL), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd="/")


def agent(prefix: Path, *args):
    return subprocess.run([str(prefix / "venv" / "bin" / "fleetnas-agent"), *args], capture_output=True, text=True,
                          timeout=300, cwd="/")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """One install from the checkout (the default source), shared by the tests below."""
    prefix = tmp_path_factory.mktemp("agent-prefix") / "fleetnas"
    had_build_dir = (REPO / "build").exists()
    proc = install("--prefix", prefix, "--litert", "no", "--listen", "127.0.0.1:0")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    if not had_build_dir:
        assert not (REPO / "build").exists(), "building the wheel wrote build/ into the checkout"
    return prefix, proc


def test_default_install_builds_the_checkout_and_the_agent_works(installed):
    prefix, proc = installed
    assert f"building a wheel of {REPO}" in proc.stdout
    assert "selftest passed" in proc.stdout
    assert f"{prefix}/venv/bin/fleetnas-agent serve --listen 127.0.0.1:0 --token-file {prefix}/etc/token" \
        in proc.stdout, proc.stdout
    token = (prefix / "etc" / "token").read_text().strip()
    assert len(token) >= 40
    assert (prefix / "etc" / "token").stat().st_mode & 0o077 == 0o040  # owner rw, group r, others nothing

    info = agent(prefix, "info", "--json", "--cache-dir", str(prefix / "var" / "cache"))
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert data["agent_version"] and data["fingerprint"]["machine"]
    assert any(rt["name"] == "onnxruntime" and rt.get("available") for rt in data["runtimes"]), data["runtimes"]

    selftest = agent(prefix, "selftest")
    assert selftest.returncode == 0, selftest.stdout + selftest.stderr
    assert "onnxruntime" in selftest.stdout and "selftest passed" in selftest.stdout

    pip_list = subprocess.run([str(prefix / "venv" / "bin" / "python"), "-m", "pip", "list", "--format=json"],
                              capture_output=True, text=True, timeout=120)
    names = {p["name"].lower() for p in json.loads(pip_list.stdout)}
    assert {"fleetnas", "grpcio", "protobuf", "numpy", "onnxruntime"} <= names
    assert "torch" not in names, "the agent's venv must not pull torch"


def test_offline_wheels_upgrade_in_place_then_uninstall(installed, tmp_path):
    prefix, _ = installed
    token = (prefix / "etc" / "token").read_text()
    # What deploy/README.md tells a user with an offline board to do on the host (here for this machine's platform).
    dist, wheels = tmp_path / "dist", tmp_path / "wheels"
    had_build_dir = (REPO / "build").exists()
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(REPO)],
                           capture_output=True, text=True, timeout=600)
    if not had_build_dir:
        shutil.rmtree(REPO / "build", ignore_errors=True)  # pip builds a source folder in place (build/ is ignored)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next(dist.glob("fleetnas-*.whl"))
    fetched = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "-d",
                              str(wheels), str(wheel)], capture_output=True, text=True, timeout=600)
    assert fetched.returncode == 0, fetched.stderr[-3000:]

    proc = install("--prefix", prefix, "--wheel", wheel, "--find-links", wheels, "--no-index", "--litert", "no")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "building a wheel" not in proc.stdout and "selftest passed" in proc.stdout
    assert (prefix / "etc" / "token").read_text() == token, "an upgrade must keep the token"
    assert "FLEETNAS_LISTEN=127.0.0.1:0" in (prefix / "etc" / "agent.env").read_text(), "settings kept"

    gone = install("--prefix", prefix, "--uninstall", "--purge")
    assert gone.returncode == 0, gone.stderr
    assert not prefix.exists()


def test_outside_a_checkout_it_asks_for_a_wheel(tmp_path):
    lone = tmp_path / "install.sh"
    shutil.copy(INSTALL, lone)
    proc = subprocess.run(["bash", str(lone), "--prefix", str(tmp_path / "p")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "not inside a fleetnas checkout" in proc.stderr
    assert "--wheel FILE" in proc.stderr and "Traceback" not in proc.stderr
