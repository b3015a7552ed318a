#!/usr/bin/env bash
# The main job end to end, as a user runs it: validate -> split -> train -> evaluate -> detect
# -> visualize -> bucket pipeline. Uses the real bee set at ../shared/datasets/bees when it is
# there, otherwise a small labelled sample generated offline.
#
#   MANIFEST=path/to/output.manifest BUDGET=15m OUT=demo-output scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CL="${CL:-.venv/bin/customlabels}"
OUT="${OUT:-demo-output}"
BEES=../shared/datasets/bees/output.manifest
mkdir -p "$OUT"

if [ -z "${MANIFEST:-}" ]; then
  if [ -f "$BEES" ]; then
    MANIFEST="$BEES"; BUDGET="${BUDGET:-5m}"
  else
    echo "== ../shared/datasets/bees not found: generating a labelled sample offline"
    $CL dataset sample "$OUT/sample" --images 80
    MANIFEST="$OUT/sample/output.manifest"; BUDGET="${BUDGET:-2m}"
  fi
fi
BUDGET="${BUDGET:-5m}"
# s3://BUCKET/... refs resolve beside the manifest; the split manifests live in $OUT, so map
# every bucket the manifest names to the manifest's own folder.
MAPS=$(.venv/bin/python - "$MANIFEST" <<'PY'
import json, pathlib, sys
m = pathlib.Path(sys.argv[1]).resolve()
buckets = set()
for line in m.read_text().splitlines():
    try:
        ref = json.loads(line).get("source-ref", "")
    except ValueError:
        continue
    if ref.startswith("s3://"):
        buckets.add(ref[5:].split("/", 1)[0])
print(" ".join(f"--bucket-map {b}={m.parent}" for b in sorted(buckets)))
PY
)

echo "== 1. validate $MANIFEST"
$CL dataset validate "$MANIFEST"
$CL dataset stats "$MANIFEST"

echo "== 2. group-aware 80/20 split"
$CL dataset split "$MANIFEST" --test-fraction 0.2 --seed 0 --out "$OUT/split"

echo "== 3. train (automatic recipe, budget $BUDGET)"
# shellcheck disable=SC2086
$CL train "$OUT/split/train.manifest" --test "$OUT/split/test.manifest" --out "$OUT/model" \
  --time-budget "$BUDGET" $MAPS

echo "== 4. evaluate on the held-out test set"
# shellcheck disable=SC2086
$CL evaluate "$OUT/model" "$OUT/split/test.manifest" $MAPS

echo "== 5. detect (DetectCustomLabels JSON Lines) and visualize at two thresholds"
# three test images, resolved the way every command resolves them
# shellcheck disable=SC2086
mapfile -t IMAGES < <(.venv/bin/python - "$OUT/split/test.manifest" $MAPS <<'PY'
import sys
from pathlib import Path
from customlabels.formats.groundtruth import load_ground_truth
from customlabels.formats.refs import parse_bucket_map
maps = [a for a in sys.argv[2:] if a != "--bucket-map"]
ds = load_ground_truth(Path(sys.argv[1]), bucket_map=parse_bucket_map(maps))
print("\n".join([str(im.path) for im in ds.images if len(im.boxes)][:3]))
PY
)
$CL detect "$OUT/model" "${IMAGES[@]}" --max-results 5
$CL visualize "$OUT/model" "${IMAGES[@]}" --min-confidence 90,50 --out "$OUT/visualize"

echo "== 6. bucket pipeline: images dropped under test_images/ get <name>.json beside them"
rm -rf "$OUT/bucket" && mkdir -p "$OUT/bucket/test_images"
cp "${IMAGES[@]}" "$OUT/bucket/test_images/"
$CL pipeline run --bucket "$OUT/bucket" --prefix test_images/ --model "$OUT/model" --once
$CL pipeline status --bucket "$OUT/bucket"
ls "$OUT/bucket/test_images"

echo "== done: model in $OUT/model, report in $OUT/model/evaluation/report.html"
echo "== console: customlabels serve --buckets DIR, then open http://127.0.0.1:8080/console (sign in with CUSTOMLABELS_ACCESS_KEY_ID / _SECRET_ACCESS_KEY)"
