"""Top-1 accuracy of sub-networks over a user's dataset, with batch-norm recalibration, cached per configuration.

``data`` is either an image folder (one sub-folder per class, sorted names = class indices, the torchvision
``ImageFolder`` layout) or a callable ``data(resolution) -> iterable of (images, labels)`` batches (NCHW float
tensors already normalised, int64 labels). Before evaluating, BN statistics are recomputed on ``calib_batches``
batches of ``calib_data`` (default: the first batches of ``data``; OFA uses a slice of the training set;
``calib_batches=0`` keeps the checkpoint's statistics).
Results are kept in memory and, with ``cache_path``, in a JSON file keyed by super-network, weights and config.
"""
from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np

from fleetnas.host.accuracy.bn_calibration import recalibrate_bn
from fleetnas.host.errors import UsageError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
Data = Union[str, Path, Callable[[int], Iterable[Tuple[Any, Any]]]]


class ImageFolder:
    """Batches from a class-per-sub-folder image tree: resize shorter side to res/0.875, centre crop, normalise."""

    def __init__(self, root: Union[str, Path], batch_size: int = 64) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise UsageError(f"dataset folder {str(root)!r} does not exist; "
                             "give a folder with one sub-folder per class")
        self.classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        self.samples = [(f, i) for i, c in enumerate(self.classes) for f in sorted((self.root / c).iterdir())
                        if f.suffix.lower() in IMAGE_SUFFIXES]
        if not self.samples:
            raise UsageError(f"no images (.jpg/.png/...) in class sub-folders of {str(self.root)!r}")
        self.batch_size = batch_size

    def load(self, path: Path, res: int) -> np.ndarray:
        from PIL import Image

        with Image.open(path) as img:
            img = img.convert("RGB")
            scale = res / 0.875 / min(img.size)
            img = img.resize((max(res, round(img.width * scale)), max(res, round(img.height * scale))),
                             Image.BILINEAR)
            left, top = (img.width - res) // 2, (img.height - res) // 2
            arr = np.asarray(img.crop((left, top, left + res, top + res)), dtype=np.float32) / 255.0
        return ((arr - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1).astype(np.float32)

    def __call__(self, res: int) -> Iterator[Tuple[Any, Any]]:
        import torch

        for start in range(0, len(self.samples), self.batch_size):
            chunk = self.samples[start:start + self.batch_size]
            images = np.stack([self.load(path, res) for path, _ in chunk])
            yield torch.from_numpy(images), torch.tensor([label for _, label in chunk])


def as_batches(data: Optional[Data], supernet_name: str) -> Callable[[int], Iterable[Tuple[Any, Any]]]:
    if data is None:
        raise UsageError(f"accuracy of {supernet_name} needs validation data: an image folder (one sub-folder per "
                         "class) or a callable resolution -> (images, labels) batches")
    if isinstance(data, (str, Path)):
        return ImageFolder(data)
    if not callable(data):
        raise UsageError(f"dataset must be a folder path or a callable, not {type(data).__name__}")
    return data


class AccuracyEvaluator:
    def __init__(self, supernet, data: Optional[Data], calib_data: Optional[Data] = None, calib_batches: int = 4,
                 cache_path: Optional[Union[str, Path]] = None, default_res: int = 224) -> None:
        self.supernet = supernet
        self.data = as_batches(data, supernet.name)
        self.calib_data = as_batches(calib_data, supernet.name) if calib_data is not None else self.data
        self.calib_batches = calib_batches
        self.default_res = default_res
        self.cache_path = Path(cache_path) if cache_path is not None else None
        self._cache: Dict[str, float] = {}
        if self.cache_path is not None and self.cache_path.is_file():
            self._cache = json.loads(self.cache_path.read_text())

    def _cache_key(self, config: Dict[str, Any]) -> str:
        return f"{self.supernet.name}|{self.supernet.weights_id}|{self.supernet.key(config)}"

    def evaluate(self, config: Dict[str, Any]) -> float:
        """Top-1 accuracy in [0, 1] of the sub-network ``config`` after BN recalibration."""
        import torch

        key = self._cache_key(config)
        if key in self._cache:
            return self._cache[key]
        config = self.supernet.validate(config)
        res = int(config.get("res", self.default_res))
        module = self.supernet.extract(config)
        if self.calib_batches > 0:  # 0: keep the checkpoint's statistics (e.g. a network without BN)
            recalibrate_bn(module, [images for images, _ in islice(self.calib_data(res), self.calib_batches)])
        correct = total = 0
        with torch.no_grad():
            for images, labels in self.data(res):
                correct += int((module(images).argmax(1) == labels).sum())
                total += int(len(labels))
        if total == 0:
            raise UsageError("the validation data yielded no batches")
        self._cache[key] = correct / total
        if self.cache_path is not None:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            self.cache_path.write_text(json.dumps(self._cache, indent=1, sort_keys=True))
        return self._cache[key]

    def validation_batches(self, config: Dict[str, Any]) -> Iterator[Tuple[Any, Any]]:
        """The (images, labels) batches ``evaluate`` scores ``config`` on (an exported model is scored on them)."""
        config = self.supernet.validate(config)
        return iter(self.data(int(config.get("res", self.default_res))))

    def evaluate_many(self, configs: List[Dict[str, Any]]) -> List[float]:
        return [self.evaluate(c) for c in configs]
