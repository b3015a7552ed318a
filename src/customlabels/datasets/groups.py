"""Near-duplicate groups: images that must stay on the same side of a train/test split.

Two signals, combined with union-find:

1. **File-name pattern.** Exports name video frames ``<video>-<frame>`` and crops
   ``<frame>_<crop>``; labelling tools append hashes (Roboflow's ``.rf.<hex>``) and the source
   extension (``_jpg``). :func:`name_stem` strips those and trailing frame/crop numbers, so all
   frames of one clip share a stem. A stem group is trusted only if it holds at most
   ``max_name_group_fraction`` of the images: when one stem covers most of a dataset
   (``BloodImage_00001`` ... in BCCD) the names carry no grouping information and only the
   pixels decide.
2. **Pixels.** A 256-bit difference hash (dHash) of a 17×16 grey thumbnail; two images whose
   hashes differ in at most ``max_hash_distance`` bits are near-duplicates whatever their names
   (the same photo uploaded twice, consecutive frames renamed). JPEGs are decoded at 1/8 scale
   (``draft``), so hashing the 555 bee frames takes about a second.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from customlabels.core.dataset import ImageRecord
from customlabels.errors import CustomLabelsError

__all__ = ["GroupConfig", "dhash", "find_groups", "hamming_pairs", "name_stem"]

log = logging.getLogger(__name__)

_EXT = re.compile(r"\.(jpe?g|png|bmp|gif|tiff?|webp)$", re.IGNORECASE)
_RF_HASH = re.compile(r"\.rf\.[0-9a-f]+.*$")  # Roboflow export suffix and what follows it
_TRAILING = re.compile(r"(_(jpe?g|png)|[-_. ]+\d+|(?<=[a-z]{3})\d+)$")


@dataclass(frozen=True)
class GroupConfig:
    """How near-duplicates are found.

    Attributes:
        use_names: group by file-name stem (video frames, crops of one frame).
        max_name_group_fraction: a stem shared by more than this fraction of the images is
            ignored (the names are a plain numbering, not a clip).
        use_pixels: link images whose thumbnail hashes are close.
        max_hash_distance: bits (of 256) two dHashes may differ by and still be near-duplicates.
            Frames of one bee clip differ by 0–13 bits; different clips of the same hive camera
            by 6 bits or more at their closest; distinct BCCD smears by over 100.
    """

    use_names: bool = True
    max_name_group_fraction: float = 0.5
    use_pixels: bool = True
    max_hash_distance: int = 8


def name_stem(name: str) -> str:
    """The clip/source part of a file name: ``clip_mp4-17_jpg.rf.ab12.jpg`` → ``clip_mp4``.

    Returns the lower-cased name without extension when nothing is left after stripping.
    """
    s = _EXT.sub("", name.rsplit("/", 1)[-1].lower())
    base = s = _RF_HASH.sub("", s)
    while True:
        t = _TRAILING.sub("", s)
        if t == s or not t:
            break
        s = t
    return s or base


def dhash(path: Path) -> npt.NDArray[np.uint8] | None:
    """256-bit difference hash of ``path`` (32 packed bytes); ``None`` if unreadable.

    Cached per (path, size, mtime), so splitting the same files again is cheap.
    """
    try:
        st = path.stat()
    except OSError:
        return None
    return _dhash(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=65536)
def _dhash(path: str, size: int, mtime_ns: int) -> npt.NDArray[np.uint8] | None:
    from PIL import Image

    from customlabels.io.images import open_image_file

    try:
        # JPEG: decoded at reduced scale (much faster); every check of io.images applies
        grey = open_image_file(Path(path), max_side=64, mode="L")
        a = np.asarray(grey.resize((17, 16), Image.Resampling.BILINEAR), dtype=np.int16)
    except CustomLabelsError as exc:  # an unreadable image just has no hash; validation reports it
        log.debug("no hash for %s: %s", path, exc)
        return None
    return np.packbits(a[:, 1:] > a[:, :-1])


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def hamming_pairs(
    hashes: npt.NDArray[np.uint8], max_distance: int, chunk: int = 512
) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, of packed hashes ``(N, B)`` within ``max_distance`` bits."""
    n = len(hashes)
    out: list[tuple[int, int]] = []
    for start in range(0, n, chunk):
        block = hashes[start : start + chunk]
        dist = _POPCOUNT[block[:, None, :] ^ hashes[None, :, :]].sum(-1, dtype=np.int32)
        ii, jj = np.nonzero(dist <= max_distance)
        for i, j in zip((ii + start).tolist(), jj.tolist(), strict=True):
            if i < j:
                out.append((i, j))
    return out


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def find_groups(
    images: Sequence[ImageRecord], config: GroupConfig | None = None
) -> npt.NDArray[np.int64]:
    """Group id per image, ``(N,)`` int64; images in one group are near-duplicates.

    Group ids are the index of the group's first image, so they are stable for a given order.
    """
    config = config or GroupConfig()
    n = len(images)
    uf = _UnionFind(n)
    if config.use_names and n:
        stems = [name_stem(im.name) for im in images]
        sizes = Counter(stems)
        limit = config.max_name_group_fraction * n
        first: dict[str, int] = {}
        for i, stem in enumerate(stems):
            if sizes[stem] > 1 and sizes[stem] <= limit:
                uf.union(first.setdefault(stem, i), i)
        ignored = [s for s, k in sizes.items() if k > limit and k > 1]
        if ignored:
            log.info("file-name stems too common to group by: %s", ignored)
    if config.use_pixels and n:
        hashes = [dhash(im.path) if im.path is not None else None for im in images]
        have = [i for i, h in enumerate(hashes) if h is not None]
        if have:
            stacked = np.stack([hashes[i] for i in have])  # type: ignore[misc]
            for a, b in hamming_pairs(stacked, config.max_hash_distance):
                uf.union(have[a], have[b])
    return np.array([uf.find(i) for i in range(n)], dtype=np.int64)
