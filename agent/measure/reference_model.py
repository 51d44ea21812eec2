"""Reference models built on the board itself: an MLP chain (MatMul + bias + ReLU) x depth, shape [rows, width].

The agent must not need the ``onnx`` package, so the ONNX file is written directly in protobuf wire format (the five
messages it uses: ModelProto, GraphProto, NodeProto, TensorProto, ValueInfoProto; field numbers from onnx.proto3).
tests/agent/test_runtimes.py checks the bytes with ``onnx.checker`` and runs them against a numpy reference.

The .tflite twin is built with the flatbuffer object API that ai-edge-litert itself ships
(``ai_edge_litert.schema_py_generated`` + ``flatbuffers``): no TensorFlow. Boards with only ``tflite_runtime`` lack that
schema, so there ``build_tflite_bytes`` raises RuntimeUnavailable with the install hint; the ONNX reference is always
available. Both files encode the same weights (drawn from ``seed``), so their outputs agree to float32 rounding.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, List, Tuple

import numpy as np

from fleetnas.agent.errors import RuntimeUnavailable
from fleetnas.agent.private_files import private_dir, write_private
from fleetnas.agent.store.formats import FORMATS

ONNX_OPSET = 13
ONNX_IR_VERSION = 7
_FLOAT = 1  # onnx TensorProto.FLOAT


def reference_weights(width: int, depth: int, seed: int) -> List[Tuple[np.ndarray, np.ndarray]]:
    """(W [width, width] as x @ W, bias [width]) per layer, scaled so activations stay O(1) through the chain."""
    rng = np.random.default_rng(seed)
    scale = np.float32(1.0 / np.sqrt(width))
    return [(rng.standard_normal((width, width)).astype(np.float32) * scale,
             rng.standard_normal(width).astype(np.float32) * np.float32(0.1)) for _ in range(depth)]


def reference_output(x: np.ndarray, width: int, depth: int, seed: int) -> np.ndarray:
    for w, b in reference_weights(width, depth, seed):
        x = np.maximum(x @ w + b, 0.0)
    return x


# --- protobuf wire format: just what ModelProto needs --------------------------------------------------------------
def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 are ten-byte two's complement varints
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint((field << 3) | wire_type)


def _int_field(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(value)


def _bytes_field(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def _str_field(field: int, text: str) -> bytes:
    return _bytes_field(field, text.encode("utf-8"))


def _tensor(name: str, array: np.ndarray) -> bytes:
    # TensorProto: dims=1 (int64, one entry per dim), data_type=2, name=8, raw_data=9 (little-endian).
    body = b"".join(_int_field(1, d) for d in array.shape) + _int_field(2, _FLOAT) + _str_field(8, name)
    return body + _bytes_field(9, np.ascontiguousarray(array, dtype="<f4").tobytes())


def _value_info(name: str, shape: Iterable[int]) -> bytes:
    # ValueInfoProto{name=1, type=2}; TypeProto{tensor_type=1}; Tensor{elem_type=1, shape=2};
    # TensorShapeProto{dim=1}; Dimension{dim_value=1}.
    dims = b"".join(_bytes_field(1, _int_field(1, d)) for d in shape)
    tensor_type = _int_field(1, _FLOAT) + _bytes_field(2, dims)
    return _str_field(1, name) + _bytes_field(2, _bytes_field(1, tensor_type))


def _node(op_type: str, inputs: List[str], outputs: List[str], name: str) -> bytes:
    # NodeProto: input=1, output=2, name=3, op_type=4.
    return (b"".join(_str_field(1, i) for i in inputs) + b"".join(_str_field(2, o) for o in outputs)
            + _str_field(3, name) + _str_field(4, op_type))


def build_onnx_bytes(rows: int = 1, width: int = 64, depth: int = 2, seed: int = 0) -> bytes:
    """A valid ONNX ModelProto (opset 13) for the reference MLP; input "x" [rows, width] -> output "y"."""
    _check_dims(rows, width, depth)
    nodes, inits = [], []
    current = "x"
    for i, (w, b) in enumerate(reference_weights(width, depth, seed)):
        inits += [_tensor(f"w{i}", w), _tensor(f"b{i}", b)]
        out = "y" if i == depth - 1 else f"h{i}"
        nodes += [_node("MatMul", [current, f"w{i}"], [f"mm{i}"], f"matmul{i}"),
                  _node("Add", [f"mm{i}", f"b{i}"], [f"add{i}"], f"add{i}"),
                  _node("Relu", [f"add{i}"], [out], f"relu{i}")]
        current = out
    # GraphProto: node=1, name=2, initializer=5, input=11, output=12.
    graph = (b"".join(_bytes_field(1, n) for n in nodes) + _str_field(2, "fleetnas_reference")
             + b"".join(_bytes_field(5, t) for t in inits)
             + _bytes_field(11, _value_info("x", (rows, width))) + _bytes_field(12, _value_info("y", (rows, width))))
    # ModelProto: ir_version=1, producer_name=2, producer_version=3, graph=7, opset_import=8 {domain=1, version=2}.
    return (_int_field(1, ONNX_IR_VERSION) + _str_field(2, "fleetnas-agent") + _str_field(3, "1")
            + _bytes_field(7, graph) + _bytes_field(8, _str_field(1, "") + _int_field(2, ONNX_OPSET)))


# --- TFLite flatbuffer via the schema LiteRT ships -----------------------------------------------------------------
def build_tflite_bytes(rows: int = 1, width: int = 64, depth: int = 2, seed: int = 0,
                       dynamic_rows: bool = False) -> bytes:
    """The same MLP as FULLY_CONNECTED(+fused ReLU) ops; ``dynamic_rows`` marks dim 0 as -1 in shape_signature."""
    _check_dims(rows, width, depth)
    try:  # lazy: ai-edge-litert is an optional extra, and only the .tflite reference needs it
        import flatbuffers
        from ai_edge_litert import schema_py_generated as tfl
    except ImportError as exc:
        raise RuntimeUnavailable(f"building the .tflite reference needs ai-edge-litert ({exc}); "
                                 "pip install 'fleetnas[litert]'") from exc
    buffers = [tfl.BufferT()]  # buffer 0 is the schema's mandatory empty sentinel
    tensors: List[object] = []

    def add_tensor(name: str, shape: Tuple[int, ...], data: "np.ndarray | None" = None,
                   signature: "Tuple[int, ...] | None" = None) -> int:
        tensor = tfl.TensorT()
        tensor.name, tensor.shape, tensor.type = name, list(shape), tfl.TensorType.FLOAT32
        if signature is not None:
            tensor.shapeSignature = list(signature)
        if data is not None:
            buf = tfl.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data, dtype="<f4").tobytes(), dtype=np.uint8)
            buffers.append(buf)
            tensor.buffer = len(buffers) - 1
        tensors.append(tensor)
        return len(tensors) - 1

    act_signature = (-1, width) if dynamic_rows else None
    current = add_tensor("x", (rows, width), signature=act_signature)
    code = tfl.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = tfl.BuiltinOperator.FULLY_CONNECTED
    operators = []
    for i, (w, b) in enumerate(reference_weights(width, depth, seed)):
        w_idx = add_tensor(f"w{i}", (width, width), data=w.T)  # FULLY_CONNECTED weights are [out, in]
        b_idx = add_tensor(f"b{i}", (width,), data=b)
        out = add_tensor("y" if i == depth - 1 else f"h{i}", (rows, width), signature=act_signature)
        op = tfl.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = 0, [current, w_idx, b_idx], [out]
        op.builtinOptionsType = tfl.BuiltinOptions.FullyConnectedOptions
        op.builtinOptions = tfl.FullyConnectedOptionsT()
        op.builtinOptions.fusedActivationFunction = tfl.ActivationFunctionType.RELU
        operators.append(op)
        current = out
    graph = tfl.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators = tensors, [0], [current], operators
    graph.name = "fleetnas_reference"
    model = tfl.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [graph], buffers
    model.description = "fleetnas-agent reference"
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


BUILDERS = {"onnx": build_onnx_bytes, "tflite": build_tflite_bytes}   # format -> (rows, width, depth, seed) -> bytes


def write_reference_model(directory: Path, model_format: str = "onnx", rows: int = 1, width: int = 64,
                          depth: int = 2, seed: int = 0) -> Path:
    """Write the reference model into ``directory`` and return its path (used by ``fleetnas-agent selftest``)."""
    build = BUILDERS.get(model_format)
    if build is None:
        raise ValueError(f"unknown model format {model_format!r}: a reference model exists for "
                         f"{', '.join(sorted(BUILDERS))}")
    data, suffix = build(rows, width, depth, seed), FORMATS[model_format].suffix
    directory = Path(directory)
    private_dir(directory)
    target = directory / f"reference_r{rows}_w{width}_d{depth}_s{seed}{suffix}"
    write_private(target, data)
    return target


def _check_dims(rows: int, width: int, depth: int) -> None:
    for name, value in (("rows", rows), ("width", width), ("depth", depth)):
        if int(value) < 1:
            raise ValueError(f"reference model {name} must be >= 1, got {value}")

