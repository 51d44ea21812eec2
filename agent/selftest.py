"""`fleetnas-agent selftest`: the whole measurement path (store -> queue -> worker) on a built-in reference model,
once per installed runtime. Exit 0 when every installed runtime measured it, 1 otherwise."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from fleetnas.agent import runtimes
from fleetnas.agent.app import make_service
from fleetnas.agent.measure.reference_model import BUILDERS, write_reference_model
from fleetnas.agent.measure.service import describe_result
from fleetnas.agent.records import Outcome, RuntimeOptions, TimingConfig
from fleetnas.agent.store.model_store import ModelStore

# Short but methodical: enough to prove every phase runs, quick enough for an install check.
SELFTEST_TIMING = TimingConfig(warmup_runs=5, warmup_s=0.3, blocks=3, min_runs_per_block=20, min_block_s=0.2,
                               timeout_s=120.0)


def run_selftest(workdir: Path, as_json: bool = False) -> int:
    service = make_service(ModelStore(workdir / "store", quota_bytes=64 * 2**20), workdir)
    report, failed = [], False
    for info in runtimes.runtime_infos():
        entry = {"runtime": info.name, "available": info.available, "version": info.version}
        if not info.available:
            entry["message"] = info.message
            report.append(entry)
            continue
        fmt = next((f for f in runtimes.get(info.name).model_formats if f in BUILDERS), None)
        if fmt is None:  # a plug-in runtime for a format the agent cannot build a reference model in
            fmts = runtimes.get(info.name).model_formats
            entry["message"] = (f"no built-in reference model in {', '.join(fmts)}; measure one exported on the "
                                f"host instead (fleetnas export --format {fmts[0]} ..., then fleetnas measure)")
            report.append(entry)
            continue
        path = write_reference_model(workdir / "models", fmt)
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        upload = service.begin_upload(sha, len(data), fmt, path.name)
        upload.write(data)
        upload.commit()
        result = service.measure(sha, info.name, RuntimeOptions(), SELFTEST_TIMING)
        failed |= result.outcome not in (Outcome.OK, Outcome.UNSTABLE)  # UNSTABLE: measured, but flagged
        entry.update(outcome=result.outcome.value, summary=describe_result(result), detail=result.message,
                     median_ms=result.overall.median_ms if result.overall else None,
                     threads=result.config.intra_op_threads if result.config else None,
                     peak_rss_bytes=result.peak_rss_bytes, run_wall_ms=round(result.run_wall_ms, 1))
        report.append(entry)
    if not any(e["available"] for e in report):
        failed = True
    if as_json:
        print(json.dumps({"ok": not failed, "runtimes": report}, indent=2))
    else:
        for e in report:
            if not e["available"]:
                print(f"{e['runtime']:12s} not installed: {e['message']}")
            elif "summary" not in e:
                print(f"{e['runtime']:12s} {e['version']}: skipped, {e['message']}")
            else:
                median = f"median {e['median_ms']:.3f} ms" if e["median_ms"] is not None else "no median"
                detail = f" ({e['detail']})" if e["detail"] else ""
                print(f"{e['runtime']:12s} {e['version']}: {median}, {e['outcome']}{detail} "
                      f"[{e['threads']} thread(s), worker {e['run_wall_ms']:.0f} ms]")
        print("selftest passed" if not failed else "selftest FAILED")
    return 1 if failed else 0


__all__ = ["run_selftest"]
