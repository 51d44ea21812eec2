"""Comparing a stored run's settings with the ones a resume asks for: one function, one message listing every change."""
from __future__ import annotations

import json
from typing import Any, Iterable, List, Mapping, Optional

_SHOWN_CHARS = 60   # longer values (a whole search space) are reported as "changed" rather than printed


def _plain(value: Any) -> Any:
    """The value as it reads back from JSON (tuples become lists, keys strings), so stored and wanted compare."""
    return json.loads(json.dumps(value, sort_keys=True))


def _shown(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def settings_changes(stored: Mapping[str, Any], wanted: Mapping[str, Any],
                     keys: Optional[Iterable[str]] = None) -> List[str]:
    """``"key: old -> new"`` for every key in ``keys`` (default: all) whose value differs, in key order."""
    names = sorted(keys if keys is not None else set(stored) | set(wanted))
    changes = []
    for k in names:
        old, new = _plain(stored.get(k)), _plain(wanted.get(k))
        if old != new:
            old_text, new_text = _shown(old), _shown(new)
            if len(old_text) + len(new_text) > _SHOWN_CHARS:
                changes.append(f"{k} changed")
            else:
                changes.append(f"{k}: {old_text} -> {new_text}")
    return changes
