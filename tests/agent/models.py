"""Tiny models for the agent's tests, benchmarks and the fuzz test: plain functions, no fixtures, all seeded.

- ``make_onnx_model(path, cost="small", dynamic_batch=False, seed=0)``: an MLP chain built with ``onnx.helper``
  (independent of the agent's hand-written encoder in fleetnas.agent.measure.reference_model, which the tests cross-check).
- ``make_tflite_model(path, cost="small", dynamic_batch=False, seed=0)``: the same MLP as a .tflite flatbuffer, built
  with the schema ai-edge-litert ships (no TensorFlow).
- ``make_onnx_all_dtypes_model(path)``: inputs of float32 (dynamic batch), float16, int64, int32, uint8, bool and
  string, to prove every dtype gets generated inputs.
- ``make_onnx_run_failure_model(path)``: loads fine, fails in the first run (a Reshape the dynamic dim cannot fit).
- ``make_onnx_load_failure_model(path)``: a well-formed protobuf naming an operator no runtime has.
- ``make_onnx_huge_alloc_model(path)``: asks the runtime for a 16 TiB tensor (its allocator refuses: OOM).

Costs are (rows, width, depth) of ``[rows, width] @ [width, width]`` x depth; rough single-thread medians on a 2-core
x86 VM: tiny ~0.01 ms, small ~0.03 ms, medium ~0.3 ms, large ~4 ms, xlarge ~50 ms.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

import numpy as np

COSTS: Dict[str, Tuple[int, int, int]] = {
    "tiny": (1, 16, 1),
    "small": (1, 128, 2),
    "medium": (8, 256, 4),
    "large": (32, 512, 8),
    "xlarge": (128, 1024, 10),
}


def cost_dims(cost: str) -> Tuple[int, int, int]:
    try:
        return COSTS[cost]
    except KeyError:
        raise ValueError(f"unknown cost {cost!r}: use one of {', '.join(COSTS)}") from None


def make_onnx_model(path: Path, cost: str = "small", dynamic_batch: bool = False, seed: int = 0,
                    opset: int = 13) -> Path:
    from onnx import TensorProto, helper, numpy_helper, save

    from fleetnas.agent.measure.reference_model import reference_weights

    rows, width, depth = cost_dims(cost)
    batch = "batch" if dynamic_batch else rows
    nodes, inits = [], []
    current = "x"
    for i, (w, b) in enumerate(reference_weights(width, depth, seed)):
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = "y" if i == depth - 1 else f"h{i}"
        nodes += [helper.make_node("MatMul", [current, f"w{i}"], [f"mm{i}"]),
                  helper.make_node("Add", [f"mm{i}", f"b{i}"], [f"a{i}"]),
                  helper.make_node("Relu", [f"a{i}"], [out])]
        current = out
    graph = helper.make_graph(nodes, f"mlp_{cost}",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, width])], inits)
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8), path, save)


def make_tflite_model(path: Path, cost: str = "small", dynamic_batch: bool = False, seed: int = 0) -> Path:
    from fleetnas.agent.measure.reference_model import build_tflite_bytes

    rows, width, depth = cost_dims(cost)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build_tflite_bytes(rows, width, depth, seed, dynamic_rows=dynamic_batch))
    return path


def make_onnx_all_dtypes_model(path: Path) -> Path:
    from onnx import TensorProto, helper, save

    t = TensorProto
    inputs = [helper.make_tensor_value_info("f32", t.FLOAT, ["n", 4]),
              helper.make_tensor_value_info("f16", t.FLOAT16, [1, 4]),
              helper.make_tensor_value_info("i64", t.INT64, [1, 4]),
              helper.make_tensor_value_info("i32", t.INT32, [1, 4]),
              helper.make_tensor_value_info("u8", t.UINT8, [1, 4]),
              helper.make_tensor_value_info("flag", t.BOOL, [1, 4]),
              helper.make_tensor_value_info("text", t.STRING, [1, 2])]
    nodes = [helper.make_node("Cast", ["f16"], ["f16f"], to=t.FLOAT),
             helper.make_node("Cast", ["i64"], ["i64f"], to=t.FLOAT),
             helper.make_node("Cast", ["i32"], ["i32f"], to=t.FLOAT),
             helper.make_node("Cast", ["u8"], ["u8f"], to=t.FLOAT),
             helper.make_node("Cast", ["flag"], ["flagf"], to=t.FLOAT),
             helper.make_node("Sum", ["f32", "f16f", "i64f", "i32f", "u8f", "flagf"], ["y"]),
             helper.make_node("Identity", ["text"], ["text_out"])]
    outputs = [helper.make_tensor_value_info("y", t.FLOAT, ["n", 4]),
               helper.make_tensor_value_info("text_out", t.STRING, [1, 2])]
    graph = helper.make_graph(nodes, "all_dtypes", inputs, outputs)
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path, save)


def make_onnx_run_failure_model(path: Path) -> Path:
    from onnx import TensorProto, helper, numpy_helper, save

    shape = numpy_helper.from_array(np.array([3], dtype=np.int64), "shape")
    graph = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"])], "reshape_fails",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])], [shape])
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path, save)


def make_onnx_load_failure_model(path: Path) -> Path:
    from onnx import TensorProto, helper, save

    graph = helper.make_graph([helper.make_node("NoSuchOperator", ["x"], ["y"], domain="fleetnas.test")], "bad_op",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 13),
                                                                 helper.make_opsetid("fleetnas.test", 1)])
    return _save(model, path, save)


def _save(model, path: Path, save) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save(model, str(path))
    return path


def make_onnx_huge_alloc_model(path: Path, elements: int = 1 << 42) -> Path:
    from onnx import TensorProto, helper, numpy_helper, save

    shape = numpy_helper.from_array(np.array([elements], dtype=np.int64), "shape")
    fill = numpy_helper.from_array(np.array([1.0], dtype=np.float32), "value")
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["big"], value=fill),
             helper.make_node("Add", ["big", "x"], ["y"])]
    graph = helper.make_graph(nodes, "huge_alloc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [elements])], [shape])
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path, save)
