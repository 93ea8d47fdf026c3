#!/usr/bin/env bash
# End-to-end checks of `fastfield process` (numbers in benchmarks/RESULTS.md):
#   fern: nerf-small on the shipped LLFF poses and on the recovered ones (same steps, seed);
#   DTU scan24: neus-small on the dataset's cameras and on the recovered ones (masks loaded for
#   the masked PSNR, mask_weight 0 as the preset), both at data.downscale=2 (200x150), and the
#   Chamfer distance between their meshes in the dataset's world (capture_compare.py).
#
#   bash benchmarks/capture_e2e.sh [OUT]    (needs the [capture] extra)
#   ITERS=2000 (default) steps per run; PARTS="fern dtu" (default) what to run. Run again, it
#   continues: scenes already processed are kept, runs resume from their checkpoints.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${FASTFIELD_DATA:-$ROOT/../shared/data}"
OUT="${1:-runs/capture_e2e}"
ITERS="${ITERS:-2000}"
PARTS="${PARTS:-fern dtu}"
PYTHON="${PYTHON:-python}"
FERN="$DATA/nerf_llff_data/fern"
DTU="$DATA/neus_dtu/dtu_scan24_400x300"
mkdir -p "$OUT"
ff() { "$PYTHON" -m fastfield "$@"; }

process() {  # NAME SOURCE [OPTIONS...]: the capture once, its summary kept beside it
  local name="$1" source="$2"
  shift 2
  [ -f "$OUT/scenes/$name/transforms.json" ] && return
  ff process "$source" --out "$OUT/scenes/$name" --no-progress "$@" | tee "$OUT/${name}_process.txt"
}

train_and_eval() {  # RUN PRESET DATA [--set ...]: train (or resume) to ITERS steps, evaluate
  local run="$OUT/$1" preset="$2" data="$3"
  shift 3
  if [ -f "$run/checkpoint.pt" ]; then
    ff train --out "$run" --resume --iters "$ITERS" --device cpu --no-progress
  else
    ff train --preset "$preset" --data "$data" --out "$run" --iters "$ITERS" --seed 0 \
      --device cpu --no-progress --set val_every=0 "$@"
  fi
  ff eval --run "$run" --device cpu | tee "$run.eval.txt"
}

if [[ " $PARTS " == *" fern "* ]]; then
  process fern "$FERN/images_8"
  train_and_eval fern_shipped nerf-small "$FERN"
  train_and_eval fern_recovered nerf-small "$OUT/scenes/fern"
fi

if [[ " $PARTS " == *" dtu "* ]]; then
  process dtu "$DTU/image" --masks "$DTU/mask"
  for run in dataset:"$DTU" recovered:"$OUT/scenes/dtu"; do
    name="${run%%:*}"
    train_and_eval "dtu_$name" neus-small "${run#*:}" --set data.use_masks=true \
      --set data.downscale=2
    ff mesh --run "$OUT/dtu_$name" --resolution 128 --device cpu
  done
  "$PYTHON" "$ROOT/benchmarks/capture_compare.py" "$OUT/dtu_dataset" "$OUT/dtu_recovered" \
    "$DTU" "$OUT/scenes/dtu" | tee "$OUT/dtu_compare.json"
fi
