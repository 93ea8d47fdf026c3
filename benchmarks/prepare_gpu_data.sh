#!/usr/bin/env bash
# Copy the real scenes a GPU run needs from ../shared/data into gpu_data/ (git-ignored) so that
# they travel with the checkout (the device tool carries at most 64 MiB): lego's 100 train
# views with 8 of its test views, and DTU scan24 (400x300). Then, with the device tool:
#   run(command="bash benchmarks/run_gpu.sh $OUT suite", carry=["gpu_data"])
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="${FASTFIELD_DATA:-$ROOT/../shared/data}"
DST="$ROOT/gpu_data"
rm -rf "$DST" && mkdir -p "$DST/lego" "$DST/dtu_scan24"
cp -r "$SRC/nerf_synthetic/lego/train" "$SRC/nerf_synthetic/lego/transforms_train.json" "$DST/lego/"
mkdir -p "$DST/lego/test"
python3 - "$SRC/nerf_synthetic/lego" "$DST/lego" <<'PY'
import json, shutil, sys
from pathlib import Path
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
for split, keep in (("test", 8), ("val", 2)):
    meta = json.loads((src / f"transforms_{split}.json").read_text())
    meta["frames"] = meta["frames"][:keep]
    (dst / split).mkdir(exist_ok=True)
    for frame in meta["frames"]:
        name = frame["file_path"].lstrip("./") + ".png"
        shutil.copy(src / name, dst / name)
    (dst / f"transforms_{split}.json").write_text(json.dumps(meta, indent=4))
PY
cp -r "$SRC/neus_dtu/dtu_scan24_400x300/image" "$SRC/neus_dtu/dtu_scan24_400x300/mask" \
      "$SRC/neus_dtu/dtu_scan24_400x300/cameras_sphere.npz" "$DST/dtu_scan24/"
du -sh "$DST"
