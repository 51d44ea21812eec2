"""Live progress for `fleetnas search` with rich: each device's state and each class's current front."""
from __future__ import annotations

import time
from typing import Any, List


def _front_rows(controller, state) -> List[List[str]]:
    names = [o.name for o in controller.objectives]
    front = sorted(state.search.front(), key=lambda e: e.values["latency_ms"])
    return [[f"{100 * e.values['accuracy']:.2f}%"] + [f"{e.values[n]:.4f}" for n in names[1:]] + [e.key]
            for e in front[:8]]


def render(controller) -> Any:
    from rich.console import Group
    from rich.table import Table

    devices = Table(title=f"fleet ({time.monotonic() - controller.started:.0f} s)", expand=False)
    for col in ("device", "class", "state", "measured", "cached", "uploads", "busy s", "temp °C", "last error"):
        devices.add_column(col)
    d = controller.dispatcher
    for name, s in (d.status.items() if d else []):
        temp = ""
        if s.info is not None and s.info.temperatures_c:
            temp = f"{max(s.info.temperatures_c):.0f}"
        devices.add_row(name, s.device.device_class, s.state, str(s.measured), str(s.cache_hits), str(s.uploads),
                        f"{s.busy_s:.0f}", temp, (s.last_error[:50] if s.state == "suspect" else ""))
    parts: List[Any] = [devices]
    for c, state in controller.classes.items():
        search = state.search
        failed = search.n_proposed - search.n_evaluated - search.n_pending
        front = Table(title=f"{c}: {search.n_evaluated} evaluated, {failed} failed, {len(state.inflight)} in flight, "
                            f"budget {controller.settings.budget}")
        for o in controller.settings.objectives:
            front.add_column({"accuracy": "accuracy", "latency": "latency ms", "energy": "energy mJ"}[o])
        front.add_column("config")
        for row in _front_rows(controller, state):
            front.add_row(*row)
        parts.append(front)
    return Group(*parts)


class LiveProgress:
    """``on_update`` for SearchController that redraws at most ~4 times a second."""

    def __init__(self, console=None) -> None:
        from rich.live import Live
        self.live = Live(console=console, refresh_per_second=4, transient=False)
        self._last = 0.0

    def __enter__(self) -> "LiveProgress":
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.__exit__(*exc)

    def __call__(self, controller) -> None:
        now = time.monotonic()
        if now - self._last >= 0.25:
            self._last = now
            self.live.update(render(controller))
