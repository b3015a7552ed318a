"""Render times of the console's pages on the 555-image bee dataset (medians).

A live server (uvicorn in a thread) with the bee manifest imported; each page is fetched
``--repeat`` times by a signed-in httpx client. Thumbnails are measured cold (first fetch: read,
decode, resize, encode) and cached (the same 48 again).

    PYTHONPATH=src python bench/console_pages.py            # writes bench/results/console_pages.md
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from customlabels.api import create_app
from customlabels.api.server import serve_in_thread
from customlabels.service import ServiceSettings, open_context

BEES = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "bees"
KEY, SECRET = "AKIDBENCH", "bench-secret"


def _timed(http: httpx.Client, path: str) -> float:
    t0 = time.perf_counter()
    r = http.get(path)
    r.raise_for_status()
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("bench/results/console_pages.md"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="console-bench-"))
    bucket = tmp / "buckets" / "bee-detection-demo"
    (bucket / "images").mkdir(parents=True)
    for f in (BEES / "images").iterdir():
        os.link(f, bucket / "images" / f.name)
    shutil.copyfile(BEES / "output.manifest", bucket / "output.manifest")
    settings = ServiceSettings(
        home=tmp / "home", buckets_dir=tmp / "buckets", access_key_id=KEY, secret_access_key=SECRET
    )
    ctx = open_context(settings)
    rows: list[tuple[str, float, int]] = []
    try:
        with (
            serve_in_thread(create_app(settings, ctx)) as url,
            httpx.Client(base_url=url, follow_redirects=True, timeout=60) as http,
        ):
            csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/console/sign-in").text)
            http.post(
                "/console/sign-in",
                data={"access_key_id": KEY, "secret_access_key": SECRET, "csrf": csrf.group(1)},
            )  # type: ignore[union-attr]
            csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/console").text)
            token = csrf.group(1)  # type: ignore[union-attr]
            http.post("/console/projects", data={"name": "bees", "csrf": token})
            http.post(
                "/console/projects/bees/datasets",
                data={
                    "csrf": token,
                    "dataset_type": "TRAIN",
                    "bucket": "bee-detection-demo",
                    "key": "output.manifest",
                },
            )
            base = "/console/projects/bees/datasets/train"
            pages = {
                "projects list": "/console",
                "project page": "/console/projects/bees",
                "dataset page (stats + first 48 thumbnails' grid)": base,
                "grid page 6 (htmx fragment)": base + "/grid?page=5",
                "grid filtered label=queen": base + "/grid?label=queen",
                "grid file-name search": base + "/grid?q=Beehive",
            }
            for name, path in pages.items():
                times = [_timed(http, path) for _ in range(args.repeat)]
                rows.append((name, statistics.median(times), args.repeat))
            grid = http.get(base).text
            thumbs = re.findall(r'href="([^"]+/thumb)"', grid)
            cold = [_timed(http, t) for t in thumbs]
            warm = [_timed(http, t) for t in thumbs]
            rows.append(("thumbnail, cold (decode + resize)", statistics.median(cold), len(cold)))
            rows.append(("thumbnail, cached", statistics.median(warm), len(warm)))
            rows.append(("48 thumbnails cold, total", sum(cold), 1))
    finally:
        ctx.close()
        shutil.rmtree(tmp, ignore_errors=True)
    lines = [
        "# Console page render times, 555-image bee dataset",
        "",
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs (shared), one uvicorn worker;"
        " server-side time plus loopback HTTP.",
        "",
        "| page | median ms | n |",
        "|---|---:|---:|",
        *[f"| {name} | {ms:.1f} | {n} |" for name, ms, n in rows],
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
