"""Extracted weights are bit-identical whatever the caller's torch thread count (exports are keyed by sha256)."""
from __future__ import annotations

import pytest
import torch

from fleetnas.host.supernets import get_supernet


def extracted_with_threads(supernet, config, threads):
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        state = supernet.extract(config).state_dict()
        assert torch.get_num_threads() == threads      # extract restores the caller's setting
        return state
    finally:
        torch.set_num_threads(saved)


def test_extract_runs_the_implementation_on_one_thread_and_restores_the_callers():
    from fleetnas.host.search.space import Choice, SearchSpace
    from fleetnas.host.supernets.base import SuperNet

    seen = []

    class Probe(SuperNet):
        name = "probe"
        space = SearchSpace([Choice("w", (1,))])

        def _extract(self, config):
            seen.append(torch.get_num_threads())
            return torch.nn.Identity()

    extracted_with_threads(Probe(), {"w": 1}, 3)
    assert seen == [1]


@pytest.mark.parametrize("name", ["tiny", pytest.param("ofa-mbv3", marks=pytest.mark.slow)])
def test_extraction_does_not_depend_on_the_thread_count(name):
    supernet = get_supernet(name)
    if name == "ofa-mbv3":   # perturb the kernel-transform matrices (identity at init) so they really compute
        with torch.no_grad():
            for pname, p in supernet.net.named_parameters():
                if pname.endswith("_matrix"):
                    p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.1)
    # smallest kernels (both transforms), largest resolution/width (the most BN statistics to recalibrate)
    config = {p.name: (min(p.options) if p.name.startswith(("ks_", "k_")) else max(p.options))
              for p in supernet.space.params}
    one, three = extracted_with_threads(supernet, config, 1), extracted_with_threads(supernet, config, 3)
    assert all(torch.equal(one[k], three[k]) for k in one)
