"""Finding super-networks by name: built-ins, entry points, errors."""
from __future__ import annotations

import pytest

from fleetnas.host.errors import UsageError
from fleetnas.host.supernets import base
from fleetnas.host.supernets.base import SuperNet, get_supernet, list_supernets


def test_builtins_are_listed():
    assert {"tiny", "ofa-mbv3"} <= set(list_supernets())


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UsageError, match="available: .*tiny"):
        get_supernet("nope")


def test_an_entry_point_plugs_in_a_supernet_without_editing_fleetnas(monkeypatch):
    import torch

    from fleetnas.host.search.space import Choice, SearchSpace

    class WideMLP(SuperNet):
        name = "wide-mlp"

        def __init__(self, weights=None):
            super().__init__(weights)
            self.space = SearchSpace([Choice("width", (4, 8))])
            self.full = torch.nn.Linear(3, 8)

        def _extract(self, config):
            sub = torch.nn.Linear(3, config["width"])
            sub.weight.data.copy_(self.full.weight[:config["width"]])
            sub.bias.data.copy_(self.full.bias[:config["width"]])
            return sub

        def _example_input(self, config):
            return torch.ones(1, 3)

    class FakeEntryPoint:
        name = "wide-mlp"

        def load(self):
            return WideMLP

    monkeypatch.setattr(base.SUPERNETS, "_installed", lambda: {"wide-mlp": FakeEntryPoint()})
    assert "wide-mlp" in list_supernets()
    net = get_supernet("wide-mlp")
    assert net.macs({"width": 4}) == 12 and net.params({"width": 8}) == 32
    assert net.extract({"width": 4}).training is False


def test_registered_entry_points_resolve_to_the_builtins():
    """pyproject registers the built-ins; an installed checkout must resolve them through the entry points."""
    eps = base.SUPERNETS._installed()
    if not eps:
        pytest.skip("fleetnas is not pip-installed here (no entry points); the built-in table is used")
    for name in ("tiny", "ofa-mbv3"):
        assert name in eps, f"{name} missing from [project.entry-points.\"fleetnas.supernets\"]"
        assert issubclass(eps[name].load(), SuperNet)
