"""Running the host's work past one machine."""
