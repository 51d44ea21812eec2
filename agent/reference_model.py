"""Kept for callers of the old path; the reference model lives in fleetnas.agent.measure.reference_model."""
from fleetnas.agent.measure.reference_model import (build_onnx_bytes, build_tflite_bytes,  # noqa: F401
                                                     write_reference_model)
