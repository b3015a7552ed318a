"""File and image input/output shared by every layer above the core (Pillow, pathlib)."""
