"""The parameter types of a search space: `Choice` (categorical), `Integer` (a range) and `ActiveIf` (a gene that
matters only when another gene reaches a value). `fleetnas.host.search.space` re-exports them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Tuple, Union

import numpy as np


def _lookup_key(value: Any) -> Any:
    """Hashable identity for option lookup: strings and bools never collide with numbers."""
    kind = type(value)
    if kind is int or kind is float:  # the common case, first
        return ("n", value)
    if kind is str:
        return ("s", value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, (bool, np.bool_)):
        return ("b", bool(value))
    return ("n", value)


def _same_value(option: Any, value: Any) -> bool:
    """Equality that does not let "3" match 3 or True match 1 (numpy scalars do match their Python values)."""
    if isinstance(option, (str, bool)) or isinstance(value, (str, bool)):
        return type(option) is type(value) and option == value
    try:
        return bool(option == value)
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class Choice:
    """A categorical parameter: one of ``options`` (ints, floats or strings; order is used by the ordinal encoding)."""

    name: str
    options: Tuple[Any, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(self.options))
        if not self.options:
            raise ValueError(f"Choice {self.name!r} has no options; give at least one")
        if len(set(self.options)) != len(self.options):
            raise ValueError(f"Choice {self.name!r} has repeated options {self.options}; list each option once")
        try:
            lookup = {_lookup_key(o): i for i, o in enumerate(self.options)}
        except TypeError:  # unhashable options: linear search only
            lookup = {}
        object.__setattr__(self, "_lookup", lookup)

    @property
    def n_options(self) -> int:
        return len(self.options)

    def value(self, index: int) -> Any:
        return self.options[int(index)]

    def index(self, value: Any) -> int:
        try:
            found = self._lookup.get(_lookup_key(value))
        except TypeError:
            found = None
        if found is not None:
            return found
        for i, option in enumerate(self.options):
            if _same_value(option, value):
                return i
        raise ValueError(f"parameter {self.name!r}: {value!r} is not allowed; allowed values: {list(self.options)}")

    def allowed(self) -> str:
        return str(list(self.options))


@dataclass(frozen=True)
class Integer:
    """An integer parameter in ``[low, high]``, both ends included."""

    name: str
    low: int
    high: int

    def __post_init__(self) -> None:
        if int(self.low) != self.low or int(self.high) != self.high or self.low > self.high:
            raise ValueError(f"Integer {self.name!r}: need integers low <= high, got low={self.low} high={self.high}")
        object.__setattr__(self, "low", int(self.low))
        object.__setattr__(self, "high", int(self.high))

    @property
    def n_options(self) -> int:
        return self.high - self.low + 1

    @property
    def options(self) -> Tuple[int, ...]:
        return tuple(range(self.low, self.high + 1))

    def value(self, index: int) -> int:
        return self.low + int(index)

    def index(self, value: Any) -> int:
        ok = not isinstance(value, (bool, str)) and isinstance(value, (int, float, np.integer, np.floating))
        if ok and float(value) == int(value) and self.low <= int(value) <= self.high:
            return int(value) - self.low
        raise ValueError(f"parameter {self.name!r}: {value!r} is not allowed; allowed values: {self.allowed()}")

    def allowed(self) -> str:
        return f"integers {self.low}..{self.high}"


Param = Union[Choice, Integer]


@dataclass(frozen=True)
class ActiveIf:
    """``param`` matters only when the value of ``gate`` is ``>= at_least`` (and ``gate`` is active itself)."""

    param: str
    gate: str
    at_least: Any
