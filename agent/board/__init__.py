"""What the board is and how it is doing: sysfs reads, device state, fingerprint, device info."""
