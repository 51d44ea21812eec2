"""The tactic contract (what to evaluate next), and ``make_tactic``: a tactic by name (`fleetnas.host.search.registry`).

A tactic never touches storage or devices. The `fleetnas.host.search.engine.Search` calls it as:

- ``propose(n, history) -> list[config]``: up to ``n`` *new* canonical configs (none in ``history.seen``). Fewer (or
  none) is a valid answer: a generational tactic waiting for the rest of its generation, or a space running out.
- ``observe(key, F_row_or_None, history)``: a result arrived (``None`` = evaluation failed). Results may arrive in any
  order and interleaved with ``propose`` calls.

Everything a tactic decides must be a function of its seed and the sequence of calls it received: that is what makes a
journal replay (resume) give the same proposals as an uninterrupted run. Objectives reach a tactic in minimisation
form (maximised objectives negated), one row per evaluated config in ``history``.

A tactic declares its options as a frozen dataclass in ``Options`` (see `fleetnas.host.search.options`); it receives
an instance, already validated. A package adds a tactic without editing fleetnas::

    @dataclass(frozen=True)
    class GreedyOptions:
        n_init: int = 10

    class GreedyTactic(Tactic):
        name = "greedy"
        Options = GreedyOptions
        def propose(self, n, history): ...

    # its pyproject.toml
    [project.entry-points."fleetnas.tactics"]
    greedy = "my_package.greedy:GreedyTactic"

and ``fleetnas bench --tactic greedy --tactic-option n_init=20`` runs it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Set, Type

import numpy as np

from fleetnas.host.search import operators
from fleetnas.host.search.history import History
from fleetnas.host.search.options import NoOptions, OptionError, from_mapping
from fleetnas.host.search.pareto import Objective
from fleetnas.host.search.registry import TACTICS
from fleetnas.host.search.space import Config, SearchSpace


class Tactic(ABC):
    """Base of every tactic: seeded, no storage, no I/O. Subclasses fill ``propose`` (and ``observe`` if stateful)."""

    name: ClassVar[str] = "base"
    Options: ClassVar[type] = NoOptions

    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], seed: int = 0,
                 options: Optional[Any] = None) -> None:
        if len(objectives) < 2:
            raise ValueError(f"a multi-objective search needs >= 2 objectives, got {len(objectives)}")
        if options is None:
            options = self.Options()
        if not isinstance(options, self.Options):
            raise OptionError(f"tactic {self.name!r} takes {self.Options.__name__}, not {type(options).__name__}")
        self.space = space
        self.objectives = tuple(objectives)
        self.seed = int(seed)
        self.options = options
        self.rng = np.random.default_rng(self.seed)
        self.round_reports: List[Dict[str, Any]] = []  # one JSON-able dict per decision round (predictor quality...)

    @abstractmethod
    def propose(self, n: int, history: History) -> List[Config]: ...

    def observe(self, key: str, F_row: Optional[np.ndarray], history: History) -> None:
        """Called after ``history`` recorded a result (None = failed)."""

    # Helpers shared by tactics ------------------------------------------------------------------------------------
    def random_new(self, n: int, history: History, taken: Optional[Set[str]] = None, max_tries: int = 50) -> List[Config]:
        """Up to n uniformly random configs never seen (sampling without replacement, by rejection)."""
        taken = set() if taken is None else taken
        out: List[Config] = []
        tries = 0
        while len(out) < n and tries < max_tries:
            tries += 1
            for genes in operators.sample_genes(self.space, self.rng, 2 * (n - len(out)) + 8):
                config = self.space.from_genes(genes)
                key = self.space.key(config)
                if key in taken or history.seen(key):
                    continue
                taken.add(key)
                out.append(config)
                if len(out) == n:
                    break
        return out


def tactic_class(name: str) -> Type[Tactic]:
    cls = TACTICS.load(name)
    if not (isinstance(cls, type) and issubclass(cls, Tactic)):
        raise OptionError(f"tactic {name!r} is registered as {cls!r}, which is not a subclass of "
                          "fleetnas.host.search.tactic.Tactic")
    return cls


def tactic_options(name: str, options: Optional[Mapping[str, Any]] = None) -> Any:
    """The validated options object of tactic ``name`` from an untyped dict (CLI flags, a stored run's settings)."""
    return from_mapping(tactic_class(name).Options, options, f"tactic {name!r}")


def make_tactic(name: str, space: SearchSpace, objectives: Sequence[Objective], seed: int = 0,
                options: Optional[Mapping[str, Any]] = None) -> Tactic:
    """Tactic ``name`` with options from an untyped dict (unknown or invalid fields: `OptionError`)."""
    return tactic_class(name)(space, objectives, seed=seed, options=tactic_options(name, options))
