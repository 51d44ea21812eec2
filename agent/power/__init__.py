"""Power meters: one protocol (base.py), one module per sensor family, auto-detection in detect.py."""
