#!/usr/bin/env bash
# Everything a lent CUDA machine should show, in one command per stage (each under 10 minutes).
#   bash benchmarks/run_gpu.sh OUT_DIR suite   build with CUDA, CUDA tests (CPU/CUDA parity),
#                                              the benchmark suite at GPU sizes, bandwidth,
#                                              summary.md + scaling.png
#   bash benchmarks/run_gpu.sh OUT_DIR train   nerf-lego and neus-womask on the real scenes for a
#                                              fixed budget, kernels and reference, eval + it/s
# The machine has no network: fastfield builds against its torch with --no-build-isolation.
# Scenes come from gpu_data/ (benchmarks/prepare_gpu_data.sh; carry it with the checkout).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(mkdir -p "${1:-gpu_results}" && cd "${1:-gpu_results}" && pwd)"
STAGE="${2:-suite}"
cd "$ROOT"
START=$SECONDS
log() { printf '[%4ds] %s\n' $((SECONDS - START)) "$*" | tee -a "$OUT/log.txt"; }

{ nvidia-smi; python -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"; nvcc --version | tail -2; } > "$OUT/machine.txt" 2>&1 || true
log "$(tail -3 "$OUT/machine.txt" | head -1)"

if [ ! -f fastfield/_C*.so ] || ! python -c "import fastfield, sys; sys.exit(0 if fastfield.built_with_cuda() else 1)" 2>/dev/null; then
  log "building fastfield with CUDA kernels for the visible GPU"
  export CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
  MAX_JOBS=16 python setup.py build_ext --inplace > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
fi
python -c "import fastfield; assert fastfield.built_with_cuda(), 'no CUDA kernels'; print(fastfield._backend.KERNELS)" | tee -a "$OUT/log.txt"

if [ "$STAGE" = "suite" ]; then
  log "kernel tests on cpu and cuda (parity)"
  python -m pytest tests/test_composite_density.py tests/test_composite_sdf.py tests/test_rays.py \
      tests/test_sampling.py tests/test_pdf.py -q -x -p no:cacheprovider 2>&1 | tail -15 | tee "$OUT/tests_cuda.txt"
  log "benchmark suite at GPU sizes"
  FASTFIELD_BENCH=gpu python -m pytest benchmarks -q -p no:cacheprovider \
      --benchmark-json="$OUT/bench.json" 2>&1 | tail -60 > "$OUT/bench.txt"
  cp benchmarks/.results/memory.json "$OUT/memory.json" 2>/dev/null || true
  log "composite_density bandwidth at 2^24 samples"
  python benchmarks/bandwidth.py --json "$OUT/bandwidth.json" | tail -12 | tee -a "$OUT/log.txt"
  python benchmarks/summarize.py "$OUT/bench.json" --out "$OUT" --memory "$OUT/memory.json"
  log "profile of one nerf-lego training step (host-device syncs)"
  python benchmarks/profile_step.py --preset nerf-lego --device cuda --out "$OUT/profile_nerf.txt" || true
fi

if [ "$STAGE" = "train" ]; then
  for backend in kernels reference; do
    iters=$([ "$backend" = kernels ] && echo 3000 || echo 500)
    log "nerf-lego, $backend, $iters steps"
    python -m fastfield train --preset nerf-lego --data gpu_data/lego --device cuda \
        --backend "$backend" --iters "$iters" --out "$OUT/lego-$backend" --set val_every=100000 \
        > "$OUT/lego-$backend.log" 2>&1 || tail -20 "$OUT/lego-$backend.log"
    python -m fastfield eval --run "$OUT/lego-$backend" --device cuda >> "$OUT/lego-$backend.log" 2>&1 || true
    iters=$([ "$backend" = kernels ] && echo 2000 || echo 300)
    log "neus-womask on DTU scan24, $backend, $iters steps"
    python -m fastfield train --preset neus-womask --data gpu_data/dtu_scan24 --device cuda \
        --backend "$backend" --iters "$iters" --out "$OUT/dtu-$backend" --set val_every=100000 \
        > "$OUT/dtu-$backend.log" 2>&1 || tail -20 "$OUT/dtu-$backend.log"
    python -m fastfield eval --run "$OUT/dtu-$backend" --device cuda >> "$OUT/dtu-$backend.log" 2>&1 || true
  done
fi
log "done: $OUT"
