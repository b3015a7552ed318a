#!/usr/bin/env bash
# The main job end to end, as a user runs it: validate -> split -> train -> evaluate -> detect
# -> visualize -> bucket pipeline. Uses the real bee set at ../shared/datasets/bees when it is
# there, otherwise a small labelled sample generated offline.
#
# On the bee set, the training budget is sized to this machine: a detector step is measured
# first (`customlabels plan-budget`) and the budget set so that training gets about
# TARGET_STEPS steps (600: test bee F1 ≈ 0.7 on the held-out frames), 5–20 minutes.
#
#   MANIFEST=path/to/output.manifest BUDGET=15m OUT=demo-output scripts/demo.sh
#   THREADS=1 scripts/demo.sh        # a deliberately slowed machine (one torch thread)
#   STRICT=90 scripts/demo.sh        # the stricter calibrated confidence drawn (default: 20
#                                    # points above the model's highest own threshold, ≤ 90)
set -euo pipefail
cd "$(dirname "$0")/.."
CL="${CL:-.venv/bin/customlabels}"
OUT="${OUT:-demo-output}"
BEES=../shared/datasets/bees/output.manifest
mkdir -p "$OUT"

if [ -z "${MANIFEST:-}" ]; then
  if [ -f "$BEES" ]; then
    MANIFEST="$BEES"  # BUDGET: measured below (plan-budget)
  else
    echo "== ../shared/datasets/bees not found: generating a labelled sample offline"
    $CL dataset sample "$OUT/sample" --images 80
    MANIFEST="$OUT/sample/output.manifest"; BUDGET="${BUDGET:-2m}"
  fi
fi
THREADS="${THREADS:-0}"            # 0: the idle cores, as `train` picks them
TARGET_STEPS="${TARGET_STEPS:-600}"
if [ -z "${BUDGET:-}" ]; then
  echo "== 0. measure this machine: a training budget for about $TARGET_STEPS steps"
  PLAN=$($CL plan-budget --target-steps "$TARGET_STEPS" --threads "$THREADS" \
    --min-seconds 300 --max-seconds 1200 --json)
  BUDGET="$(.venv/bin/python -c 'import json,sys; print(json.loads(sys.argv[1])["budget_seconds"])' "$PLAN")s"
  .venv/bin/python - "$PLAN" <<'PY'
import json, os, sys
p = json.loads(sys.argv[1])
print(f"{os.cpu_count()} cores, {p['threads']} torch thread(s): {p['step_seconds']:.2f} s per "
      f"step -> budget {p['budget_seconds']} s for about {p['expected_steps']} steps")
if p["expected_steps"] < p["target_steps"]:
    print(f"warning: this machine is slow (or busy) even for the 20-minute cap: expect fewer "
          f"than {p['target_steps']} steps and a weaker model (README: what fewer steps cost)")
PY
fi
CONFIG=()
if [ "$THREADS" != 0 ]; then
  printf 'threads: %s\n' "$THREADS" > "$OUT/threads.yaml"
  CONFIG=(--config "$OUT/threads.yaml")
fi
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
  --time-budget "$BUDGET" "${CONFIG[@]}" $MAPS

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
$CL detect "$OUT/model" "${IMAGES[@]}" --max-results 5 --raw-confidence
# the model's own (calibrated) thresholds, and a stricter calibrated confidence beside them
if [ -z "${STRICT:-}" ]; then
  STRICT=$(.venv/bin/python -c 'import json,sys; t=json.load(open(sys.argv[1]))["thresholds"]; print(min(90, round(100 * max(t.values())) + 20))' "$OUT/model/model.json")
fi
echo "pictures: the model's own thresholds, and MinConfidence $STRICT (kept when at least $STRICT % likely right)"
$CL visualize "$OUT/model" "${IMAGES[@]}" --min-confidence "auto,$STRICT" --out "$OUT/visualize"

echo "== 6. bucket pipeline: images dropped under test_images/ get <name>.json beside them"
rm -rf "$OUT/bucket" && mkdir -p "$OUT/bucket/test_images"
cp "${IMAGES[@]}" "$OUT/bucket/test_images/"
$CL pipeline run --bucket "$OUT/bucket" --prefix test_images/ --model "$OUT/model" --once
$CL pipeline status --bucket "$OUT/bucket"
ls "$OUT/bucket/test_images"

.venv/bin/python - "$OUT/model" "$SECONDS" <<'PY'
import json, sys
from pathlib import Path
card = json.loads((Path(sys.argv[1]) / "model.json").read_text())
t, test = card["training"], card["metrics"].get("test", {})
f1 = ", ".join(f"{k} {v['f1']:.3f}" for k, v in test.get("labels", {}).items() if v.get("f1") is not None)
print(f"== what this machine got: {t['steps']} steps in {t['seconds']:.0f} s of training "
      f"({t['threads']} thread(s)); test F1 {test.get('f1', float('nan')):.3f} ({f1}); "
      f"ECE {test.get('ece_raw') or float('nan'):.3f} raw -> {test.get('ece') or float('nan'):.3f} "
      f"calibrated; whole demo {int(sys.argv[2])} s")
PY
echo "== done: model in $OUT/model, report in $OUT/model/evaluation/report.html"
echo "== console: customlabels serve --buckets DIR, then open http://127.0.0.1:8080/console (sign in with CUSTOMLABELS_ACCESS_KEY_ID / _SECRET_ACCESS_KEY)"
