"""Layers shared by the OFA super-networks, named so that state-dict keys are the official Once-for-All ones.

The attribute names (``conv``, ``bn``, ``inverted_bottleneck``, ``depth_conv``, ``point_linear``, ``se.fc.reduce``,
``linear``, ...) mirror the ``ofa`` package (mit-han-lab/once-for-all); the elastic layers keep their full-size
tensors one level down (``conv.conv.weight``, ``bn.bn.weight``, ``linear.linear.weight``) exactly as OFA does, so
a published checkpoint loads with ``load_state_dict(strict=True)``. Static layers (what ``extract`` returns) match
OFA's static sub-network modules (``MobileNetV3``/``ResNets``) key for key.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

CHANNEL_DIVISIBLE = 8


def make_divisible(v: float, divisor: int = CHANNEL_DIVISIBLE) -> int:
    """OFA's (and TF-slim's) channel rounding: nearest multiple of ``divisor``, never more than 10 % below ``v``."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class Hswish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * F.relu6(x + 3.0) / 6.0


class Hsigmoid(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x + 3.0) / 6.0


def activation(name: Optional[str]) -> Optional[nn.Module]:
    return {"relu": nn.ReLU, "h_swish": Hswish, "h_sigmoid": Hsigmoid, None: lambda: None}[name]()


def conv_bn_act(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, act: Optional[str] = "relu",
                use_bn: bool = True) -> nn.Sequential:
    """OFA's ``ConvLayer`` (weight -> bn -> act) as a Sequential with the same child names."""
    layers: Dict[str, nn.Module] = OrderedDict(conv=nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups,
                                                             bias=False))
    if use_bn:
        layers["bn"] = nn.BatchNorm2d(c_out)
    if act is not None:
        layers["act"] = activation(act)
    return nn.Sequential(layers)


class SEModule(nn.Module):
    REDUCTION = 4

    def __init__(self, channels: int, mid: Optional[int] = None) -> None:
        super().__init__()
        mid = mid or make_divisible(channels // self.REDUCTION)
        self.fc = nn.Sequential(OrderedDict(reduce=nn.Conv2d(channels, mid, 1), relu=nn.ReLU(),
                                            expand=nn.Conv2d(mid, channels, 1), h_sigmoid=Hsigmoid()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(3, keepdim=True).mean(2, keepdim=True))


class MBConv(nn.Module):
    """A static inverted-residual block (OFA ``MBConvLayer``)."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, mid: int, act: str, use_se: bool,
                 expand: bool = True) -> None:
        super().__init__()
        self.inverted_bottleneck = conv_bn_act(c_in, mid, 1, act=act) if expand else None
        self.depth_conv = conv_bn_act(mid, mid, k, stride, groups=mid, act=act)
        if use_se:
            self.depth_conv.add_module("se", SEModule(mid))
        self.point_linear = conv_bn_act(mid, c_out, 1, act=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inverted_bottleneck is not None:
            x = self.inverted_bottleneck(x)
        return self.point_linear(self.depth_conv(x))


class Residual(nn.Module):
    """OFA ``ResidualBlock``: ``conv(x) (+ x when the block has an identity shortcut)``."""

    def __init__(self, conv: nn.Module, identity: bool) -> None:
        super().__init__()
        self.conv = conv
        self.identity = identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + x if self.identity else self.conv(x)


class LinearLayer(nn.Module):
    """OFA ``LinearLayer`` (dropout, then ``linear``); dropout is inactive in eval mode and absent from exports."""

    def __init__(self, c_in: int, c_out: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.linear = nn.Linear(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(x) if self.dropout is not None else x)


# --- elastic pieces: full-size tensors wrapped one level down, as in OFA ---------------------------------------------
class DynamicConv2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, bias=False)

    def forward(self, x: torch.Tensor, c_out: int) -> torch.Tensor:
        w = self.conv.weight[:c_out, :x.shape[1]].contiguous()
        return F.conv2d(x, w, None, self.conv.stride, self.conv.kernel_size[0] // 2)


class DynamicSeparableConv2d(nn.Module):
    """Depthwise conv with elastic kernel: a smaller kernel is the centre of the larger one times a learned matrix
    (OFA's ``7to5_matrix`` / ``5to3_matrix`` kernel transform)."""

    def __init__(self, channels: int, kernel_sizes: tuple, stride: int) -> None:
        super().__init__()
        self.kernel_sizes = tuple(sorted(kernel_sizes))
        self.conv = nn.Conv2d(channels, channels, max(self.kernel_sizes), stride, groups=channels, bias=False)
        for small, large in zip(self.kernel_sizes[:-1], self.kernel_sizes[1:]):
            self.register_parameter(f"{large}to{small}_matrix", nn.Parameter(torch.eye(small * small)))

    def active_filter(self, channels: int, k: int) -> torch.Tensor:
        weight = self.conv.weight[:channels]
        for large, small in zip(self.kernel_sizes[::-1], self.kernel_sizes[-2::-1]):
            if large <= k:
                break
            start = (large - small) // 2
            centre = weight[:, :, start:start + small, start:start + small].reshape(channels, -1)
            matrix = getattr(self, f"{large}to{small}_matrix")
            weight = F.linear(centre, matrix).reshape(channels, 1, small, small)
        return weight

    def forward(self, x: torch.Tensor, k: int) -> torch.Tensor:
        c = x.shape[1]
        return F.conv2d(x, self.active_filter(c, k).contiguous(), None, self.conv.stride, k // 2, 1, c)


class DynamicBatchNorm2d(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn, c = self.bn, x.shape[1]
        if c == bn.num_features:
            return bn(x)
        return F.batch_norm(x, bn.running_mean[:c], bn.running_var[:c], bn.weight[:c], bn.bias[:c],
                            bn.training, bn.momentum if bn.momentum is not None else 0.0, bn.eps)


def copy_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d) -> None:
    c = dst.num_features
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(dst, name).data.copy_(getattr(src, name).data[:c])


def set_bn_param(module: nn.Module, momentum: float, eps: float) -> None:
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum, m.eps = momentum, eps


def remap_legacy_keys(state: Dict[str, Any]) -> Dict[str, Any]:
    """Older OFA checkpoints name the block's layer ``mobile_inverted_conv``; newer ones ``conv``."""
    return {k.replace(".mobile_inverted_conv.", ".conv."): v for k, v in state.items()}


def load_checkpoint(path) -> Dict[str, Any]:
    """A state dict from a ``.pth``/``.pt`` file (plain, or wrapped in ``{"state_dict": ...}`` as OFA publishes)."""
    from fleetnas.host.errors import UsageError

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for unreadable files
        raise UsageError(f"cannot read checkpoint {str(path)!r}: {exc}") from None
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise UsageError(f"checkpoint {str(path)!r} holds a {type(obj).__name__}, not a state dict")
    return remap_legacy_keys({k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()})


def load_strict(net: nn.Module, state: Dict[str, Any], what: str) -> None:
    """``load_state_dict(strict=True)`` with an error that names a few mismatching keys."""
    from fleetnas.host.errors import UsageError

    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        raise UsageError(f"checkpoint does not fit {what}: {len(missing)} missing keys (e.g. {missing[:2]}), "
                         f"{len(unexpected)} unexpected (e.g. {unexpected[:2]}), {len(wrong)} with other shapes "
                         f"(e.g. {wrong[:2]})")
    net.load_state_dict(state, strict=True)


def build_from_checkpoint(weights_path, n_classes: int, classifier_key: str, build, what: str) -> nn.Module:
    """The super-network in eval mode: ``build(state_or_None, n_classes)``, then the checkpoint loaded strictly.

    Without a checkpoint the weights come from a fixed seed: the random initialisation is part of the identity of
    an un-checkpointed network. A checkpoint's classifier decides the number of classes."""
    state = load_checkpoint(weights_path) if weights_path is not None else None
    if state is not None and classifier_key in state:
        n_classes = int(state[classifier_key].shape[0])
    torch.manual_seed(0)
    net = build(state, n_classes).eval()
    if state is not None:
        load_strict(net, state, what)
    return net
