"""io.images: content sniffing, header-only sizes with EXIF, limits, truncated data."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from customlabels.errors import ImageTooLargeError, InvalidImageError
from customlabels.io.images import (
    ImageLimits,
    decode_image,
    read_image_bytes,
    read_size_wh,
    sniff_format,
)

MALFORMED = Path(__file__).resolve().parents[1] / "fixtures" / "malformed" / "images"


def _encode(fmt: str, size: tuple[int, int] = (120, 80), orientation: int = 1) -> bytes:
    buf = io.BytesIO()
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    Image.new("RGB", size, (10, 200, 30)).save(buf, fmt, exif=exif.tobytes())
    return buf.getvalue()


@pytest.mark.parametrize(("fmt", "name"), [("JPEG", "JPEG"), ("PNG", "PNG")])
def test_sniff(fmt: str, name: str) -> None:
    assert sniff_format(_encode(fmt)) == name


@pytest.mark.parametrize("data", [b"GIF89a....", b"", b"hello", _encode("BMP")])
def test_sniff_refuses_other_content(data: bytes) -> None:
    with pytest.raises(InvalidImageError, match="not a JPEG or PNG"):
        sniff_format(data)


@pytest.mark.parametrize(
    ("orientation", "size"), [(1, (120, 80)), (3, (120, 80)), (6, (80, 120)), (8, (80, 120))]
)
def test_size_after_exif_orientation(orientation: int, size: tuple[int, int]) -> None:
    data = _encode("JPEG", orientation=orientation)
    assert read_size_wh(data) == size
    assert decode_image(data).size == size


def test_truncated_jpeg_fails_on_decode_not_on_header() -> None:
    data = (MALFORMED / "truncated.jpg").read_bytes()
    assert read_size_wh(data) == (96, 80)
    with pytest.raises(InvalidImageError, match="truncated or corrupt"):
        decode_image(data)


def test_limits() -> None:
    data = _encode("PNG", (300, 200))
    with pytest.raises(ImageTooLargeError, match="over the limit"):
        read_size_wh(data, limits=ImageLimits(max_side=256))
    with pytest.raises(ImageTooLargeError, match="bytes"):
        read_size_wh(data, limits=ImageLimits(max_bytes=10))
    with pytest.raises(InvalidImageError, match="under"):
        read_size_wh(data, limits=ImageLimits(min_side=250))


def test_decompression_bomb_is_refused_from_the_header(huge_png_bytes: bytes) -> None:
    with pytest.raises(ImageTooLargeError):
        read_size_wh(huge_png_bytes)


def test_read_image_bytes(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(_encode("PNG"))
    assert read_image_bytes(tmp_path / "a.png").startswith(b"\x89PNG")
    with pytest.raises(ImageTooLargeError):
        read_image_bytes(tmp_path / "a.png", ImageLimits(max_bytes=5))
    with pytest.raises(InvalidImageError, match="cannot read"):
        read_image_bytes(tmp_path / "missing.png")


def test_image_limits_and_decoding_live_in_io_images() -> None:
    """The service's image limits are declared once and every decode goes through io.images:
    no ``Image.open`` and no 15 MB / 4 MB / 4096 px figure elsewhere in the package."""
    import re

    src = Path(__file__).resolve().parents[2] / "src" / "customlabels"
    pattern = re.compile(r"Image\.open\(|\b(4|15) \* (1024 \* 1024|_MB)|\b4096\b")
    offenders = [
        f"{path.relative_to(src)}:{n}"
        for path in sorted(src.rglob("*.py"))
        if path.relative_to(src) != Path("io/images.py")
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]
    assert offenders == []
