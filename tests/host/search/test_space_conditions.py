"""Declarative ``ActiveIf`` conditions: the derived canonical form, masks and keys match a hand-written canonicaliser,
batches match rows, and bad declarations fail naming the problem."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fleetnas.host.search import encoding, operators
from fleetnas.host.search.space import ActiveIf, Choice, Integer, SearchSpace
from fleetnas.host.search.history import History
from tests.host.search.test_space import ofa_like_space


def ofa_like_conditions_space() -> SearchSpace:
    params = []
    for block in range(4):
        params += [Choice(f"ks_{block}", (3, 5, 7)), Choice(f"e_{block}", (3, 4, 6))]
    params += [Integer("d_0", 2, 4), Choice("res", (128, 160, 192, 224))]
    # Block b runs when the depth is at least b + 1 (blocks 0 and 1 always do: depth >= 2).
    return SearchSpace(params, conditions=[ActiveIf(f"{g}_{b}", "d_0", b + 1) for b in range(4) for g in ("ks", "e")])


def test_conditions_match_the_hand_written_canonicaliser():
    by_hand, declared = ofa_like_space(), ofa_like_conditions_space()
    genes = operators.sample_genes(by_hand, np.random.default_rng(3), 2000)
    assert np.array_equal(by_hand.canonical_genes(genes), declared.canonical_genes(genes))
    assert np.array_equal(encoding.onehot(by_hand, genes), encoding.onehot(declared, genes))
    assert np.array_equal(encoding.ordinal(by_hand, genes), encoding.ordinal(declared, genes))
    for row in genes[:200]:
        config = {p.name: p.value(i) for p, i in zip(by_hand.params, row)}
        assert by_hand.key(config) == declared.key(config)
        assert by_hand.inactive_names(config) == declared.inactive_names(config)
        assert declared.from_genes(row) == by_hand.from_genes(row)


def test_batch_and_row_paths_agree():
    space = ofa_like_conditions_space()
    genes = operators.sample_genes(space, np.random.default_rng(4), 300)
    canonical = space.canonical_genes(genes)
    for row, canon in zip(genes, canonical):
        assert np.array_equal(space.to_genes(space.from_genes(row)), canon)
    config = {**space.from_genes(genes[0]), "d_0": 2}
    assert set(space.inactive_names(config)) == {"ks_2", "e_2", "ks_3", "e_3"}


def test_nested_conditions_follow_their_gate():
    space = SearchSpace([Choice("layers", (1, 2)), Choice("heads_1", (4, 8)), Choice("qk_1", (16, 32))],
                        conditions=[ActiveIf("qk_1", "heads_1", 8), ActiveIf("heads_1", "layers", 2)])
    assert space.inactive_names({"layers": 1, "heads_1": 8, "qk_1": 32}) == ("heads_1", "qk_1")
    assert space.inactive_names({"layers": 2, "heads_1": 4, "qk_1": 32}) == ("qk_1",)
    assert space.canonical({"layers": 1, "heads_1": 8, "qk_1": 32}) == {"layers": 1, "heads_1": 4, "qk_1": 16}
    assert space.canonical_genes(np.array([[0, 1, 1], [1, 1, 1]])).tolist() == [[0, 0, 0], [1, 1, 1]]


def test_describe_round_trip_keeps_conditions():
    space = ofa_like_conditions_space()
    again = SearchSpace.from_describe(json.loads(json.dumps(space.describe())))
    assert again.conditions == space.conditions
    genes = operators.sample_genes(space, np.random.default_rng(5), 100)
    assert np.array_equal(again.canonical_genes(genes), space.canonical_genes(genes))


@pytest.mark.parametrize("conditions, message", [
    ([ActiveIf("ks_9", "d_0", 2)], "no parameter 'ks_9'"),
    ([ActiveIf("d_0", "d_0", 2)], "cannot gate itself"),
    ([ActiveIf("a", "b", 1), ActiveIf("b", "a", 1)], "cycle"),
    ([ActiveIf("a", "name", 1)], "cannot compare"),
])
def test_bad_conditions_are_named(conditions, message):
    params = [Integer("a", 0, 2), Integer("b", 0, 2), Integer("d_0", 1, 3), Choice("ks_0", (3, 5)),
              Choice("name", ("x", "y"))]
    with pytest.raises(ValueError, match=message):
        SearchSpace(params, conditions=conditions)


def test_conditions_exclude_callables():
    with pytest.raises(ValueError, match="either conditions or canonicalize"):
        SearchSpace([Integer("a", 0, 2), Integer("b", 0, 2)], canonicalize=lambda c: c,
                    conditions=[ActiveIf("a", "b", 1)])


def test_history_seen_mask_matches_seen():
    space = ofa_like_conditions_space()
    history = History(space, ())
    rng = np.random.default_rng(6)
    proposed = space.canonical_genes(operators.sample_genes(space, rng, 30))
    for row in proposed[:20]:
        config = space.from_genes(row)
        # A non-canonical spelling of the same candidate is the same candidate.
        history.add_pending(space.key(config), {**config, "ks_3": 7} if config["d_0"] < 4 else config)
    mask = history.seen_mask(proposed)
    assert mask.tolist() == [history.seen(space.key_of_canonical_genes(r)) for r in proposed]
    assert mask[:20].all()
