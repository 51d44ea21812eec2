"""`ofa-resnet50`: Once-for-All ResNet50 (ofa_resnet50 d=0+1+2, e=0.2+0.25+0.35, w=0.65+0.8+1.0), official keys.

Elastic: stem depth (``d_0``: 2 keeps the stem's middle residual conv, 0 skips it), per-stage depth ``d_1..d_4``
(0/1/2 blocks beyond the base 2-2-4-2), per-block bottleneck expand ratio ``e_0..e_17``, width multipliers ``w_0``
(stem convs 1-2), ``w_1`` (stem conv 3) and ``w_2..w_5`` (stages), input resolution 128-224. ``--weights`` takes the
published checkpoint; without one the weights are a seeded random initialisation.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from fleetnas.host.search.space import ActiveIf, Choice, SearchSpace
from fleetnas.host.supernets import ofa_layers as L
from fleetnas.host.supernets.base import SuperNet
from fleetnas.host.supernets.ofa_mbv3 import RESOLUTIONS

DEPTHS = (0, 1, 2)
EXPANDS = (0.2, 0.25, 0.35)
WIDTHS = (0.65, 0.8, 1.0)
BASE_DEPTHS = (2, 2, 4, 2)
STAGE_WIDTHS = (256, 512, 1024, 2048)
STRIDES = (1, 2, 2, 2)
STAGE_BLOCKS = [b + max(DEPTHS) for b in BASE_DEPTHS]
N_BLOCKS = sum(STAGE_BLOCKS)


class DynamicConvLayer(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = L.DynamicConv2d(c_in, c_out, k, stride)
        self.bn = L.DynamicBatchNorm2d(c_out)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor, c_out: int) -> torch.Tensor:
        return self.act(self.bn(self.conv(x, c_out)))

    def extract(self, c_in: int, c_out: int) -> nn.Sequential:
        conv = self.conv.conv
        sub = L.conv_bn_act(c_in, c_out, conv.kernel_size[0], conv.stride[0], act="relu")
        sub.conv.weight.data.copy_(conv.weight.data[:c_out, :c_in])
        L.copy_bn(sub.bn, self.bn.bn)
        return sub


class StemResidual(nn.Module):
    """OFA's ``ResidualBlock(DynamicConvLayer, IdentityLayer)``: the stem's skippable middle conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = DynamicConvLayer(channels, channels, 3)

    def forward(self, x: torch.Tensor, c_out: int) -> torch.Tensor:
        return self.conv(x, c_out) + x


class Bottleneck(nn.Module):
    """A ResNet bottleneck (conv1 1x1 -> conv2 3x3 -> conv3 1x1, + downsample), elastic or static by its convs."""

    def __init__(self, c_in: int, c_out: int, mid: int, stride: int, identity: bool, dynamic: bool) -> None:
        super().__init__()
        conv = (lambda i, o, k=1, s=1: L.DynamicConv2d(i, o, k, s)) if dynamic else \
            (lambda i, o, k=1, s=1: nn.Conv2d(i, o, k, s, k // 2, bias=False))
        bn = L.DynamicBatchNorm2d if dynamic else nn.BatchNorm2d
        self.conv1 = nn.Sequential(OrderedDict(conv=conv(c_in, mid), bn=bn(mid), act=nn.ReLU()))
        self.conv2 = nn.Sequential(OrderedDict(conv=conv(mid, mid, 3, stride), bn=bn(mid), act=nn.ReLU()))
        self.conv3 = nn.Sequential(OrderedDict(conv=conv(mid, c_out), bn=bn(c_out)))
        self.downsample = None if identity else nn.Sequential(OrderedDict(
            avg_pool=nn.AvgPool2d(stride, stride, 0, ceil_mode=True), conv=conv(c_in, c_out), bn=bn(c_out)))
        self.final_act = nn.ReLU()

    def forward(self, x: torch.Tensor, mid: Optional[int] = None, c_out: Optional[int] = None) -> torch.Tensor:
        if mid is None:  # static
            residual = x if self.downsample is None else self.downsample(x)
            y = self.conv3(self.conv2(self.conv1(x)))
        else:
            d = self.downsample
            residual = x if d is None else d.bn(d.conv(d.avg_pool(x), c_out))
            y = self.conv1.act(self.conv1.bn(self.conv1.conv(x, mid)))
            y = self.conv2.act(self.conv2.bn(self.conv2.conv(y, mid)))
            y = self.conv3.bn(self.conv3.conv(y, c_out))
        return self.final_act(y + residual)

    def extract(self, c_in: int, mid: int, c_out: int) -> "Bottleneck":
        stride = self.conv2.conv.conv.stride[0]
        sub = Bottleneck(c_in, c_out, mid, stride, self.downsample is None, dynamic=False)
        pairs = [(sub.conv1, self.conv1, mid, c_in), (sub.conv2, self.conv2, mid, mid),
                 (sub.conv3, self.conv3, c_out, mid)]
        if self.downsample is not None:
            pairs.append((sub.downsample, self.downsample, c_out, c_in))
        for dst, src, o, i in pairs:
            dst.conv.weight.data.copy_(src.conv.conv.weight.data[:o, :i])
            L.copy_bn(dst.bn, src.bn.bn)
        return sub


class OFAResNetsNet(nn.Module):
    def __init__(self, n_classes: int = 1000) -> None:
        super().__init__()
        stem = [L.make_divisible(64 * w) for w in WIDTHS]
        stem_mid = [L.make_divisible(c // 2) for c in stem]
        self.stem_widths, self.stem_mid_widths = stem, stem_mid
        self.stage_widths = [[L.make_divisible(s * w) for w in WIDTHS] for s in STAGE_WIDTHS]
        self.input_stem = nn.ModuleList([DynamicConvLayer(3, max(stem_mid), 3, 2), StemResidual(max(stem_mid)),
                                         DynamicConvLayer(max(stem_mid), max(stem), 3)])
        blocks, in_list = [], stem
        for stage, n in enumerate(STAGE_BLOCKS):
            out_list = self.stage_widths[stage]
            for i in range(n):
                stride = STRIDES[stage] if i == 0 else 1
                mid = L.make_divisible(round(max(out_list) * max(EXPANDS)))
                blocks.append(Bottleneck(max(in_list), max(out_list), mid, stride,
                                         stride == 1 and in_list == out_list, dynamic=True))
                in_list = out_list
        self.blocks = nn.ModuleList(blocks)
        self.classifier = nn.Module()
        self.classifier.add_module("linear", nn.Module())
        self.classifier.linear.add_module("linear", nn.Linear(max(in_list), n_classes))
        L.set_bn_param(self, momentum=0.1, eps=1e-5)

    def plan(self, config: Dict[str, Any]) -> Tuple[int, int, bool, List[Tuple[int, int, int]]]:
        """(stem mid width, stem width, skip stem residual, [(block index, mid, out) of active blocks])."""
        stem_mid = self.stem_mid_widths[WIDTHS.index(config["w_0"])]
        stem = self.stem_widths[WIDTHS.index(config["w_1"])]
        blocks, start = [], 0
        for stage, n in enumerate(STAGE_BLOCKS):
            c_out = self.stage_widths[stage][WIDTHS.index(config[f"w_{stage + 2}"])]
            for i in range(BASE_DEPTHS[stage] + config[f"d_{stage + 1}"]):
                mid = L.make_divisible(round(c_out * config[f"e_{start + i}"]))
                blocks.append((start + i, mid, c_out))
            start += n
        return stem_mid, stem, config["d_0"] != max(DEPTHS), blocks

    def forward(self, x: torch.Tensor, config: Dict[str, Any]) -> torch.Tensor:
        stem_mid, stem, skip, blocks = self.plan(config)
        x = self.input_stem[0](x, stem_mid)
        if not skip:
            x = self.input_stem[1](x, stem_mid)
        x = F.max_pool2d(self.input_stem[2](x, stem), 3, 2, 1)
        for idx, mid, c_out in blocks:
            x = self.blocks[idx](x, mid, c_out)
        x = x.mean(3).mean(2)
        linear = self.classifier.linear.linear
        return F.linear(x, linear.weight[:, :x.shape[1]].contiguous(), linear.bias)

    def extract(self, config: Dict[str, Any]) -> "ResNetSubNet":
        stem_mid, stem, skip, blocks = self.plan(config)
        input_stem = [self.input_stem[0].extract(3, stem_mid)]
        if not skip:
            input_stem.append(L.Residual(self.input_stem[1].conv.extract(stem_mid, stem_mid), True))
        input_stem.append(self.input_stem[2].extract(stem_mid, stem))
        subs, c_in = [], stem
        for idx, mid, c_out in blocks:
            subs.append(self.blocks[idx].extract(c_in, mid, c_out))
            c_in = c_out
        classifier = L.LinearLayer(c_in, self.classifier.linear.linear.out_features)
        classifier.linear.weight.data.copy_(self.classifier.linear.linear.weight.data[:, :c_in])
        classifier.linear.bias.data.copy_(self.classifier.linear.linear.bias.data)
        return ResNetSubNet(input_stem, subs, classifier)


class ResNetSubNet(nn.Module):
    """A static sub-network, key for key like OFA's ``ResNets``."""

    def __init__(self, input_stem: List[nn.Module], blocks: List[nn.Module], classifier: nn.Module) -> None:
        super().__init__()
        self.input_stem, self.blocks, self.classifier = nn.ModuleList(input_stem), nn.ModuleList(blocks), classifier
        self.max_pooling = nn.MaxPool2d(3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.input_stem:
            x = layer(x)
        x = self.max_pooling(x)
        for block in self.blocks:
            x = block(x)
        return self.classifier(x.mean(3).mean(2))


def block_starts() -> List[int]:
    return [sum(STAGE_BLOCKS[:s]) for s in range(len(STAGE_BLOCKS))]


def resnet_space() -> SearchSpace:
    params = [Choice("d_0", (0, max(DEPTHS)))] + [Choice(f"d_{s + 1}", DEPTHS) for s in range(len(BASE_DEPTHS))]
    params += [Choice(f"e_{j}", EXPANDS) for j in range(N_BLOCKS)]
    params += [Choice(f"w_{i}", WIDTHS) for i in range(2 + len(BASE_DEPTHS))] + [Choice("res", RESOLUTIONS)]
    # Stage s always runs its BASE_DEPTHS[s] first blocks; block i beyond those runs when d_{s+1} adds it.
    conditions = [ActiveIf(f"e_{start + i}", f"d_{s + 1}", i - BASE_DEPTHS[s] + 1)
                  for s, start in enumerate(block_starts()) for i in range(BASE_DEPTHS[s], STAGE_BLOCKS[s])]
    return SearchSpace(params, conditions=conditions)


class OFAResNet50SuperNet(SuperNet):
    name = "ofa-resnet50"

    def __init__(self, weights: Optional[str] = None, n_classes: int = 1000) -> None:
        super().__init__(weights)
        self.space = resnet_space()
        self.n_classes = n_classes
        self._net: Optional[OFAResNetsNet] = None

    @property
    def net(self) -> OFAResNetsNet:
        """Built on first use: listing spaces should not allocate the full ResNet50 super-network."""
        if self._net is None:
            self._net = L.build_from_checkpoint(
                self.weights_path, self.n_classes, "classifier.linear.linear.weight",
                lambda state, n: OFAResNetsNet(n), "ofa-resnet50 (OFAResNets d012 e0.2/0.25/0.35 w0.65/0.8/1.0)")
        return self._net

    def _extract(self, config: Dict[str, Any]) -> nn.Module:
        return self.net.extract(config)

    def _example_input(self, config: Dict[str, Any]) -> torch.Tensor:
        res = config["res"]
        return torch.randn(1, 3, res, res, generator=torch.Generator().manual_seed(0))

    def evaluator(self, data: Any = None):
        from fleetnas.host.accuracy.evaluator import AccuracyEvaluator

        return AccuracyEvaluator(self, data)
