"""Fixtures of the datasets area: the malformed-input folder, with a crafted 20000×20000 PNG."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import pytest

MALFORMED = Path(__file__).resolve().parents[1] / "fixtures" / "malformed"


def huge_png(width: int = 20000, height: int = 20000) -> bytes:
    """A valid 1-bit greyscale PNG of ``width``×``height``, all black: ~50 KB on disk.

    Written chunk by chunk (no Pillow image in memory), so it is cheap to make.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed pixels
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def huge_png_bytes() -> bytes:
    return huge_png()


@pytest.fixture
def malformed_dir(tmp_path: Path, huge_png_bytes: bytes) -> Path:
    """A copy of ``tests/fixtures/malformed`` with ``images/huge.png`` added and a secret
    file outside the manifest's folder that a ``../`` ref points at."""
    root = tmp_path / "set"
    shutil.copytree(MALFORMED, root, ignore=shutil.ignore_patterns("*.py"))
    (root / "images" / "huge.png").write_bytes(huge_png_bytes)
    (tmp_path / "secret.jpg").write_bytes((root / "images" / "good.jpg").read_bytes())
    return root
