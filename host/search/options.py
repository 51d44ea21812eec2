"""Typed tactic options: a frozen dataclass per tactic, built from the untyped dict users and journals hold.

The dict comes from ``--tactic-option KEY=VALUE`` (JSON values) or from a stored run's settings on resume; the same
dict always builds the same options, so a run started before resumes after. ``from_mapping`` accepts what the JSON
round-trip produces (lists for tuples, ``20.0`` or ``"20"`` for an int) and names the bad or unknown field and the
valid ones. Field types: ``int``, ``float``, ``bool``, ``str`` and ``Tuple[<one of those>, ...]``. Range checks live
in each dataclass's ``__post_init__`` (raise ``OptionError``).
"""
from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, Dict, Mapping, Optional, Sequence, Type, TypeVar

from fleetnas.host.errors import UsageError


class OptionError(UsageError, ValueError):
    """An unknown or invalid tactic option (a ValueError too, for callers that catch bad values generally)."""


T = TypeVar("T")


def _coerce(value: Any, kind: Any, field: str) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise OptionError(f"{field}: expected true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise OptionError(f"{field}: expected an integer, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise OptionError(f"{field}: expected an integer, got {value!r}") from None
        if number != int(number):
            raise OptionError(f"{field}: expected an integer, got {value!r}")
        return int(number)
    if kind is float:
        if isinstance(value, bool):
            raise OptionError(f"{field}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise OptionError(f"{field}: expected a number, got {value!r}") from None
    if kind is str:
        return str(value)
    if typing.get_origin(kind) is tuple:  # Tuple[str, ...]: a JSON list, or "a,b,c"
        item = typing.get_args(kind)[0]
        items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise OptionError(f"{field}: expected a list, got {value!r}")
        return tuple(_coerce(v, item, field) for v in items)
    raise TypeError(f"option {field}: unsupported type {kind!r}")  # a bug in the options class, not user input


def from_mapping(cls: Type[T], options: Optional[Mapping[str, Any]], what: str) -> T:
    """``cls(**options)`` with each value coerced to its field's type; ``what`` names the owner in errors
    (e.g. "tactic 'linas'")."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    options = dict(options or {})
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise OptionError(f"{what} has no option(s) {', '.join(unknown)}; its options: {describe(cls)}")
    required = [name for name, f in fields.items() if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING and name not in options]  # type: ignore[misc]
    if required:
        raise OptionError(f"{what} needs option(s) {', '.join(required)}; its options: {describe(cls)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in options.items():
        try:
            values[name] = _coerce(value, hints[name], name)
        except OptionError as exc:
            raise OptionError(f"{what} option {exc}") from None
    try:
        return cls(**values)
    except OptionError as exc:
        raise OptionError(f"{what} option {exc}") from None


def describe(cls: type) -> str:
    """``name=default`` for every field, for error messages and help."""
    parts = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = "(required)"
        if isinstance(default, tuple):
            default = ",".join(map(str, default))
        parts.append(f"{f.name}={default}")
    return ", ".join(parts)


def at_least(options: Any, minimum: float, *names: str) -> None:
    """Range check for ``__post_init__``: every named field >= minimum."""
    for name in names:
        value = getattr(options, name)
        if value < minimum:
            raise OptionError(f"{name}={value!r}: must be >= {minimum}")


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """The options of a tactic that takes none."""


def parse_pairs(pairs: Sequence[str], flag: str) -> Dict[str, Any]:
    """``["n_init=30", 'families=["ridge","svr"]']`` -> dict; each value is JSON if it parses, else the string."""
    out: Dict[str, Any] = {}
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{flag} {pair!r}: write NAME=VALUE, e.g. n_init=30")
        try:
            out[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[name.strip()] = value
    return out
