"""`tiny`: a small elastic CNN on scikit-learn's digits, so a search has a real accuracy objective offline.

Stem 3x3 conv (1 -> 16), then three stages of depthwise-separable blocks (depthwise kxk + BN + ReLU, pointwise 1x1
+ BN + ReLU; blocks after a stage's first are residual), global average pooling and a linear classifier.
Elastic per stage: width (output channels: first channels of the full layer), depth (first blocks) and kernel size
(centre crop of the 5x5 kernel); elastic input resolution (the 8x8 digits are upsampled bilinearly; a larger
resolution costs more compute, which is the point: sub-network latencies then span roughly 0.05-1 ms on a CPU).

Weights: ``tiny_weights.npz`` next to this module, written by ``scripts/train_tiny.py`` (sandwich rule with in-place
distillation after a full-network warm-up: progressive shrinking in two phases). Accuracy is top-1 on a held-out 25 %
of digits (fixed split, seed 0), after batch-norm recalibration on the training split, the way OFA evaluates.
``extract`` bakes those recalibrated statistics in, so the exported network is the evaluated one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fleetnas.host.errors import UsageError
from fleetnas.host.search.space import Choice, SearchSpace
from fleetnas.host.supernets.base import SuperNet

WEIGHTS_FILE = Path(__file__).with_name("tiny_weights.npz")
RESOLUTIONS = (12, 16, 20, 24)
STEM_WIDTH = 16
STAGE_WIDTHS = ((16, 24, 32), (32, 48, 64), (48, 64, 96))
STAGE_STRIDES = (1, 2, 2)
DEPTHS = (1, 2)
KERNELS = (3, 5)
N_CLASSES = 10
SPLIT_SEED = 0
TEST_FRACTION = 0.25
CALIBRATION_IMAGES = 500  # training images for BN recalibration (OFA also uses a slice of its training set)


def tiny_space() -> SearchSpace:
    params: List[Any] = [Choice("res", RESOLUTIONS)]
    for i, widths in enumerate(STAGE_WIDTHS):
        params += [Choice(f"w_{i}", widths), Choice(f"d_{i}", DEPTHS), Choice(f"k_{i}", KERNELS)]
    return SearchSpace(params)


def digits_split() -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x, train_y, test_x, test_y): 8x8 images scaled to [0, 1], a fixed seeded 75/25 split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    n_test = int(round(len(y) * TEST_FRACTION))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def prepare_images(images: np.ndarray, res: int) -> torch.Tensor:
    """8x8 images in [0, 1] -> normalised (N, 1, res, res) tensors."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).unsqueeze(1)
    x = F.interpolate(x, size=(res, res), mode="bilinear", align_corners=False)
    return (x - 0.5) / 0.5


def _block_layout() -> List[Tuple[int, int, int]]:
    """(stage, index in stage, stride) of every block of the full network."""
    return [(s, b, STAGE_STRIDES[s] if b == 0 else 1) for s in range(len(STAGE_WIDTHS)) for b in range(max(DEPTHS))]


class TinyElasticNet(nn.Module):
    """The weight-sharing network; ``forward(x, config)`` runs the sub-network ``config`` on the shared weights."""

    def __init__(self) -> None:
        super().__init__()
        k_max = max(KERNELS)
        self.stem = nn.Conv2d(1, STEM_WIDTH, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(STEM_WIDTH)
        self.dw = nn.ModuleList()
        self.dw_bn = nn.ModuleList()
        self.pw = nn.ModuleList()
        self.pw_bn = nn.ModuleList()
        in_max = STEM_WIDTH
        for stage, index, stride in _block_layout():
            out_max = max(STAGE_WIDTHS[stage])
            self.dw.append(nn.Conv2d(in_max, in_max, k_max, stride, k_max // 2, groups=in_max, bias=False))
            self.dw_bn.append(nn.BatchNorm2d(in_max))
            self.pw.append(nn.Conv2d(in_max, out_max, 1, bias=False))
            self.pw_bn.append(nn.BatchNorm2d(out_max))
            in_max = out_max
        self.classifier = nn.Linear(in_max, N_CLASSES)

    @staticmethod
    def _bn(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
        c = x.shape[1]
        return F.batch_norm(x, bn.running_mean[:c], bn.running_var[:c], bn.weight[:c], bn.bias[:c],
                            bn.training, bn.momentum, bn.eps)

    def active_blocks(self, config: Dict[str, Any]) -> List[Tuple[int, int, int, int, int]]:
        """(block index, stride, in width, out width, kernel) of the blocks ``config`` keeps."""
        blocks = []
        width = STEM_WIDTH
        for i, (stage, index, stride) in enumerate(_block_layout()):
            if index < config[f"d_{stage}"]:
                out = config[f"w_{stage}"]
                blocks.append((i, stride, width, out, config[f"k_{stage}"]))
                width = out
        return blocks

    def forward(self, x: torch.Tensor, config: Dict[str, Any]) -> torch.Tensor:
        x = F.relu(self._bn(F.conv2d(x, self.stem.weight, padding=1), self.stem_bn))
        for i, stride, c_in, c_out, k in self.active_blocks(config):
            start = (max(KERNELS) - k) // 2
            dw = self.dw[i].weight[:c_in, :, start:start + k, start:start + k]
            y = F.relu(self._bn(F.conv2d(x, dw, None, stride, k // 2, 1, c_in), self.dw_bn[i]))
            y = F.relu(self._bn(F.conv2d(y, self.pw[i].weight[:c_out, :c_in]), self.pw_bn[i]))
            x = x + y if (stride == 1 and c_in == c_out and i % max(DEPTHS) > 0) else y
        x = x.mean(dim=(2, 3))
        return F.linear(x, self.classifier.weight[:, :x.shape[1]], self.classifier.bias)


class TinyBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.dw = nn.Conv2d(c_in, c_in, k, stride, k // 2, groups=c_in, bias=False)
        self.dw_bn = nn.BatchNorm2d(c_in)
        self.pw = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.pw_bn = nn.BatchNorm2d(c_out)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.pw_bn(self.pw(F.relu(self.dw_bn(self.dw(x))))))
        return x + y if self.residual else y


class TinySubNet(nn.Module):
    """A standalone tiny sub-network (plain convolutions, no slicing at run time)."""

    def __init__(self, blocks: List[Tuple[int, int, int, int, int]]) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, STEM_WIDTH, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(STEM_WIDTH)
        self.blocks = nn.ModuleList(
            TinyBlock(c_in, c_out, k, stride, stride == 1 and c_in == c_out and i % max(DEPTHS) > 0)
            for i, stride, c_in, c_out, k in blocks)
        self.classifier = nn.Linear(blocks[-1][3], N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem_bn(self.stem(x)))
        for block in self.blocks:
            x = block(x)
        return self.classifier(x.mean(dim=(2, 3)))


def _copy_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d) -> None:
    c = dst.num_features
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(dst, name).data.copy_(getattr(src, name).data[:c])


def slice_subnet(net: TinyElasticNet, config: Dict[str, Any]) -> TinySubNet:
    """The sub-network ``config`` with weights (and batch-norm statistics) copied out of ``net``."""
    blocks = net.active_blocks(config)
    sub = TinySubNet(blocks)
    sub.stem.weight.data.copy_(net.stem.weight.data)
    _copy_bn(sub.stem_bn, net.stem_bn)
    for block, (i, _stride, c_in, c_out, k) in zip(sub.blocks, blocks):
        start = (max(KERNELS) - k) // 2
        block.dw.weight.data.copy_(net.dw[i].weight.data[:c_in, :, start:start + k, start:start + k])
        _copy_bn(block.dw_bn, net.dw_bn[i])
        block.pw.weight.data.copy_(net.pw[i].weight.data[:c_out, :c_in])
        _copy_bn(block.pw_bn, net.pw_bn[i])
    sub.classifier.weight.data.copy_(net.classifier.weight.data[:, :blocks[-1][3]])
    sub.classifier.bias.data.copy_(net.classifier.bias.data)
    return sub.eval()


def load_tiny_weights(net: TinyElasticNet, path: Path) -> Dict[str, Any]:
    """Load an ``.npz`` written by scripts/train_tiny.py; returns its metadata (the training record)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read tiny weights {str(path)!r} ({exc}); give an .npz from scripts/train_tiny.py")
    meta = json.loads(bytes(arrays.pop("__meta__")).decode()) if "__meta__" in arrays else {}
    state = net.state_dict()
    if set(arrays) != set(state) - {k for k in state if k.endswith("num_batches_tracked")}:
        missing = sorted(set(state) - set(arrays))[:3]
        raise UsageError(f"{str(path)!r} is not a tiny checkpoint (missing e.g. {missing})")
    for key, value in arrays.items():
        state[key] = torch.from_numpy(value.astype(np.float32))
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise UsageError(f"{str(path)!r} does not fit this tiny network ({str(exc).splitlines()[1].strip()}); "
                         "retrain with scripts/train_tiny.py") from None
    return meta


class TinySuperNet(SuperNet):
    name = "tiny"

    def __init__(self, weights: Optional[str] = None) -> None:
        super().__init__(weights)
        self.space = tiny_space()
        self.net = TinyElasticNet().eval()
        path = self.weights_path or WEIGHTS_FILE
        if not path.is_file():
            raise UsageError(f"tiny weights {str(path)!r} are missing; run `python scripts/train_tiny.py`")
        self.training_record = load_tiny_weights(self.net, path)
        self._split: Optional[Tuple[np.ndarray, ...]] = None
        self._accuracy_cache: Dict[str, float] = {}

    def _default_weights_id(self) -> str:
        return "builtin:" + str(self.training_record.get("weights_sha256", "tiny"))

    def split(self) -> Tuple[np.ndarray, ...]:
        if self._split is None:
            self._split = digits_split()
        return self._split

    def slice(self, config: Dict[str, Any]) -> TinySubNet:
        """The sliced sub-network with the shared batch-norm statistics (what ``net.forward(x, config)`` computes)."""
        return slice_subnet(self.net, self.validate(config))

    def _extract(self, config: Dict[str, Any]) -> TinySubNet:
        from fleetnas.host.accuracy.bn_calibration import recalibrate_bn

        # channels_last: PyTorch's CPU depthwise convolutions run 2-3x faster in this layout
        sub = slice_subnet(self.net, config).to(memory_format=torch.channels_last)
        images = self.split()[0][:CALIBRATION_IMAGES]
        # (extract() runs this on one thread, so the statistics do not depend on the caller's thread count)
        recalibrate_bn(sub, [prepare_images(images, config["res"]).contiguous(memory_format=torch.channels_last)])
        return sub.to(memory_format=torch.contiguous_format)

    def _example_input(self, config: Dict[str, Any]) -> torch.Tensor:
        return torch.randn(1, 1, config["res"], config["res"], generator=torch.Generator().manual_seed(0))

    def calibration_inputs(self, config: Dict[str, Any], count: int = 8) -> List[torch.Tensor]:
        """Training digits (never the held-out split accuracy is measured on), one image per input."""
        config = self.validate(config)
        images = prepare_images(self.split()[0][:count], config["res"])
        return [images[i:i + 1].contiguous() for i in range(len(images))]

    def macs(self, config: Dict[str, Any]) -> int:
        """Closed form (searches call this often); tests check it against the hook count."""
        config = self.validate(config)
        r = config["res"]
        total = r * r * STEM_WIDTH * 9
        for _i, stride, c_in, c_out, k in self.net.active_blocks(config):
            r = (r + stride - 1) // stride
            total += r * r * c_in * (k * k + c_out)
        return total + c_out * N_CLASSES

    def params(self, config: Dict[str, Any]) -> int:
        config = self.validate(config)
        total = STEM_WIDTH * 9 + 2 * STEM_WIDTH
        for _i, _stride, c_in, c_out, k in self.net.active_blocks(config):
            total += c_in * k * k + 2 * c_in + c_in * c_out + 2 * c_out
        return total + c_out * N_CLASSES + N_CLASSES

    def evaluator(self, data: Any = None) -> "TinySuperNet":
        if data is not None:
            raise UsageError("the tiny super-network evaluates on its built-in digits split; it takes no dataset")
        return self

    def validation_batches(self, config: Dict[str, Any], data: Any = None) -> List[Tuple[np.ndarray, np.ndarray]]:
        """The held-out digits ``evaluate`` scores, as one (images, labels) batch."""
        self.evaluator(data)   # refuses a dataset, as evaluate does
        config = self.validate(config)
        _, _, test_x, test_y = self.split()
        return [(prepare_images(test_x, config["res"]).numpy(), test_y)]

    def evaluate(self, config: Dict[str, Any]) -> float:
        """Top-1 accuracy on the held-out digits (cached per configuration)."""
        key = self.key(config)
        if key not in self._accuracy_cache:
            config = self.validate(config)
            sub = self.extract(config).to(memory_format=torch.channels_last)
            _, _, test_x, test_y = self.split()
            images = prepare_images(test_x, config["res"]).contiguous(memory_format=torch.channels_last)
            with torch.no_grad():
                pred = sub(images).argmax(1).numpy()
            self._accuracy_cache[key] = float((pred == test_y).mean())
        return self._accuracy_cache[key]
