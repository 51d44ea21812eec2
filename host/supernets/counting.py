"""MAC counting by forward hooks: what a module actually computes on a given input.

Counted: convolutions, linear layers, and any module defining ``extra_macs(inputs, output) -> int`` for matmuls
that are not modules (attention's QK^T and AV). Normalisation, activations, pooling and additions are not counted
(the usual MAC convention of OFA, HAT and thop).
"""
from __future__ import annotations

from typing import Any, List

import torch
from torch import nn


def _conv_macs(module: nn.Conv2d, output: torch.Tensor) -> int:
    kh, kw = module.kernel_size
    return int(output.numel() * (module.in_channels // module.groups) * kh * kw)


def _linear_macs(module: nn.Linear, output: torch.Tensor) -> int:
    return int(output.numel() * module.in_features)


def count_macs(module: nn.Module, inputs: Any) -> int:
    """MACs of one forward pass of ``module`` on ``inputs`` (a tensor or a tuple of tensors)."""
    total: List[int] = [0]
    handles = []

    def hook(mod: nn.Module, args: Any, output: Any) -> None:
        if isinstance(mod, nn.Conv2d):
            total[0] += _conv_macs(mod, output)
        elif isinstance(mod, nn.Linear):
            total[0] += _linear_macs(mod, output)
        elif hasattr(mod, "extra_macs"):
            total[0] += int(mod.extra_macs(args, output))

    for sub in module.modules():
        if isinstance(sub, (nn.Conv2d, nn.Linear)) or hasattr(sub, "extra_macs"):
            handles.append(sub.register_forward_hook(hook))
    try:
        with torch.no_grad():
            module(*inputs) if isinstance(inputs, tuple) else module(inputs)
    finally:
        for h in handles:
            h.remove()
    return total[0]
