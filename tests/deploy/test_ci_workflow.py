"""The example self-hosted HIL workflow: valid YAML whose steps name files and commands that exist."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "deploy" / "ci" / "hil-workflow.yml"


def steps():
    yaml = pytest.importorskip("yaml")
    data = yaml.safe_load(WORKFLOW.read_text())
    for job in data["jobs"].values():
        yield from job["steps"]


def test_jobs_run_on_the_boards_runner_one_at_a_time():
    yaml = pytest.importorskip("yaml")
    data = yaml.safe_load(WORKFLOW.read_text())
    assert data["concurrency"]["cancel-in-progress"] is False
    for job in data["jobs"].values():
        assert "self-hosted" in job["runs-on"] and job["timeout-minutes"] <= 60


def test_every_repository_path_in_the_steps_exists():
    paths = set()
    for step in steps():
        paths |= set(re.findall(r"\b((?:deploy|tests)/[\w./-]+)", step.get("run", "")))
    assert {"deploy/ci/chroot-install-test.sh", "deploy/ansible/playbook.yml", "tests/hil"} <= paths
    for path in paths:
        assert (REPO / path).exists(), path


def test_fleetnas_commands_in_the_steps_parse():
    from fleetnas.host.cli import build_parser
    found = 0
    for step in steps():
        for line in step.get("run", "").splitlines():
            if ".venv/bin/fleetnas " in line:
                argv = shlex.split(line.split(".venv/bin/fleetnas ", 1)[1].replace('"$FLEETNAS_DEVICES"', "d.toml"))
                args = build_parser().parse_args(argv)
                assert args.command == argv[0]
                found += 1
    assert found >= 1
