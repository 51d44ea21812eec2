"""The agent's one way to plug things in: entry-point groups with built-in defaults (the host has its own twin;
the agent never imports the host).

Runtimes and power meters are each a ``Registry``: a name -> "module:attr" table of built-ins, plus whatever installed
packages register under the group in their own ``pyproject.toml``::

    [project.entry-points."fleetnas.runtimes"]
    executorch = "my_package.runtime:ExecuTorchRuntime"

An installed entry point with a built-in's name replaces the built-in. Nothing is imported until it is asked for.
Built-ins keep their declared order (power meters are probed in that order); plug-ins follow, sorted by name.
"""
from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any, Dict, List, Mapping

from fleetnas.agent.errors import InvalidRequest, RuntimeUnavailable


class Registry:
    def __init__(self, group: str, builtins: Mapping[str, str], what: str) -> None:
        self.group = group          # entry-point group, e.g. "fleetnas.runtimes"
        self.builtins = dict(builtins)
        self.what = what            # how a user calls one of these, e.g. "runtime" (for error messages)
        self._loaded: Dict[str, Any] = {}

    def _installed(self) -> Dict[str, Any]:
        eps = metadata.entry_points()
        # Python 3.9's entry_points() is a dict of groups; 3.10+ selects
        selected = eps.select(group=self.group) if hasattr(eps, "select") else eps.get(self.group, [])
        return {ep.name: ep for ep in selected}

    def names(self) -> List[str]:
        return list(self.builtins) + sorted(set(self._installed()) - set(self.builtins))

    def __contains__(self, name: str) -> bool:
        return name in self.builtins or name in self._installed()

    def load(self, name: str) -> Any:
        """The object registered as ``name``: InvalidRequest naming the choices when there is none, RuntimeUnavailable
        when the registered module cannot be imported."""
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
                raise InvalidRequest(f"unknown {self.what} {name!r}: use one of {', '.join(self.names())}")
        except (ImportError, AttributeError) as exc:
            raise RuntimeUnavailable(f"{self.what} {name!r} could not be loaded ({exc}); "
                                     f"check the package that registers it under {self.group!r}") from None
        self._loaded[name] = obj
        return obj
