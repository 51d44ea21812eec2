"""Helpers for the fleet tests: ONNX models that carry a configuration in metadata_props, emulation tables, agents.

``config_model(dir, config)`` builds a small MatMul chain with ``onnx.helper`` whose size follows ``config["width"]``
and whose ``metadata_props`` hold ``fleetnas.supernet`` / ``fleetnas.config`` exactly as fleetnas.host.export writes
them, so both a real agent (onnxruntime) and an emulating agent can measure it.
"""
from __future__ import annotations

import contextlib
import csv
import json
from pathlib import Path
from typing import Dict, Iterator, List, Sequence

import numpy as np

WIDTHS = (8, 16, 32, 64)


def config_key(config: Dict[str, int]) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def config_model(directory: Path, config: Dict[str, int], supernet: str = "toy") -> Path:
    from onnx import TensorProto, helper, numpy_helper, save
    width, depth = int(config["width"]), int(config.get("depth", 1))
    rng = np.random.default_rng(width * 100 + depth)
    nodes, inits, last = [], [], "x"
    for i in range(depth):
        w = numpy_helper.from_array(rng.standard_normal((width, width)).astype(np.float32), f"w{i}")
        inits.append(w)
        nodes.append(helper.make_node("MatMul", [last, f"w{i}"], [f"h{i}"]))
        last = f"h{i}"
    nodes.append(helper.make_node("Identity", [last], ["y"]))
    graph = helper.make_graph(nodes, "toy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, width])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    for key, value in (("fleetnas.supernet", supernet), ("fleetnas.config", config_key(config))):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    path = Path(directory) / f"{supernet}-w{width}-d{depth}.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    save(model, str(path))
    return path


def write_table(path: Path, rows: Sequence[Dict[str, object]]) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def toy_table(path: Path) -> Path:
    """latency_ms = width * depth / 100 (ms), energy = 2 mJ per ms."""
    rows = [{"width": w, "depth": d, "lat_ms": w * d / 100, "energy_mj": 2 * w * d / 100}
            for w in WIDTHS for d in (1, 2)]
    return write_table(path, rows)


@contextlib.contextmanager
def emulated_agents(tmp_path: Path, n: int, time_scale: float = 0.0) -> Iterator[List[object]]:
    """``n`` in-process agents on 127.0.0.1:0 that answer from the toy table."""
    from agent_harness import running_agent

    from fleetnas.agent.measure.emulate import EmulationTable, make_emulated_measure_fn
    table = EmulationTable.from_csv(toy_table(tmp_path / "table.csv"), ["width", "depth"], "lat_ms", "energy_mj")
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(running_agent(tmp_path / f"agent{i}",
                                                 measure_fn=make_emulated_measure_fn(table, time_scale)))
               for i in range(n)]


def devices_toml(agents: Sequence[object], device_class: str = "cpu") -> str:
    return "".join(f'[[device]]\nname = "dev{i}"\naddress = "{a.address}"\nclass = "{device_class}"\n\n'
                   for i, a in enumerate(agents))
