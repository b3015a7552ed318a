"""Shared fixtures: where the real datasets are, and skips that say why."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATASETS = SHARED / "datasets"
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """``../shared/datasets``; tests that need real data fail loudly without it."""
    if not DATASETS.is_dir():
        pytest.fail(f"real datasets not found at {DATASETS} (expected ../shared/datasets)")
    return DATASETS


@pytest.fixture(scope="session")
def bees_manifest(datasets_dir: Path) -> Path:
    return datasets_dir / "bees" / "output.manifest"


@pytest.fixture(scope="session")
def bccd_manifest(datasets_dir: Path) -> Path:
    return datasets_dir / "bccd" / "output.manifest"


@pytest.fixture(scope="session")
def bee_crops_manifest(datasets_dir: Path) -> Path:
    return datasets_dir / "bee-crops" / "output.manifest"


@pytest.fixture(scope="session")
def bccd_buckets(tmp_path_factory: pytest.TempPathFactory, bccd_manifest: Path) -> Path:
    """A ``--buckets`` folder holding bucket ``bccd-demo``: 12 real BCCD images (copied) and
    their Ground Truth manifest at ``manifests/train.manifest`` (service area)."""

    root = tmp_path_factory.mktemp("buckets")
    bucket = root / "bccd-demo"
    lines = [line for line in bccd_manifest.read_text().splitlines() if line.strip()][:12]
    for line in lines:
        key = line.split('"source-ref": "s3://bccd-demo/', 1)[1].split('"', 1)[0]
        (bucket / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bccd_manifest.parent / key, bucket / key)
    (bucket / "manifests").mkdir()
    (bucket / "manifests" / "train.manifest").write_text("\n".join(lines) + "\n")
    (root / "models-out").mkdir()
    return root


# --- training area: tiny real models, trained once per session -----------------------------


def _once_per_run(
    factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Path]
) -> Path:
    """``build(folder)`` once per test run, even when pytest-xdist runs several workers.

    Without xdist this is a session-scoped build in a fresh temporary folder. Under xdist the
    first worker that needs it builds it in the run's temporary root (shared by the workers)
    while holding a file lock; the others wait for it and reuse the result instead of training
    the same model again.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return build(factory.mktemp(name))
    from filelock import FileLock

    root = factory.getbasetemp().parent  # the run's root, above each worker's own basetemp
    marker = root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if not marker.is_file():
            folder = root / name
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed in another worker
            folder.mkdir()
            marker.write_text(str(build(folder)))
    return Path(marker.read_text())


def _train_once(factory: pytest.TempPathFactory, name: str, splits, config) -> Path:  # type: ignore[no-untyped-def]
    """Train the model folder ``name`` on ``(train, validation, test)`` once per run."""
    from customlabels.training import train_dataset

    train, val, test = splits

    def build(folder: Path) -> Path:
        return train_dataset(
            train,
            folder / name,
            test=test,
            validation=val,
            config=config,
            user=config.to_dict(),
            progress=False,
        )

    return _once_per_run(factory, name, build)


def _tiny_subsets(manifest: Path, per_label: int, n_val: int, n_test: int):  # type: ignore[no-untyped-def]
    """Small deterministic train/validation/test subsets of a real dataset (each label present)."""
    from customlabels.formats.groundtruth import load_ground_truth

    dataset = load_ground_truth(manifest)
    chosen: list = []
    for label in range(len(dataset.labels)):
        having = [
            im
            for im in dataset.images
            if (label in im.box_labels.tolist() or label in im.image_labels) and im not in chosen
        ]
        chosen.extend(having[:per_label])
    rest = [im for im in dataset.images if im not in chosen]
    return (
        dataset.subset(chosen),
        dataset.subset(rest[:n_val]),
        dataset.subset(rest[n_val : n_val + n_test]),
    )


@pytest.fixture(scope="session")
def tiny_detector_data(bees_manifest: Path):  # type: ignore[no-untyped-def]
    """``(train, validation, test, config)`` of ``tiny_detector_dir``: 12/3/3 real bee images."""
    from customlabels.training import TrainConfig

    train, val, test = _tiny_subsets(bees_manifest, per_label=3, n_val=3, n_test=3)
    config = TrainConfig.from_dict(
        {
            "threads": 1,
            # Fine-tuned backbone stages: export, resume and determinism cover them too.
            "model": {"finetune_stages": 2},
            "input": {"width": 640, "height": 384},
            "augment": {"views_per_image": 1},
            "optim": {"steps": 100, "batch_size": 8},
            # The sliced-inference choice (off by default) runs in every test run.
            "eval": {"tiling": True},
        }
    )
    return train, val, test, config


@pytest.fixture(scope="session")
def tiny_detector_dir(tmp_path_factory: pytest.TempPathFactory, tiny_detector_data) -> Path:  # type: ignore[no-untyped-def]
    """A real bee detector (model.onnx + model.json + config.yaml ...) trained for a few steps
    on 12 real images (≈20 s of one CPU core). Detections appear on its training images."""

    train, val, test, config = tiny_detector_data
    return _train_once(tmp_path_factory, "bees-tiny", (train, val, test), config)


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory: pytest.TempPathFactory, bee_crops_manifest: Path) -> Path:
    """A real bee-crops classifier (4 labels, softmax) trained for a few steps on 24 crops."""
    from customlabels.training import TrainConfig

    train, val, test = _tiny_subsets(bee_crops_manifest, per_label=6, n_val=8, n_test=4)
    config = TrainConfig.from_dict(
        {
            "threads": 1,
            "augment": {"views_per_image": 2},
            "optim": {"steps": 30, "batch_size": 16},
        }
    )
    return _train_once(tmp_path_factory, "bee-crops-tiny", (train, val, test), config)


# --- pipeline and AWS areas: a model worker processes can load, real images ------------------


@pytest.fixture(scope="session")
def model_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """The tiny real detector of :func:`tiny_detector_dir`, copied to a private folder.

    Worker processes load it again and again; the copy keeps it safe from other pytest
    sessions pruning the shared temporary root.
    """
    import tempfile

    source: Path = request.getfixturevalue("tiny_detector_dir")
    with tempfile.TemporaryDirectory(prefix="customlabels-pipeline-model-") as folder:
        target = Path(folder) / source.name
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("checkpoints"))
        yield target


@pytest.fixture(scope="session")
def bccd_images(datasets_dir: Path) -> list[Path]:
    """Real blood-cell JPEGs (640×480, ~30 KB each), sorted; at least 200."""
    images = sorted((datasets_dir / "bccd" / "images").glob("*.jpg"))
    if len(images) < 200:
        pytest.fail(f"expected ≥200 BCCD images in {datasets_dir / 'bccd'}, found {len(images)}")
    return images


@pytest.fixture()
def refused_s3_client():  # type: ignore[no-untyped-def]
    """A boto3 S3 client whose endpoint refuses connections (a store that is down), 1 attempt."""
    import boto3
    from botocore.config import Config

    from customlabels.pipeline.local_servers import free_port

    return boto3.session.Session().client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        aws_access_key_id="a",
        aws_secret_access_key="b",
        region_name="us-east-1",
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


# --- the browser: one Chromium per test process, shared by the console and report tests -----
# (Playwright's sync API refuses a second instance in a process whose first one still runs)
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


# --- a scripted detector: known predictions, for what needs boxes at every confidence --------


def _scripted_evaluation(
    model_dir: Path, test_manifest: Path, out_dir: Path, bucket_map: dict[str, Path]
):  # type: ignore[no-untyped-def]
    """Evaluate ``model_dir``'s card on ``test_manifest`` with scripted predictions instead of
    its network, and write every evaluation output into ``out_dir`` (no report).

    Per image: each ground-truth box but every fourth is predicted exactly (a true positive)
    with a confidence drawn in 0.15–0.99, plus one false positive (a 20 px box in the top-left
    corner, the first label) drawn in 0.05–0.7: predictions on both sides of the assumed 0.5,
    deterministic (seed 0). The tiny trained detectors may find nothing on a given run.
    """
    import numpy as np

    from customlabels.core.detections import Detections
    from customlabels.core.model_card import ModelCard
    from customlabels.evaluation.outputs import write_outputs
    from customlabels.evaluation.run import evaluate_predictions, load_test_set

    card = ModelCard.load(model_dir)
    records, _ = load_test_set(test_manifest, card.labels, card.task, bucket_map=bucket_map)
    rng = np.random.default_rng(0)
    preds = []
    for rec in records:
        keep = [k for k in range(len(rec.boxes)) if k % 4 != 3]
        boxes = [rec.boxes[k] for k in keep] + [np.array([0.0, 0.0, 20.0, 20.0])]
        labels = [int(rec.box_labels[k]) for k in keep] + [0]
        scores = [*rng.uniform(0.15, 0.99, len(keep)), rng.uniform(0.05, 0.7)]
        preds.append(
            Detections(
                np.asarray(scores, np.float64),
                np.asarray(labels, np.int64),
                np.asarray(boxes, np.float64).reshape(-1, 4),
            )
        )
    ev = evaluate_predictions(card, records, preds, n_boot=50)
    ev.test_manifest = Path(test_manifest)
    return write_outputs(ev, out_dir, report=False)


@pytest.fixture(scope="session")
def scripted_evaluation() -> Callable[..., object]:
    """``fn(model_dir, test_manifest, out_dir, bucket_map) -> EvaluationOutput``: an evaluation
    written from scripted predictions (see :func:`_scripted_evaluation`)."""
    return _scripted_evaluation
