"""fleetnas agent: the service on each board that receives, runs and times exported models.

Never imports torch, pymoo or fleetnas.host (tests/agent/test_import_hygiene.py proves it).
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fleetnas")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
