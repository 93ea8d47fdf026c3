#!/usr/bin/env bash
# End-to-end checks of `fastfield process` (numbers in benchmarks/RESULTS.md):
#   fern: nerf-small on the shipped LLFF poses and on the recovered ones (same steps, seed);
#   DTU scan24: neus-small on the dataset's cameras and on the recovered ones (masks loaded for
#   the masked PSNR, mask_weight 0 as the preset), both at data.downscale=2 (200x150), and the
#   Chamfer distance between their meshes in the dataset's world (capture_compare.py).
#
#   bash benchmarks/capture_e2e.sh [OUT]        (ITERS=2000 by default; needs the [capture] extra)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${FASTFIELD_DATA:-$ROOT/../shared/data}"
OUT="${1:-runs/capture_e2e}"
ITERS="${ITERS:-2000}"
PYTHON="${PYTHON:-python}"
FERN="$DATA/nerf_llff_data/fern"
DTU="$DATA/neus_dtu/dtu_scan24_400x300"
mkdir -p "$OUT"
ff() { "$PYTHON" -m fastfield "$@"; }
common=(--iters "$ITERS" --seed 0 --device cpu --no-progress --set val_every=0)

ff process "$FERN/images_8" --out "$OUT/scenes/fern" --overwrite --no-progress \
  | tee "$OUT/fern_process.txt"
for run in shipped:"$FERN" recovered:"$OUT/scenes/fern"; do
  name="${run%%:*}"; data="${run#*:}"
  [ -f "$OUT/fern_$name/eval_test/metrics.json" ] && continue
  ff train --preset nerf-small --data "$data" --out "$OUT/fern_$name" "${common[@]}"
  ff eval --run "$OUT/fern_$name" --device cpu | tee "$OUT/fern_${name}_eval.txt"
done

ff process "$DTU/image" --masks "$DTU/mask" --out "$OUT/scenes/dtu" --overwrite --no-progress \
  | tee "$OUT/dtu_process.txt"
for run in dataset:"$DTU" recovered:"$OUT/scenes/dtu"; do
  name="${run%%:*}"; data="${run#*:}"
  [ -f "$OUT/dtu_$name/mesh.ply" ] && continue
  ff train --preset neus-small --data "$data" --out "$OUT/dtu_$name" "${common[@]}" \
    --set data.use_masks=true --set data.downscale=2
  ff eval --run "$OUT/dtu_$name" --device cpu | tee "$OUT/dtu_${name}_eval.txt"
  ff mesh --run "$OUT/dtu_$name" --resolution 128 --device cpu
done
"$PYTHON" "$ROOT/benchmarks/capture_compare.py" "$OUT/dtu_dataset" "$OUT/dtu_recovered" "$DTU" \
  "$OUT/scenes/dtu" | tee "$OUT/dtu_compare.json"
