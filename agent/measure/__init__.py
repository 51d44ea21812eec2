"""Measuring: the queue and service, hygiene (cool-down, stability, drift canary), the worker processes, timing,
energy observation, throttle evidence and emulation. One MeasureJob (records.MeasureJob) travels through them."""
