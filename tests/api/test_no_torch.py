"""The serving path never imports torch: a fresh interpreter where torch cannot be imported (as
with the base install) starts the app, starts an imported model and serves DetectCustomLabels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = r'''
import base64, json, sys, time
from pathlib import Path


class NoTorch:
    """Behave like an install without torch."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ImportError(f"{name} is not installed (base install)")
        return None


sys.meta_path.insert(0, NoTorch())

import httpx
from customlabels.api import create_app
from customlabels.api.server import serve_in_thread
from customlabels.service import ServiceSettings, open_context, projects, versions

home, model, image = (Path(p) for p in sys.argv[1:4])
settings = ServiceSettings(home=home, auth=False)
ctx = open_context(settings)
project = projects.create_project(ctx, "bees")["ProjectArn"]
arn = versions.import_model_version(ctx, project, "v1", model)["ProjectVersionArn"]


def call(url, op, body):
    headers = {"X-Amz-Target": f"RekognitionService.{op}",
               "Content-Type": "application/x-amz-json-1.1"}
    return httpx.post(url + "/", headers=headers, content=json.dumps(body), timeout=60).json()


with serve_in_thread(create_app(settings, ctx)) as url:
    call(url, "StartProjectVersion", {"ProjectVersionArn": arn, "MinInferenceUnits": 1})
    for _ in range(300):
        desc = call(url, "DescribeProjectVersions", {"ProjectArn": project})
        if desc["ProjectVersionDescriptions"][0]["Status"] == "RUNNING":
            break
        time.sleep(0.1)
    image_b64 = base64.b64encode(image.read_bytes()).decode()
    found = call(url, "DetectCustomLabels",
                 {"ProjectVersionArn": arn, "Image": {"Bytes": image_b64}, "MinConfidence": 0})
ctx.close()
print(json.dumps({"torch_loaded": "torch" in sys.modules, "response": found}))
'''


def test_serving_runs_without_torch(
    tiny_detector_dir: Path, tmp_path: Path, bees_manifest: Path
) -> None:
    ref = json.loads(bees_manifest.read_text().splitlines()[0])["source-ref"]
    image = bees_manifest.parent / ref.split("/", 3)[3]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "home"), str(tiny_detector_dir), str(image)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["torch_loaded"] is False
    assert "CustomLabels" in result["response"], result["response"]
    assert result["response"]["CustomLabels"], "the tiny detector finds bees at MinConfidence 0"
