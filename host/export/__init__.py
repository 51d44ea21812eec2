"""Export of sub-networks to deployable files: onnx.py (ExportedModel, export_onnx); tflite.py, pte.py: extras."""
