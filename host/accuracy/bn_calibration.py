"""Batch-norm recalibration: a sub-network's BN statistics recomputed on its own activations (OFA's requirement).

The shared statistics of a super-network were accumulated over many sub-networks; a sliced sub-network's true
activation statistics differ, and evaluating with the shared ones under-reports its accuracy.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


def recalibrate_bn(module: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Reset every BatchNorm's running statistics and re-estimate them as the plain average over ``batches``.

    Uses cumulative averaging (momentum None), so the result does not depend on batch order. Returns ``module``
    in eval mode. Raises ValueError when ``batches`` is empty (nothing to calibrate on).
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m, m.momentum) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    module.train()
    seen = 0
    try:
        with torch.no_grad():
            for batch in batches:
                module(*batch) if isinstance(batch, tuple) else module(batch)
                seen += 1
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        module.eval()
    if norms and seen == 0:
        raise ValueError("batch-norm recalibration got no batches; give at least one calibration batch")
    return module
