"""The SuperNet protocol and the registry that finds super-networks by name.

A super-network is a weight-sharing network whose sub-networks are named by a configuration of its search space.
Everything the host needs from one is here; implementations fill in the ``_``-prefixed hooks and the public methods
validate and canonicalise the configuration first, so ``extract({"ks_0": 3, ...})`` fails with a message naming the
bad parameter instead of a shape error deep in torch.

Plugging in your own (a package of yours, no fleetnas edit)::

    # mypkg/mynet.py
    import torch
    from fleetnas.host.search.space import SearchSpace, Choice
    from fleetnas.host.supernets.base import SuperNet

    class WideMLP(SuperNet):
        name = "wide-mlp"

        def __init__(self, weights=None):
            super().__init__(weights)
            self.space = SearchSpace([Choice("width", (64, 128, 256))])
            self.full = torch.nn.Linear(32, 256)       # load `weights` here when given

        def _extract(self, config):
            w = config["width"]
            sub = torch.nn.Linear(32, w)
            sub.weight.data.copy_(self.full.weight[:w]); sub.bias.data.copy_(self.full.bias[:w])
            return sub

        def _example_input(self, config):
            return torch.randn(1, 32)

    # mypkg's pyproject.toml
    [project.entry-points."fleetnas.supernets"]
    wide-mlp = "mypkg.mynet:WideMLP"

Then ``get_supernet("wide-mlp")`` and ``fleetnas export --supernet wide-mlp ...`` work. ``macs``/``params`` default to
a count over the extracted module (forward hooks, see ``counting.py``); override them with a closed form when a
search calls them often. ``evaluator(data)`` is the accuracy hook: return an object with ``evaluate(config) ->
float`` (``fleetnas.host.accuracy.AccuracyEvaluator`` does batch-norm recalibration and caching for image nets).
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from fleetnas.host.errors import UsageError
from fleetnas.host.plugins import Registry

ENTRY_POINT_GROUP = "fleetnas.supernets"
# The built-ins, used when the package metadata is missing (a plain source checkout on sys.path).
BUILTIN = {
    "ofa-mbv3": "fleetnas.host.supernets.ofa_mbv3:OFAMobileNetV3SuperNet",
    "ofa-resnet50": "fleetnas.host.supernets.ofa_resnet:OFAResNet50SuperNet",
    "tiny": "fleetnas.host.supernets.tiny:TinySuperNet",
    "transformer": "fleetnas.host.supernets.transformer:TransformerSuperNet",
}
SUPERNETS = Registry(ENTRY_POINT_GROUP, BUILTIN, "super-network")

Inputs = Union["torch.Tensor", Tuple["torch.Tensor", ...]]  # noqa: F821 (torch is imported lazily)


class SuperNet:
    """Base class of every super-network; see the module docstring for the contract and an example."""

    name: str = ""
    space: Any = None                     # a fleetnas.host.search.space.SearchSpace
    input_names: Sequence[str] = ("input",)
    output_names: Sequence[str] = ("logits",)

    def __init__(self, weights: Optional[Union[str, Path]] = None) -> None:
        self.weights_path = Path(weights).expanduser() if weights is not None else None
        if self.weights_path is not None and not self.weights_path.is_file():
            raise UsageError(f"weights file {str(weights)!r} does not exist; give the path of a checkpoint file")
        self._macs_cache: Dict[str, Tuple[int, int]] = {}

    # --- what implementations provide ------------------------------------------------------------------------------
    def _extract(self, config: Dict[str, Any]):
        raise NotImplementedError

    def _example_input(self, config: Dict[str, Any]) -> Inputs:
        raise NotImplementedError

    def evaluator(self, data: Any = None):
        """The accuracy hook: an object with ``evaluate(config) -> float`` (top-1 in [0, 1]) over ``data``."""
        raise UsageError(f"super-network {self.name!r} has no accuracy evaluator; implement evaluator(data)")

    # --- public API: validate first, then delegate ------------------------------------------------------------------
    def validate(self, config: Mapping[str, Any]) -> Dict[str, Any]:
        try:
            return self.space.validate(config)
        except ValueError as exc:
            raise UsageError(f"{self.name}: {exc}") from None

    def key(self, config: Mapping[str, Any]) -> str:
        """Canonical JSON of the configuration: the identity of a sub-network."""
        try:
            return self.space.key(config)
        except ValueError as exc:
            raise UsageError(f"{self.name}: {exc}") from None

    def extract(self, config: Mapping[str, Any]):
        """A standalone ``torch.nn.Module`` with its own copy of the sliced weights, in eval mode.

        Runs on one torch thread: weights computed during extraction (OFA's kernel transforms, tiny's recalibrated
        BN statistics) would otherwise round differently with the caller's thread count, and the exported bytes,
        whose sha256 keys the measurement cache, must not depend on it.
        """
        import torch

        config = self.validate(config)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            module = self._extract(config)
        finally:
            torch.set_num_threads(threads)
        return module.eval()

    def example_input(self, config: Mapping[str, Any]) -> Inputs:
        """Batch-1 input(s) the extracted module takes (shape may depend on the config, e.g. its resolution)."""
        return self._example_input(self.validate(config))

    def macs(self, config: Mapping[str, Any]) -> int:
        """Multiply-accumulates of one batch-1 inference."""
        return self._counts(config)[0]

    def params(self, config: Mapping[str, Any]) -> int:
        """Parameters of the extracted sub-network (every tensor in ``module.parameters()``)."""
        return self._counts(config)[1]

    def _counts(self, config: Mapping[str, Any]) -> Tuple[int, int]:
        key = self.key(config)
        if key not in self._macs_cache:
            from fleetnas.host.supernets.counting import count_macs

            module = self.extract(config)
            macs = count_macs(module, self.example_input(config))
            self._macs_cache[key] = (macs, sum(p.numel() for p in module.parameters()))
        return self._macs_cache[key]

    def calibration_inputs(self, config: Mapping[str, Any], count: int = 8) -> List[Inputs]:
        """Batch-1 inputs that int8 exporters calibrate activation ranges on.

        The default draws seeded normal noise shaped like ``example_input``; super-networks with built-in data
        override it with real samples (quantization ranges fitted to noise cost accuracy on real images).
        """
        import torch

        example = self.example_input(config)
        generator = torch.Generator().manual_seed(0)

        def like(t):
            return torch.randn(t.shape, generator=generator, dtype=t.dtype) if t.is_floating_point() else t.clone()

        if isinstance(example, tuple):
            return [tuple(like(t) for t in example) for _ in range(count)]
        return [like(example) for _ in range(count)]

    def validation_batches(self, config: Mapping[str, Any], data: Any = None) -> Iterable[Tuple[Any, Any]]:
        """(images, labels) batches the accuracy of ``config`` is evaluated on: an int8 model exported from the
        sub-network is evaluated on these (fleetnas.host.accuracy.deployed). Default: the evaluator's own."""
        evaluator = self.evaluator(data)
        if not callable(getattr(evaluator, "validation_batches", None)):
            raise UsageError(f"super-network {self.name!r} cannot evaluate an exported model's accuracy: implement "
                             f"validation_batches(config, data), or search with --precision fp32")
        return evaluator.validation_batches(config)

    def accuracy(self, config: Mapping[str, Any], data: Any = None) -> float:
        return float(self.evaluator(data).evaluate(config))

    @property
    def weights_id(self) -> str:
        """Identifies the weights in export cache keys: the checkpoint's sha256, or how the weights were made."""
        if self.weights_path is None:
            return self._default_weights_id()
        digest = hashlib.sha256()
        with open(self.weights_path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return "sha256:" + digest.hexdigest()

    def _default_weights_id(self) -> str:
        return "random-init-seed0"

    @property
    def random_weights(self) -> bool:
        """No checkpoint given and the default weights are a seeded random initialisation (``_default_weights_id``
        starts with ``random-init``): latency is real, accuracy is chance level."""
        return self.weights_path is None and self._default_weights_id().startswith("random-init")

    def describe(self) -> Dict[str, Any]:
        return {"name": self.name, "space": self.space.describe(), "weights": self.weights_id,
                "inputs": list(self.input_names), "outputs": list(self.output_names)}


def random_weights_message(supernet: SuperNet) -> str:
    return (f"{supernet.name} has random weights (no --weights): latencies are real, accuracies are meaningless "
            f"(chance level); give --weights CHECKPOINT (the super-networks README says where the published ones are)")


def check_weights(supernet: SuperNet, allow_random: bool, stream=None) -> None:
    """Before a search: refuse random weights unless allowed, and then say loudly (one line) what they mean."""
    if not supernet.random_weights:
        return
    if not allow_random:
        raise UsageError(random_weights_message(supernet) + ", or add --allow-random-weights to search latency only")
    print(f"warning: {random_weights_message(supernet)}", file=stream or sys.stderr)


def warn_random_weights(supernet: SuperNet, stream=None) -> None:
    """One warning line on stderr when ``supernet`` has random weights (export, measure: latency stays valid)."""
    if supernet.random_weights:
        print(f"warning: {random_weights_message(supernet)}", file=stream or sys.stderr)


def list_supernets() -> List[str]:
    """Names of every super-network: the built-ins plus any registered under the ``fleetnas.supernets`` group."""
    return SUPERNETS.names()


def get_supernet(name: str, weights: Optional[Union[str, Path]] = None) -> SuperNet:
    """Build the super-network registered as ``name`` (loading ``weights`` when given)."""
    factory = SUPERNETS.load(name)
    supernet = factory(weights=weights)
    if not isinstance(supernet, SuperNet):
        raise UsageError(f"entry point {name!r} built a {type(supernet).__name__}, not a fleetnas SuperNet")
    return supernet
