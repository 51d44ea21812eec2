"""SearchSpace invariants: validation, canonical identity, genes, encodings, operators, describe round trip."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fleetnas.host.search import encoding, operators
from fleetnas.host.search.space import Choice, Integer, SearchSpace


def _ofa_like_canonicalize(config):
    # Blocks beyond the stage depth are left out: their genes take the first option.
    c = dict(config)
    for block in range(c["d_0"], 4):
        c[f"ks_{block}"] = 3
        c[f"e_{block}"] = 3
    return c


def ofa_like_space() -> SearchSpace:
    params = []
    for block in range(4):
        params += [Choice(f"ks_{block}", (3, 5, 7)), Choice(f"e_{block}", (3, 4, 6))]
    params += [Integer("d_0", 2, 4), Choice("res", (128, 160, 192, 224))]
    return SearchSpace(params, canonicalize=_ofa_like_canonicalize)


def test_brief_example_api():
    space = SearchSpace(
        [Choice("ks_0", (3, 5, 7)), Choice("e_0", (3, 4, 6)), Integer("d_0", 2, 4), Choice("res", (128, 160, 192, 224))],
        canonicalize=None,
    )
    assert space.names == ("ks_0", "e_0", "d_0", "res")
    assert space.size == 3 * 3 * 3 * 4
    config = space.sample(np.random.default_rng(0))
    assert space.validate(config) == config
    assert json.loads(space.key(config)) == config
    assert list(json.loads(space.key(config))) == sorted(config)


def test_validate_names_the_bad_param_and_its_allowed_values():
    space = ofa_like_space()
    good = space.sample(np.random.default_rng(1))
    with pytest.raises(ValueError, match=r"'ks_0'.*\[3, 5, 7\]"):
        space.validate({**good, "ks_0": 4})
    with pytest.raises(ValueError, match=r"'d_0'.*2\.\.4"):
        space.validate({**good, "d_0": 5})
    with pytest.raises(ValueError, match=r"'d_0'.*not allowed"):
        space.validate({**good, "d_0": "3"})  # strings never match numbers
    missing = dict(good)
    del missing["res"]
    with pytest.raises(ValueError, match=r"missing parameter 'res'.*128"):
        space.validate(missing)
    with pytest.raises(ValueError, match=r"unknown parameter.*'bogus'"):
        space.validate({**good, "bogus": 1})


def test_numpy_scalars_are_accepted_and_returned_as_plain_values():
    space = ofa_like_space()
    config = {name: np.int64(v) for name, v in space.sample(np.random.default_rng(2)).items()}
    clean = space.validate(config)
    assert all(type(v) is int for v in clean.values())


def test_canonicalization_makes_equivalent_configs_one_candidate():
    space = ofa_like_space()
    base = {**space.sample(np.random.default_rng(3)), "d_0": 2}
    other = {**base, "ks_3": 7, "e_2": 6}  # blocks 2 and 3 are left out at depth 2
    assert space.key(base) == space.key(other)
    assert space.key({**base, "ks_1": 7}) != space.key({**base, "ks_1": 5})
    assert set(space.inactive_names(base)) == {"ks_2", "e_2", "ks_3", "e_3"}
    feats = encoding.encode_configs(space, [base, other])
    assert np.array_equal(feats[0], feats[1])


def test_sample_is_seeded_and_canonical():
    space = ofa_like_space()
    a = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    b = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a == b
    rng = np.random.default_rng(8)
    for _ in range(50):
        c = space.sample(rng)
        assert space.canonical(c) == c


def test_genes_round_trip_and_clip():
    space = ofa_like_space()
    rng = np.random.default_rng(4)
    for _ in range(20):
        c = space.sample(rng)
        assert space.from_genes(space.to_genes(c)) == c
    clipped = operators.clip_genes(space, np.array([[-0.7, 2.6, 1.4, 0, 0, 0, 0, 0, 9.0, 3.49]]))
    assert clipped.tolist() == [[0, 2, 1, 0, 0, 0, 0, 0, 2, 3]]
    with pytest.raises(ValueError, match="out of range"):
        space.from_genes(np.array([3, 0, 0, 0, 0, 0, 0, 0, 0, 0]))


def test_onehot_and_ordinal_encodings():
    space = SearchSpace([Choice("op", ("a", "b", "c")), Integer("d", 1, 3)])
    genes = np.array([[0, 2], [2, 1]])
    assert encoding.onehot(space, genes).tolist() == [[1, 0, 0, 0, 0, 1], [0, 0, 1, 0, 1, 0]]
    assert encoding.ordinal(space, genes).tolist() == [[0.0, 1.0], [1.0, 0.5]]
    ofa = ofa_like_space()
    masked = encoding.encode_configs(ofa, [{**ofa.sample(np.random.default_rng(0)), "d_0": 2}])
    # 4 inactive genes of 3 options are all zeros: 10 params - 4 inactive = 6 ones.
    assert masked.sum() == 6


def test_mutation_and_crossover_respect_the_space():
    space = ofa_like_space()
    rng = np.random.default_rng(5)
    a, b = space.sample(rng), space.sample(rng)
    for _ in range(30):
        m = operators.mutate(space, a, rng, prob=0.3)
        x = operators.crossover(space, a, b, rng)
        assert space.validate(m) == m and space.validate(x) == x
        assert all(x[n] in (a[n], b[n]) or n in space.inactive_names(x) for n in space.names)
    genes = space.to_genes(a)[None, :].repeat(200, axis=0)
    mutated = operators.mutate_genes(space, genes, rng, prob=1.0)
    assert np.all(mutated != genes)  # prob 1: every gene moves to a different option
    assert np.all((mutated >= 0) & (mutated < space.n_options))


def test_describe_round_trip_is_json():
    space = ofa_like_space()
    d = json.loads(json.dumps(space.describe()))
    again = SearchSpace.from_describe(d)
    assert again.names == space.names and again.params == space.params and again.size == space.size
    assert d["canonicalized"] is True


def test_huge_space_size_is_exact():
    space = SearchSpace([Choice(f"g{i}", (1, 2, 3)) for i in range(60)])
    assert space.size == 3 ** 60


def test_first_occurrences_matches_numpy_unique_on_wide_rows():
    # 40 genes of 7 options: 7**40 does not fit one int64, so rows span several packed words.
    space = SearchSpace([Choice(f"g{i}", tuple(range(7))) for i in range(40)])
    rng = np.random.default_rng(1)
    genes = operators.sample_genes(space, rng, 300)
    genes = np.vstack([genes, genes[rng.integers(0, 300, 500)]])[rng.permutation(800)]
    _, first = np.unique(genes, axis=0, return_index=True)
    assert space.first_occurrences(genes).tolist() == sorted(first.tolist())
    assert space.first_occurrences(genes[:0]).tolist() == []
