"""`fleetnas search --ray`: sub-networks extracted, exported and evaluated on a real local Ray cluster, in a
loopback-only network namespace (fixture ``isolated``)."""
from __future__ import annotations

import json
import shlex
import sys

import pytest


QUICK = ["--warmup-runs", "1", "--warmup-s", "0.01", "--blocks", "2", "--min-runs", "3", "--min-block-s", "0.02"]


def search_args(out, cache, accuracy_cache, budget=4, tactic=("--tactic", "random")):
    return ["search", "--supernet", "tiny", "--devices", "local", "--budget", str(budget), *tactic, "--seed", "3",
            "--out", str(out), "--measurement-cache", str(cache), "--accuracy-cache", str(accuracy_cache),
            "--no-progress", "--json", *QUICK]


def fleetnas(args) -> str:
    return " ".join(shlex.quote(a) for a in [sys.executable, "-m", "fleetnas.host.cli", *map(str, args)])


def report(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("{"):])


def front(data: dict):
    return {c: sorted((json.dumps(p["config"], sort_keys=True), p["accuracy"], p["latency_ms"]) for p in points)
            for c, points in data["fronts"].items()}


def test_ray_front_equals_the_in_process_front(isolated, tmp_path, capsys):
    """Same seed, same measurement cache: the Ray run exports byte-identical models (every measurement is a cache
    hit) and evaluates the same accuracies (its own accuracy cache), so the fronts are equal."""
    from fleetnas.host.cli import main
    cache = tmp_path / "measurements.sqlite"
    assert main(search_args(tmp_path / "local", cache, tmp_path / "acc-local.sqlite")) == 0
    local = report(capsys.readouterr().out)
    result = isolated(fleetnas(search_args(tmp_path / "ray", cache, tmp_path / "acc-ray.sqlite") + ["--ray"]))
    assert result.returncode == 0, result.stderr[-3000:]
    remote = report(result.stdout)
    assert local["measurements"] == 4 and remote["cache_hits"] == 4 and remote["measurements"] == 0
    assert front(remote) == front(local) and front(local)


def test_a_worker_killed_mid_run_loses_nothing(isolated, tmp_path):
    """A Ray worker process killed while it works: Ray restarts it, its sub-network runs again, the search ends
    with every candidate measured."""
    out = tmp_path / "run"
    script = f"""
{fleetnas(search_args(out, tmp_path / "m.sqlite", tmp_path / "a.sqlite") + ["--ray"])} > {tmp_path}/out.json &
search=$!
for i in $(seq 1 1200); do
  pid=$(pgrep -f 'ray::_SubnetActor.run' | head -n 1)
  if [ -n "$pid" ]; then kill -9 "$pid" && echo killed > {tmp_path}/killed; break; fi
  sleep 0.05
done
wait $search
"""
    result = isolated(script)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "killed").is_file(), "no worker was seen at work"
    data = report((tmp_path / "out.json").read_text())
    assert data["candidates_evaluated"] == 4 and data["measurements"] == 4
    assert sum(data["failed"].values()) == 0


@pytest.mark.slow
def test_a_sub_network_failing_on_a_worker_stops_the_run_in_one_line(isolated, tmp_path):
    """The worker's own error reaches the user (tiny takes no --data: its evaluator refuses one on the worker)."""
    args = search_args(tmp_path / "run", tmp_path / "m.sqlite", tmp_path / "a.sqlite")
    args += ["--ray", "--data", "json:loads"]
    result = isolated(fleetnas(args))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "failed on the Ray cluster: UsageError: the tiny super-network evaluates on its " \
        "built-in digits split" in error[0], result.stderr[-3000:]


@pytest.mark.slow
def test_two_node_cluster(isolated, tmp_path):
    """`ray start --head` plus a worker node, and a joint search given the head's address."""
    ray = f"{shlex.quote(str(sys.executable))} -m ray.scripts.scripts"
    common = "--num-cpus=1 --disable-usage-stats --object-store-memory=100000000"
    joint = search_args(tmp_path / "run", tmp_path / "m.sqlite", tmp_path / "a.sqlite", budget=7,
                        tactic=("--fleet-mode", "joint", "--tactic-option", "n_init=6")) + ["--ray", "127.0.0.1:6380"]
    script = f"""
{ray} start --head --port=6380 --include-dashboard=false {common} >/dev/null &&
{ray} start --address=127.0.0.1:6380 {common} >/dev/null &&
{fleetnas(joint)}
status=$?
{ray} stop --force >/dev/null 2>&1
exit $status
"""
    result = isolated(script, timeout_s=400)
    assert result.returncode == 0, result.stderr[-3000:]
    data = report(result.stdout)
    assert data["candidates_evaluated"] == 7 and data["measurements"] == 7


def test_without_ray_the_error_says_what_to_install_before_any_work(monkeypatch, tmp_path, capsys):
    from fleetnas.host.cli import main
    monkeypatch.setitem(sys.modules, "ray", None)    # as an install without the ray extra
    code = main(["search", "--supernet", "tiny", "--devices", "local", "--budget", "2", "--out", str(tmp_path / "r"),
                 "--ray"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'fleetnas[ray]'" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_only_the_ray_module_imports_ray():
    from import_scan import all_modules, imports
    users = {name for name, path in all_modules().items()
             for target, _line, _inside in imports(name, path, type_checking=True) if target.split(".")[0] == "ray"}
    assert users == {"fleetnas.host.scale.ray_executor"}


def test_models_from_a_worker_land_in_the_export_cache_checked(tmp_path):
    import hashlib
    from fleetnas.host.errors import FleetnasError
    from fleetnas.host.run.host_work import SubnetResult, write_model_files
    sha = hashlib.sha256(b"model").hexdigest()
    result = SubnetResult("k", 0.5, "m.onnx", "/worker/m.onnx", sha, 5, model_bytes=b"model", meta_bytes=b"{}")
    assert write_model_files(result, tmp_path).read_bytes() == b"model"
    assert (tmp_path / "m.onnx.json").read_bytes() == b"{}"
    damaged = SubnetResult("k2", 0.5, "d.onnx", "/worker/d.onnx", sha, 5, model_bytes=b"modeL")
    with pytest.raises(FleetnasError, match="damaged"):
        write_model_files(damaged, tmp_path)
    assert not (tmp_path / "d.onnx").exists()


def test_a_local_cluster_that_does_not_come_up_stops_the_run_in_one_line(isolated, tmp_path):
    """Ray given no time to start its control process: the user is told the cluster on this machine did not
    start and where Ray's logs are, not to give a head node's address."""
    args = search_args(tmp_path / "run", tmp_path / "m.sqlite", tmp_path / "a.sqlite") + ["--ray"]
    result = isolated("RAY_gcs_server_port_wait_time_s=0 " + fleetnas(args))
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(error) == 1 and "could not start a Ray cluster on this machine" in error[0] \
        and "RAY_TMPDIR" in error[0] and "head node" not in error[0], error
