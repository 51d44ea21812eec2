"""`python -m fleetnas.agent.runtimes`: print runtime_infos() as JSON (used by runtime_infos(isolated=True))."""
from __future__ import annotations

import json
from dataclasses import asdict

from fleetnas.agent.runtimes import runtime_infos

if __name__ == "__main__":
    print(json.dumps([asdict(info) for info in runtime_infos()]))
