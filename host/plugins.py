"""The host's one way to plug things in: entry-point groups with built-in defaults.

Every extension point (super-networks, tactics, predictors, exporters) is a ``Registry``: a name -> "module:attr"
table of built-ins, plus whatever installed packages register under the group in their own ``pyproject.toml``::

    [project.entry-points."fleetnas.tactics"]
    my-tactic = "my_package.tactic:MyTactic"

An installed entry point with a built-in's name replaces the built-in. Nothing is imported until it is asked for, so
listing names stays cheap (no torch, no pymoo).
"""
from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any, Dict, List, Mapping

from fleetnas.host.errors import UsageError, missing_extra


class Registry:
    def __init__(self, group: str, builtins: Mapping[str, str], what: str) -> None:
        self.group = group          # entry-point group, e.g. "fleetnas.tactics"
        self.builtins = dict(builtins)
        self.what = what            # how a user calls one of these, e.g. "tactic" (for error messages)
        self._loaded: Dict[str, Any] = {}

    def _installed(self) -> Dict[str, Any]:
        eps = metadata.entry_points()
        # Python 3.9's entry_points() is a dict of groups; 3.10+ selects
        selected = eps.select(group=self.group) if hasattr(eps, "select") else eps.get(self.group, [])
        return {ep.name: ep for ep in selected}

    def names(self) -> List[str]:
        return sorted(set(self.builtins) | set(self._installed()))

    def __contains__(self, name: str) -> bool:
        return name in self.builtins or name in self._installed()

    def load(self, name: str) -> Any:
        """The object registered as ``name``; a clear error naming the choices when there is none."""
        if name in self._loaded:
            return self._loaded[name]
        installed = self._installed()
        try:
            if name in installed:
                obj = installed[name].load()
            elif name in self.builtins:
                module_name, _, attr = self.builtins[name].partition(":")
                obj = getattr(importlib.import_module(module_name), attr)
            else:
                raise UsageError(f"unknown {self.what} {name!r}; available: {', '.join(self.names())}")
        except (ImportError, AttributeError) as exc:
            if isinstance(exc, ImportError) and missing_extra(exc):
                raise   # an extra is not installed: the CLI says which one to install
            raise UsageError(f"{self.what} {name!r} could not be loaded ({exc}); "
                             f"check the package that registers it under {self.group!r}") from None
        self._loaded[name] = obj
        return obj
