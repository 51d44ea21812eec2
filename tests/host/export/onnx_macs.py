"""An independent MAC count read off an ONNX graph (Conv, Gemm, MatMul after shape inference)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import shape_inference


def onnx_macs(model: onnx.ModelProto) -> int:
    model = shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value for d in dims]
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            w = shapes[node.input[1]]             # (out, in/groups, kh, kw)
            out = shapes[node.output[0]]
            total += int(np.prod(out)) * int(np.prod(w[1:]))
        elif node.op_type == "Gemm":
            a, b = shapes[node.input[0]], shapes[node.input[1]]
            trans_b = any(att.name == "transB" and att.i == 1 for att in node.attribute)
            total += a[0] * a[1] * (b[0] if trans_b else b[1])
        elif node.op_type == "MatMul":
            a, out = shapes[node.input[0]], shapes[node.output[0]]
            total += int(np.prod(out)) * a[-1]
    return total
