"""Package layout only (metadata lives in pyproject.toml).

One import namespace, three source folders: agent/ -> fleetnas.agent, host/ -> fleetnas.host, and the contract's
generated stubs proto/fleetnas/agent/v1 -> fleetnas.agent.v1. Nothing lands top-level in site-packages.
"""
from setuptools import find_packages, setup

ROOTS = {"fleetnas.agent": "agent", "fleetnas.host": "host"}
package_dir = {"fleetnas.agent.v1": "proto/fleetnas/agent/v1"}
packages = ["fleetnas.agent.v1"]
for name, folder in ROOTS.items():
    package_dir[name] = folder
    packages += [name] + [f"{name}.{sub}" for sub in find_packages(folder)]

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"": ["*.proto", "*.json", "*.npz", "*.csv", "*.onnx", "*.tflite"]},
)
