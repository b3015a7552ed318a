"""The command line (top layer: nothing imports it)."""
