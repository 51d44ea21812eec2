"""Accuracy evaluation of sub-networks: batch-norm recalibration, evaluators over user data, caching."""
