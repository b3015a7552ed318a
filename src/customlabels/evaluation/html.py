"""Small helpers for self-contained HTML pages: inline images, escaping, number cells, CSS."""

from __future__ import annotations

import base64
import io
import math
from html import escape
from pathlib import Path

from PIL import Image

__all__ = ["CSS", "esc", "img_tag", "jpeg_uri", "num", "page", "png_uri"]

esc = escape

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;
max-width:1200px;padding:0 16px;color:#111827;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid
#e5e7eb;padding-bottom:4px}.muted{color:#6b7280}.note{background:#f9fafb;border-left:4px solid
#9ca3af;padding:8px 12px;margin:12px 0}.warn{background:#fffbeb;border-left:4px solid #f59e0b;
padding:8px 12px;margin:12px 0}table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #e5e7eb;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#f3f4f6;white-space:normal}
td.l,th.l{text-align:left}.ci{color:#6b7280;font-size:11px}.opt{color:#92400e}
.plots img{max-width:100%;border:1px solid #e5e7eb;margin:6px 0}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:12px}
.gallery figure{margin:0;border:1px solid #e5e7eb;padding:6px}.gallery img{width:100%}
figcaption{font-size:12px;color:#374151;word-break:break-all}.sw{display:inline-block;width:12px;
height:12px;margin:0 4px 0 12px;vertical-align:middle}.better{font-weight:600}
"""


def num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def png_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def jpeg_uri(image: Image.Image, quality: int = 82) -> str:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def img_tag(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{esc(alt)}">'


def page(title: str, body: str) -> str:
    """A complete HTML document with the shared CSS; no external resources."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n{body}\n</body></html>\n"
    )
