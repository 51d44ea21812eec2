"""Recognise model files by content, without the onnx or tflite packages (the agent must not need them).

ONNX: a serialized ModelProto. We walk the top-level protobuf wire format: every field must be well formed, with an
ir_version (field 1, varint) and a graph (field 7, bytes). TFLite: a FlatBuffer whose file identifier at bytes 4..8
is "TFL3" and whose root table offset points inside the file. Deeper damage (a valid container around a garbage
graph) passes here and comes back from Measure as LOAD_FAILED: the runtime is the only complete parser.
"""
from __future__ import annotations

from typing import Optional, Tuple

_WIRE_VARINT, _WIRE_I64, _WIRE_LEN, _WIRE_SGROUP, _WIRE_EGROUP, _WIRE_I32 = 0, 1, 2, 3, 4, 5
_ONNX_IR_VERSION, _ONNX_GRAPH = 1, 7


def _read_varint(buf: memoryview, pos: int) -> Tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def onnx_problem(data: bytes) -> Optional[str]:
    """None when ``data`` looks like an ONNX ModelProto, else what is wrong with it."""
    buf = memoryview(data)
    pos, seen = 0, set()
    try:
        while pos < len(buf):
            tag, pos = _read_varint(buf, pos)
            field, wire = tag >> 3, tag & 7
            if field == 0:
                return f"invalid protobuf field number 0 at byte {pos}"
            if wire == _WIRE_VARINT:
                _, pos = _read_varint(buf, pos)
            elif wire == _WIRE_I64:
                pos += 8
            elif wire == _WIRE_I32:
                pos += 4
            elif wire == _WIRE_LEN:
                length, pos = _read_varint(buf, pos)
                pos += length
            else:  # groups never occur in ONNX
                return f"unexpected protobuf wire type {wire} at byte {pos}"
            if pos > len(buf):
                return "truncated: a protobuf field runs past the end of the file"
            if (field, wire) in ((_ONNX_IR_VERSION, _WIRE_VARINT), (_ONNX_GRAPH, _WIRE_LEN)):
                seen.add(field)
    except ValueError as exc:
        return f"not a protobuf message ({exc})"
    if _ONNX_GRAPH not in seen:
        return "no ONNX graph (ModelProto field 7) in the file"
    if _ONNX_IR_VERSION not in seen:
        return "no ONNX ir_version (ModelProto field 1) in the file"
    return None


def tflite_problem(data: bytes) -> Optional[str]:
    """None when ``data`` looks like a TFLite FlatBuffer, else what is wrong with it."""
    if len(data) < 16:
        return f"too short for a TFLite FlatBuffer ({len(data)} bytes)"
    if data[4:8] != b"TFL3":
        return f"TFLite file identifier 'TFL3' missing at bytes 4..8 (found {bytes(data[4:8])!r})"
    root = int.from_bytes(data[0:4], "little")
    if not 8 <= root < len(data) - 4:
        return f"TFLite root table offset {root} lies outside the file ({len(data)} bytes)"
    return None


def sniff_format(data: bytes) -> Optional[str]:
    """'tflite', 'onnx' or None. TFLite is checked first: its identifier is unambiguous."""
    if tflite_problem(data) is None:
        return "tflite"
    if onnx_problem(data) is None:
        return "onnx"
    return None


def check_model(data: bytes, declared_format: str) -> str:
    """The model's format ('onnx' | 'tflite'); ValueError saying what is wrong otherwise.

    ``declared_format`` is what the uploader said ("" when it did not say).
    """
    if declared_format not in ("", "onnx", "tflite"):
        raise ValueError(f"unknown model format {declared_format!r}: use onnx or tflite")
    if declared_format == "tflite":
        problem = tflite_problem(data)
    elif declared_format == "onnx":
        problem = onnx_problem(data)
    else:
        found = sniff_format(data)
        if found is None:
            raise ValueError("neither an ONNX protobuf nor a TFLite FlatBuffer: upload a .onnx or .tflite model")
        return found
    if problem is not None:
        other = sniff_format(data)
        hint = f" (it looks like a {other} file: declare format {other})" if other else ""
        raise ValueError(f"not a valid {declared_format} model: {problem}{hint}")
    return declared_format
