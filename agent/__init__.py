"""fleetnas agent: the service on each board that receives, runs and times exported models.

    cli, app, config, selftest   the commands, the one place that assembles an agent, its config file
    records, errors, plugins     frozen records (MeasureJob, MeasureResult...), the exception tree, the plug-in registry
    private_files                folders 0700 and files 0600 whatever the umask (store, device id, reference model)
    rpc/       server (health, reflection, TLS, graceful stop), auth (token), servicer (the error table),
               convert (proto <-> records, the bounds of every numeric request field), admission (call slots,
               upload idle timeout, thread wait)
    measure/   service (queue), hygiene, worker (parent) + worker_child (process) + worker_spawn, timing, energy,
               throttle, emulate, reference_model
    board/     sysfs, device_state, fingerprint, device_info
    power/     the PowerMeter families and their detection (registry group fleetnas.power_meters)
    runtimes/  the Runtime protocol, onnxruntime, LiteRT (registry group fleetnas.runtimes)
    store/     formats (the one format table and upload checks), model_store (content-addressed cache)

Never imports torch, pymoo or fleetnas.host (tests/agent/test_agent_imports.py) and has no import cycle
(tests/test_import_graph.py).
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fleetnas")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
