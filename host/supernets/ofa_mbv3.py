"""`ofa-mbv3`: Once-for-All MobileNetV3 (ofa_mbv3_d234_e346_k357), implemented here with the official key names.

Five elastic stages of four blocks: per-block kernel 3/5/7 and expand ratio 3/4/6, per-stage depth 2/3/4, input
resolution 128-224. ``--weights`` takes a published checkpoint (``ofa_mbv3_d234_e346_k357_w1.0`` or ``_w1.2``: the
width is read from the checkpoint); without one the weights are a seeded random initialisation (latency is real
either way, accuracy is not). tests/host/supernets/test_ofa_compat.py loads a state dict of the `ofa` package's own
``OFAMobileNetV3`` into this network and checks the outputs are identical.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from fleetnas.host.search.space import ActiveIf, Choice, SearchSpace
from fleetnas.host.supernets import ofa_layers as L
from fleetnas.host.supernets.base import SuperNet

KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
DEPTHS = (2, 3, 4)
RESOLUTIONS = tuple(range(128, 225, 4))
BASE_WIDTHS = (16, 16, 24, 40, 80, 112, 160, 960, 1280)
STRIDES = (2, 2, 2, 1, 2)
ACTS = ("relu", "relu", "h_swish", "h_swish", "h_swish")
USE_SE = (False, True, False, True, True)
N_STAGES, MAX_DEPTH = 5, max(DEPTHS)
N_BLOCKS = N_STAGES * MAX_DEPTH


class DynamicMBConvLayer(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, act: str, use_se: bool) -> None:
        super().__init__()
        mid = L.make_divisible(round(c_in * max(EXPANDS)))
        self.inverted_bottleneck = nn.Sequential(OrderedDict(
            conv=L.DynamicConv2d(c_in, mid), bn=L.DynamicBatchNorm2d(mid), act=L.activation(act)))
        self.depth_conv = nn.Sequential(OrderedDict(
            conv=L.DynamicSeparableConv2d(mid, KERNELS, stride), bn=L.DynamicBatchNorm2d(mid), act=L.activation(act)))
        if use_se:
            self.depth_conv.add_module("se", L.SEModule(mid))
        self.point_linear = nn.Sequential(OrderedDict(conv=L.DynamicConv2d(mid, c_out), bn=L.DynamicBatchNorm2d(c_out)))
        self.c_out, self.use_se = c_out, use_se

    def mid(self, c_in: int, e: int) -> int:
        return L.make_divisible(round(c_in * e))

    def forward(self, x: torch.Tensor, k: int, e: int) -> torch.Tensor:
        mid = self.mid(x.shape[1], e)
        ib, dc, pl = self.inverted_bottleneck, self.depth_conv, self.point_linear
        x = ib.act(ib.bn(ib.conv(x, mid)))
        x = dc.act(dc.bn(dc.conv(x, k)))
        if self.use_se:
            x = dynamic_se(dc.se, x)
        return pl.bn(pl.conv(x, self.c_out))

    def extract(self, c_in: int, k: int, e: int) -> L.MBConv:
        mid = self.mid(c_in, e)
        sub = L.MBConv(c_in, self.c_out, k, self.depth_conv.conv.conv.stride[0], mid,
                       "relu" if isinstance(self.depth_conv.act, nn.ReLU) else "h_swish", self.use_se)
        sub.inverted_bottleneck.conv.weight.data.copy_(self.inverted_bottleneck.conv.conv.weight.data[:mid, :c_in])
        L.copy_bn(sub.inverted_bottleneck.bn, self.inverted_bottleneck.bn.bn)
        with torch.no_grad():
            sub.depth_conv.conv.weight.data.copy_(self.depth_conv.conv.active_filter(mid, k))
        L.copy_bn(sub.depth_conv.bn, self.depth_conv.bn.bn)
        if self.use_se:
            se_mid = sub.depth_conv.se.fc.reduce.out_channels
            src, dst = self.depth_conv.se.fc, sub.depth_conv.se.fc
            dst.reduce.weight.data.copy_(src.reduce.weight.data[:se_mid, :mid])
            dst.reduce.bias.data.copy_(src.reduce.bias.data[:se_mid])
            dst.expand.weight.data.copy_(src.expand.weight.data[:mid, :se_mid])
            dst.expand.bias.data.copy_(src.expand.bias.data[:mid])
        sub.point_linear.conv.weight.data.copy_(self.point_linear.conv.conv.weight.data[:, :mid])
        L.copy_bn(sub.point_linear.bn, self.point_linear.bn.bn)
        return sub


def dynamic_se(se: L.SEModule, x: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    c = x.shape[1]
    mid = L.make_divisible(c // L.SEModule.REDUCTION)
    fc = se.fc
    y = x.mean(3, keepdim=True).mean(2, keepdim=True)
    y = F.relu(F.conv2d(y, fc.reduce.weight[:mid, :c].contiguous(), fc.reduce.bias[:mid]))
    y = F.conv2d(y, fc.expand.weight[:c, :mid].contiguous(), fc.expand.bias[:c])
    return x * fc.h_sigmoid(y)


class OFAMobileNetV3Net(nn.Module):
    """The elastic network; ``forward(x, config)`` runs the sub-network ``config`` on the shared weights."""

    def __init__(self, width_mult: float = 1.0, n_classes: int = 1000, dropout: float = 0.1) -> None:
        super().__init__()
        widths = [L.make_divisible(w * width_mult) for w in BASE_WIDTHS]
        self.first_conv = L.conv_bn_act(3, widths[0], 3, 2, act="h_swish")
        first = L.MBConv(widths[0], widths[1], 3, 1, widths[0], "relu", False, expand=False)
        blocks: List[nn.Module] = [L.Residual(first, widths[0] == widths[1])]
        self.identity: List[bool] = []
        c_in = widths[1]
        for stage in range(N_STAGES):
            for i in range(MAX_DEPTH):
                stride = STRIDES[stage] if i == 0 else 1
                c_out = widths[2 + stage]
                layer = DynamicMBConvLayer(c_in, c_out, stride, ACTS[stage], USE_SE[stage])
                self.identity.append(stride == 1 and c_in == c_out)
                blocks.append(L.Residual(layer, self.identity[-1]))
                c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.final_expand_layer = L.conv_bn_act(c_in, widths[-2], 1, act="h_swish")
        self.feature_mix_layer = L.conv_bn_act(widths[-2], widths[-1], 1, act="h_swish", use_bn=False)
        self.classifier = L.LinearLayer(widths[-1], n_classes, dropout)
        L.set_bn_param(self, momentum=0.1, eps=1e-5)

    @staticmethod
    def active(config: Dict[str, Any]) -> List[Tuple[int, int, int]]:
        """(block index in 1..20, kernel, expand) of the blocks ``config`` keeps."""
        return [(1 + j, config[f"ks_{j}"], config[f"e_{j}"]) for j in range(N_BLOCKS)
                if j % MAX_DEPTH < config[f"d_{j // MAX_DEPTH}"]]

    def forward(self, x: torch.Tensor, config: Dict[str, Any]) -> torch.Tensor:
        x = self.blocks[0](self.first_conv(x))
        for idx, k, e in self.active(config):
            y = self.blocks[idx].conv(x, k, e)
            x = y + x if self.identity[idx - 1] else y
        return head(self, x)

    def extract(self, config: Dict[str, Any]) -> "MobileNetV3SubNet":
        import copy

        blocks: List[nn.Module] = [copy.deepcopy(self.blocks[0])]
        c_in = self.blocks[0].conv.point_linear.conv.out_channels
        for idx, k, e in self.active(config):
            blocks.append(L.Residual(self.blocks[idx].conv.extract(c_in, k, e), self.identity[idx - 1]))
            c_in = self.blocks[idx].conv.c_out
        return MobileNetV3SubNet(copy.deepcopy(self.first_conv), blocks, copy.deepcopy(self.final_expand_layer),
                                 copy.deepcopy(self.feature_mix_layer), copy.deepcopy(self.classifier))


def head(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = net.final_expand_layer(x)
    x = x.mean(3, keepdim=True).mean(2, keepdim=True)
    x = net.feature_mix_layer(x)
    return net.classifier(torch.flatten(x, 1))


class MobileNetV3SubNet(nn.Module):
    """A static sub-network, key for key like OFA's ``MobileNetV3``."""

    def __init__(self, first_conv, blocks, final_expand_layer, feature_mix_layer, classifier) -> None:
        super().__init__()
        self.first_conv, self.blocks = first_conv, nn.ModuleList(blocks)
        self.final_expand_layer, self.feature_mix_layer, self.classifier = (final_expand_layer, feature_mix_layer,
                                                                            classifier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_conv(x)
        for block in self.blocks:
            x = block(x)
        return head(self, x)


def mbv3_space() -> SearchSpace:
    params = [Choice(f"ks_{j}", KERNELS) for j in range(N_BLOCKS)] + [Choice(f"e_{j}", EXPANDS) for j in
                                                                       range(N_BLOCKS)]
    params += [Choice(f"d_{s}", DEPTHS) for s in range(N_STAGES)] + [Choice("res", RESOLUTIONS)]
    return SearchSpace(params, conditions=block_conditions(N_BLOCKS, MAX_DEPTH, ("ks", "e")))


def block_conditions(n_blocks: int, max_depth: int, genes: Tuple[str, ...]) -> List[ActiveIf]:
    """Block j is the (j % max_depth)-th of stage j // max_depth: its genes matter when that stage's depth reaches it."""
    return [ActiveIf(f"{gene}_{j}", f"d_{j // max_depth}", j % max_depth + 1)
            for j in range(n_blocks) for gene in genes]


def width_from_state(state: Dict[str, Any]) -> float:
    stem = int(state["first_conv.conv.weight"].shape[0])
    for width_mult in (1.0, 1.2, 1.3, 1.4, 1.5, 2.0):
        if L.make_divisible(BASE_WIDTHS[0] * width_mult) == stem:
            return width_mult
    return 1.0


class OFAMobileNetV3SuperNet(SuperNet):
    name = "ofa-mbv3"

    def __init__(self, weights: Optional[str] = None, n_classes: int = 1000) -> None:
        super().__init__(weights)
        self.space = mbv3_space()
        self.n_classes = n_classes
        self._net: Optional[OFAMobileNetV3Net] = None

    @property
    def net(self) -> OFAMobileNetV3Net:
        """Built on first use: listing spaces should not allocate 7.7 M parameters."""
        if self._net is None:
            self._net = L.build_from_checkpoint(
                self.weights_path, self.n_classes, "classifier.linear.weight",
                lambda state, n: OFAMobileNetV3Net(width_from_state(state) if state else 1.0, n),
                "ofa-mbv3 (OFAMobileNetV3 d234 e346 k357)")
        return self._net

    def _extract(self, config: Dict[str, Any]) -> nn.Module:
        return self.net.extract(config)

    def _example_input(self, config: Dict[str, Any]) -> torch.Tensor:
        res = config["res"]
        return torch.randn(1, 3, res, res, generator=torch.Generator().manual_seed(0))

    def evaluator(self, data: Any = None):
        from fleetnas.host.accuracy.evaluator import AccuracyEvaluator

        return AccuracyEvaluator(self, data)
