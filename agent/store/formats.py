"""The model formats the agent accepts: the one table (``FORMATS``) of name, file suffix, contract enum and the
upload check, which recognises a file by its bytes without the onnx or tflite packages and without executing it.

ONNX: a serialized ModelProto. We walk the top-level protobuf wire format: every field must be well formed, with an
ir_version (field 1, varint) and a graph (field 7, bytes). TFLite: a FlatBuffer whose file identifier at bytes 4..8
is "TFL3" and whose root table offset points inside the file. ExecuTorch (.pte): a FlatBuffer whose identifier is
"ET" and two schema-version digits ("ET12" for ExecuTorch 1.x), root offset inside the file, and, when the optional
extended header ("eh00" at byte 8) is there, the program and its weight segments within the file's length (what a
truncated upload breaks). Deeper damage (a valid container around a garbage
graph) passes here and comes back from Measure as LOAD_FAILED: the runtime is the only complete parser.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Iterator, Optional, Tuple, Union

WIRE_VARINT, WIRE_I64, WIRE_LEN, WIRE_I32 = 0, 1, 2, 5   # groups (3, 4) never occur in ONNX: malformed here
_ONNX_IR_VERSION, _ONNX_GRAPH = 1, 7


def read_varint(buf: memoryview, pos: int) -> Tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ValueError("not a protobuf message (truncated varint)")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("not a protobuf message (varint longer than 10 bytes)")


def protobuf_fields(buf: memoryview) -> Iterator[Tuple[int, int, Union[int, memoryview]]]:
    """(field, wire type, value) over one message level: an int for varints, the bytes otherwise. A plain walk of the
    wire format (no protobuf schema); ValueError saying what is malformed."""
    pos = 0
    while pos < len(buf):
        tag, pos = read_varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if field == 0:
            raise ValueError(f"invalid protobuf field number 0 at byte {pos}")
        value: Union[int, memoryview]
        if wire == WIRE_VARINT:
            value, pos = read_varint(buf, pos)
        else:
            if wire == WIRE_LEN:
                length, pos = read_varint(buf, pos)
            elif wire in (WIRE_I64, WIRE_I32):
                length = 8 if wire == WIRE_I64 else 4
            else:
                raise ValueError(f"unexpected protobuf wire type {wire} at byte {pos}")
            value, pos = buf[pos:pos + length], pos + length
        if pos > len(buf):
            raise ValueError("truncated: a protobuf field runs past the end of the file")
        yield field, wire, value


def onnx_problem(data: bytes) -> Optional[str]:
    """None when ``data`` looks like an ONNX ModelProto, else what is wrong with it."""
    seen = set()
    try:
        for field, wire, _ in protobuf_fields(memoryview(data)):
            if (field, wire) in ((_ONNX_IR_VERSION, WIRE_VARINT), (_ONNX_GRAPH, WIRE_LEN)):
                seen.add(field)
    except ValueError as exc:
        return str(exc)
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


def pte_problem(data: bytes) -> Optional[str]:
    """None when ``data`` looks like an ExecuTorch program, else what is wrong with it (nothing is executed)."""
    if len(data) < 16:
        return f"too short for an ExecuTorch program ({len(data)} bytes)"
    ident = bytes(data[4:8])
    if not (ident[:2] == b"ET" and ident[2:].isdigit()):
        return f"ExecuTorch file identifier 'ET' + schema version (e.g. 'ET12') missing at bytes 4..8 (found {ident!r})"
    root = int.from_bytes(data[0:4], "little")
    if not 8 <= root < len(data) - 4:
        return f"ExecuTorch root table offset {root} lies outside the file ({len(data)} bytes)"
    if bytes(data[8:12]) == b"eh00":   # extended header: uint32 length, uint64 program size, segment offset, size
        header_len = int.from_bytes(data[12:16], "little")
        if header_len < 24 or len(data) < 8 + header_len:
            return f"ExecuTorch extended header is malformed (length {header_len})"
        program_size = int.from_bytes(data[16:24], "little")
        segment_base = int.from_bytes(data[24:32], "little")
        segment_size = int.from_bytes(data[32:40], "little") if header_len >= 32 else 0
        needed = max(program_size, segment_base + segment_size if segment_base else 0)
        if needed > len(data):
            return f"truncated: the ExecuTorch program needs {needed} bytes, the file has {len(data)}"
    return None


@dataclass(frozen=True)
class ModelFormat:
    name: str                                   # as requests, the store's index and RuntimeInfo name it
    suffix: str                                 # file suffix of an exported model
    proto_enum: str                             # its fleetnas.agent.v1 ModelFormat value
    problem: Callable[[bytes], Optional[str]]   # None when the bytes look like this format, else what is wrong


# Sniffing tries them in this order: the FlatBuffers first, their file identifiers are unambiguous.
FORMATS: Dict[str, ModelFormat] = {f.name: f for f in (
    ModelFormat("tflite", ".tflite", "MODEL_FORMAT_TFLITE", tflite_problem),
    ModelFormat("pte", ".pte", "MODEL_FORMAT_PTE", pte_problem),
    ModelFormat("onnx", ".onnx", "MODEL_FORMAT_ONNX", onnx_problem),
)}


def format_names() -> str:
    return ", ".join(sorted(FORMATS))


def check_format_name(fmt: str) -> str:
    """``fmt`` when it is a known format or "" (not declared); ValueError naming the known ones otherwise."""
    if fmt and fmt not in FORMATS:
        raise ValueError(f"unknown model format {fmt!r}: use one of {format_names()}")
    return fmt


def sniff_format(data: bytes) -> Optional[str]:
    """The name of the format ``data`` is in, or None."""
    return next((f.name for f in FORMATS.values() if f.problem(data) is None), None)


def check_model(data: bytes, declared_format: str) -> str:
    """The model's format; ValueError saying what is wrong otherwise. ``declared_format``: "" when not said."""
    check_format_name(declared_format)
    if not declared_format:
        found = sniff_format(data)
        if found is None:
            raise ValueError(f"not a model file in any known format ({format_names()}): upload one of "
                             f"{', '.join(sorted(f.suffix for f in FORMATS.values()))}")
        return found
    problem = FORMATS[declared_format].problem(data)
    if problem is not None:
        other = sniff_format(data)
        hint = f" (it looks like a {other} file: declare format {other})" if other else ""
        raise ValueError(f"not a valid {declared_format} model: {problem}{hint}")
    return declared_format
