"""Tactics by name: the built-ins plus any package's ``fleetnas.tactics`` entry points (a subclass of
`fleetnas.host.search.tactic.Tactic`); ``make_tactic`` (in `tactic`) builds one.

This module imports nothing heavy (not even numpy): the CLI builds its ``--tactic`` choices from ``TACTICS.names()``;
a tactic's module (and pymoo, sklearn with it) is imported when it is first asked for.
"""
from __future__ import annotations

from fleetnas.host.plugins import Registry

TACTICS = Registry("fleetnas.tactics", {
    "linas": "fleetnas.host.search.linas:LinasTactic",
    "nsga2": "fleetnas.host.search.baselines:NSGA2Tactic",
    "random": "fleetnas.host.search.baselines:RandomTactic",
}, "tactic")
