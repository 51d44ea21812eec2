"""Progress for `fleetnas search` and `fleetnas demo` while they run.

On a terminal: a live rich display (each device's state, each class's current front) that redraws on a timer from
its own thread, so it keeps ticking while the search thread exports a model or waits for a board. Piped, or with
``--no-progress``: plain lines every ``FLEETNAS_PROGRESS_INTERVAL_S`` seconds (default 10) with, per device class,
evaluated/budget, failures and front size, and the estimated time left. Both are ``on_update`` callbacks of
``SearchController`` (called after every result and at least every 0.2 s of its loop).
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Any, Iterator, List, Optional, TextIO

DEFAULT_INTERVAL_S = 10.0


def interval_s() -> float:
    try:
        return max(0.1, float(os.environ.get("FLEETNAS_PROGRESS_INTERVAL_S", DEFAULT_INTERVAL_S)))
    except ValueError:
        return DEFAULT_INTERVAL_S


def _used(search) -> int:
    """Budget consumed: evaluated plus failed (proposed and no longer pending)."""
    return search.n_proposed - search.n_pending


def progress_line(controller, baseline_used: int = 0, now: Optional[float] = None) -> str:
    """``[  42 s] local: 12/30 evaluated, front 4; ETA 63 s`` (one entry per device class)."""
    now = time.monotonic() if now is None else now
    elapsed_s = now - controller.started
    budget = controller.settings.budget
    parts, used, left = [], 0, 0
    for device_class, state in list(controller.classes.items()):
        search = state.search
        failed = _used(search) - search.n_evaluated
        text = f"{device_class}: {search.n_evaluated}/{budget} evaluated"
        text += f", {failed} failed" if failed else ""
        text += f", front {len(search.front())}"
        parts.append(text)
        used += _used(search)
        left += 0 if state.finished else max(0, budget - _used(search))
    done_here = used - baseline_used
    if left == 0:
        eta = "done"
    elif done_here > 0:
        eta = f"ETA {left * elapsed_s / done_here:.0f} s"
    else:
        eta = "ETA unknown"
    return f"[{elapsed_s:>5.0f} s] " + "; ".join(parts) + f"; {eta}"


class PlainProgress:
    """``on_update`` that prints :func:`progress_line` at most every ``every_s`` seconds (first call: at once)."""

    def __init__(self, stream: TextIO = None, every_s: Optional[float] = None) -> None:
        self.stream = stream or sys.stdout
        self.every_s = interval_s() if every_s is None else every_s
        self._next = 0.0
        self._baseline: Optional[int] = None
        self._last_line = ""

    def __call__(self, controller) -> None:
        if self._baseline is None:   # a resumed run: the rate counts only what this session evaluates
            self._baseline = sum(_used(s.search) for s in controller.classes.values())
        now = time.monotonic()
        finished = all(s.finished for s in controller.classes.values())
        if now < self._next and not finished:
            return
        line = progress_line(controller, self._baseline, now)
        if finished and line.partition("] ")[2] == self._last_line.partition("] ")[2]:
            return
        self._next = now + self.every_s
        self._last_line = line
        print(line, file=self.stream, flush=True)


def _front_rows(controller, state) -> List[List[str]]:
    names = [o.name for o in controller.objectives]
    front = sorted(state.search.front(), key=lambda e: e.values["latency_ms"])
    return [[f"{100 * e.values['accuracy']:.2f}%"] + [f"{e.values[n]:.4f}" for n in names[1:]] + [e.key]
            for e in front[:8]]


def _quality_text(q: Optional[dict]) -> str:
    """``tau 0.91, MAPE 3.2% (n 40)``: a cost predictor's leave-one-out quality, or ``-`` before it has one."""
    if not q or q.get("loo_tau") is None:
        return "-"
    return f"tau {q['loo_tau']:.2f}, MAPE {100 * q['loo_mape']:.1f}% (n {q['n']})"


def joint_table(controller) -> Any:
    """A joint search: per class the measurements spent, the validations every class shares, and each cost
    predictor's held-out quality (leave-one-out Kendall tau and MAPE at the last model round)."""
    from rich.table import Table

    joint = controller.joint
    reports = joint.fleet.round_reports
    quality = reports[-1]["quality"] if reports else {"accuracy": {}, "classes": {}}
    acc = quality["accuracy"]
    title = f"joint search: {joint.n_validations} validations shared by every class"
    if acc.get("model"):
        cv = acc.get("cv_tau")
        title += f"; accuracy model {acc['model']}" + (f" (cv tau {cv:.2f})" if cv is not None else "")
    table = Table(title=title, expand=False)
    for col in ("class", "measured", "validations shared", "cost predictor (leave-one-out)"):
        table.add_column(col)
    for c, view in list(joint.views.items()):
        q = quality["classes"].get(c)
        text = "; ".join(f"{name}: {_quality_text(cq)}" for name, cq in q["costs"].items()) \
            if q and "costs" in q else _quality_text(q)
        table.add_row(c, f"{view.n_evaluated}/{view.budget}", str(joint.n_validations), text)
    return table


def render(controller) -> Any:
    from rich.console import Group
    from rich.table import Table

    devices = Table(title=f"fleet ({time.monotonic() - controller.started:.0f} s)", expand=False)
    for col in ("device", "class", "state", "measured", "cached", "uploads", "busy s", "temp °C", "last error"):
        devices.add_column(col)
    d = controller.dispatcher
    for name, s in (list(d.status.items()) if d else []):
        temp = ""
        if s.info is not None and s.info.temperatures_c:
            temp = f"{max(s.info.temperatures_c):.0f}"
        devices.add_row(name, s.device.device_class, s.state, str(s.measured), str(s.cache_hits), str(s.uploads),
                        f"{s.busy_s:.0f}", temp, (s.last_error[:50] if s.state == "suspect" else ""))
    parts: List[Any] = [devices]
    if getattr(controller, "joint", None) is not None:
        parts.append(joint_table(controller))
    for c, state in list(controller.classes.items()):
        search = state.search
        failed = _used(search) - search.n_evaluated
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
    """``on_update`` for SearchController: the rich display, redrawn 4 times a second by rich's refresh thread."""

    def __init__(self, console=None) -> None:
        from rich.live import Live
        self._controller = None
        self._last: Any = ""
        self.live = Live(console=console, refresh_per_second=4, transient=False, get_renderable=self._renderable)

    def _renderable(self) -> Any:
        if self._controller is not None:
            try:
                self._last = render(self._controller)
            except Exception:   # the search thread changed its state mid-render: keep the previous frame
                pass
        return self._last

    def __enter__(self) -> "LiveProgress":
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.__exit__(*exc)

    def __call__(self, controller) -> None:
        self._controller = controller


@contextlib.contextmanager
def search_progress(no_progress: bool, quiet: bool = False) -> Iterator[Optional[Any]]:
    """The ``on_update`` callback for a search: live on a terminal, plain lines otherwise, None when ``quiet``
    (``--json``: stdout is for the JSON; progress lines then go to stderr)."""
    if quiet:
        yield PlainProgress(stream=sys.stderr) if not no_progress else None
    elif no_progress or not sys.stdout.isatty():
        yield PlainProgress()
    else:
        with LiveProgress() as live:
            yield live
