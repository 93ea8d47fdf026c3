#!/usr/bin/env bash
# What a lent CUDA machine should measure, in one call:
#
#   bash benchmarks/run_gpu.sh OUT_DIR [kernels|suite|steps|train] [--dry-run]
#
# kernels (the default; under 5 minutes on an H200 with 16 cores: each stage is capped by
# `timeout` and by what is left of a 290 s budget, and writes its results under OUT_DIR as soon as
# it ends, so a stage cut short loses only itself):
#   machine.txt                      nvidia-smi, Python, torch, CUDA and nvcc versions
#   build.log                        only when the tree holds no loadable CUDA build: fastfield
#                                    built for the visible GPU's architecture alone, MAX_JOBS=16
#   tests_cuda.txt                   the kernel tests' CUDA cases (-k cuda, 8 workers)
#   bandwidth.json, bandwidth.txt    compositing forward and backward as % of copy bandwidth
#   bench_kernels.json, .txt,        the op micro-benchmarks at GPU sizes (FASTFIELD_BENCH=gpu,
#   summary.md                       -k cuda: the CPU never runs GPU sizes), kernels against
#                                    the eager reference in the same run
#   log.txt                          what ran, when, and how each stage ended
# suite: the kernels stages' build, then the whole benchmark suite at GPU sizes (end-to-end
#   groups included) and the training-step profile (no time budget; each under 10 minutes).
# steps: the whole training step in each of issue 16's modes (fp32 eager against tf32, bf16,
#   the CUDA graph, --compile and the CUDA default) at GPU sizes (bench_step_modes.py, CUDA
#   only), then the profile of one nerf-lego step.
# train: nerf-lego and neus-womask on the real scenes for a fixed budget, kernels and reference
#   (scenes from gpu_data/: benchmarks/prepare_gpu_data.sh, carried with the checkout).
# --dry-run: for a machine without a GPU: every stage runs its command in a form that needs no
#   GPU (pytest --collect-only, bandwidth.py --dry-run, no build), so the wiring is checked.
#
# The machine has no network: fastfield builds against its torch with --no-build-isolation.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_ARG="${1:-gpu_results}"
STAGE="${2:-kernels}"
DRY_RUN=0
for arg in "$@"; do [ "$arg" = "--dry-run" ] && DRY_RUN=1; done
[ "$STAGE" = "--dry-run" ] && STAGE=kernels
mkdir -p "$OUT_ARG" && OUT="$(cd "$OUT_ARG" && pwd)"
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python}"
START=$SECONDS
BUDGET=290
log() { printf '[%4ds] %s\n' $((SECONDS - START)) "$*" | tee -a "$OUT/log.txt"; }

# Seconds a stage may take: its cap, or what is left of the budget (kernels stage only).
allowance() {  # CAP
  local left=$((BUDGET - (SECONDS - START)))
  if [ "$STAGE" != "kernels" ] || [ "$1" -lt "$left" ]; then echo "$1"; else echo $((left > 5 ? left : 5)); fi
}

# Runs a stage under `timeout`, its output into OUT/FILE; logs how it ended. Never stops the script.
stage() {  # NAME CAP FILE COMMAND...
  local name="$1" cap file="$OUT/$3"
  cap="$(allowance "$2")"
  shift 3
  log "$name (up to ${cap}s): $*"
  timeout --kill-after=10 "$cap" "$@" > "$file" 2>&1
  local rc=$?
  case $rc in
    0) log "$name: done" ;;
    124|137) log "$name: TIMED OUT after ${cap}s (partial output in $(basename "$file"))" ;;
    *) log "$name: exit $rc (see $(basename "$file"))"; tail -5 "$file" | sed 's/^/    /' | tee -a "$OUT/log.txt" ;;
  esac
  return 0
}

{ nvidia-smi || echo "nvidia-smi: not available"
  "$PY" -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device')"
  nvcc --version 2>/dev/null | tail -2; } > "$OUT/machine.txt" 2>&1
log "machine: $(tail -3 "$OUT/machine.txt" | head -1)"

# The in-tree library, loaded directly (no compile-on-import fallback): does it hold CUDA kernels?
has_cuda_build() {
  "$PY" - <<'EOF' 2>/dev/null
import glob, sys, torch
libs = glob.glob("fastfield/_C*.so")
try:
    torch.ops.load_library(libs[0])
except Exception:
    sys.exit(1)
sys.exit(0 if torch._C._dispatch_has_kernel_for_dispatch_key("fastfield::composite_density_fwd", "CUDA") else 1)
EOF
}

if [ "$DRY_RUN" = 1 ]; then
  log "dry run: no build; tests and benchmarks collected, not run"
  COLLECT=(--collect-only -q)
elif has_cuda_build; then
  log "the tree's fastfield/_C*.so has CUDA kernels for this torch: no build"
  COLLECT=()
else
  ARCH="$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())" 2>/dev/null || echo 9.0)"
  CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}" TORCH_CUDA_ARCH_LIST="$ARCH" MAX_JOBS=16 \
    stage "build with CUDA kernels for sm_${ARCH/./}" 200 build.log \
    "$PY" setup.py build_ext --inplace
  has_cuda_build || { log "no CUDA build: stopping (see build.log)"; exit 1; }
  COLLECT=()
fi

KERNEL_TESTS=(tests/test_composite_density.py tests/test_composite_sdf.py tests/test_pdf.py
              tests/test_rays.py tests/test_sampling.py tests/test_tile.py tests/test_marching.py
              tests/test_marching_checks.py tests/test_occupancy.py tests/test_encoding.py
              tests/test_encoding_inputs.py tests/test_hash_grid.py)
KERNEL_BENCH=(benchmarks/bench_composite.py benchmarks/bench_pdf.py benchmarks/bench_sampling.py
              benchmarks/bench_rays.py benchmarks/bench_marching.py benchmarks/bench_encoding.py)
# 8 pytest workers where pytest-xdist is installed (the test extra has it); one process otherwise.
WORKERS=()
"$PY" -c "import xdist" 2>/dev/null && WORKERS=(-n 8)

if [ "$STAGE" = "kernels" ]; then
  stage "kernel tests, CUDA cases" 60 tests_cuda.txt \
    "$PY" -m pytest "${KERNEL_TESTS[@]}" -k cuda "${WORKERS[@]}" -q -p no:cacheprovider "${COLLECT[@]}"
  tail -3 "$OUT/tests_cuda.txt" | tee -a "$OUT/log.txt"
  if [ "$DRY_RUN" = 1 ]; then
    stage "bandwidth (dry run on the CPU)" 60 bandwidth.txt \
      "$PY" benchmarks/bandwidth.py --dry-run --json "$OUT/bandwidth.json"
  else
    stage "compositing bandwidth" 45 bandwidth.txt \
      "$PY" benchmarks/bandwidth.py --json "$OUT/bandwidth.json"
  fi
  tail -3 "$OUT/bandwidth.txt" | tee -a "$OUT/log.txt"
  FASTFIELD_BENCH=gpu stage "op micro-benchmarks at GPU sizes, CUDA only" 110 bench_kernels.txt \
    "$PY" -m pytest "${KERNEL_BENCH[@]}" -k cuda -q -p no:cacheprovider \
    --benchmark-max-time=0.25 --benchmark-json="$OUT/bench_kernels.json" "${COLLECT[@]}"
  if [ -s "$OUT/bench_kernels.json" ]; then
    stage "summary" 20 summarize.txt \
      "$PY" benchmarks/summarize.py "$OUT/bench_kernels.json" --out "$OUT"
  fi
fi

if [ "$STAGE" = "suite" ]; then
  FASTFIELD_BENCH=gpu stage "benchmark suite at GPU sizes" 600 bench.txt \
    "$PY" -m pytest benchmarks -q -p no:cacheprovider --benchmark-json="$OUT/bench.json" \
    "${COLLECT[@]}"
  cp benchmarks/.results/memory.json "$OUT/memory.json" 2>/dev/null || true
  if [ -s "$OUT/bench.json" ]; then
    stage "summary" 60 summarize.txt \
      "$PY" benchmarks/summarize.py "$OUT/bench.json" --out "$OUT" --memory "$OUT/memory.json"
  fi
  [ "$DRY_RUN" = 1 ] || stage "profile of one nerf-lego training step (host-device syncs)" 300 \
    profile_nerf.txt "$PY" benchmarks/profile_step.py --preset nerf-lego --device cuda \
    --out "$OUT/profile_nerf.txt"
fi

if [ "$STAGE" = "steps" ]; then
  FASTFIELD_BENCH=gpu stage "training step per mode at GPU sizes, CUDA only" 500 bench_steps.txt \
    "$PY" -m pytest benchmarks/bench_step_modes.py -k cuda -q -p no:cacheprovider \
    --benchmark-json="$OUT/bench_steps.json" "${COLLECT[@]}"
  if [ -s "$OUT/bench_steps.json" ]; then
    stage "summary" 20 summarize.txt \
      "$PY" benchmarks/summarize.py "$OUT/bench_steps.json" --out "$OUT"
  fi
fi

if [ "$STAGE" = "train" ] && [ "$DRY_RUN" = 0 ]; then
  for backend in kernels reference; do
    iters=$([ "$backend" = kernels ] && echo 3000 || echo 500)
    stage "nerf-lego, $backend, $iters steps" 600 "lego-$backend.log" \
      "$PY" -m fastfield train --preset nerf-lego --data gpu_data/lego --device cuda \
      --backend "$backend" --iters "$iters" --out "$OUT/lego-$backend" --set val_every=100000
    "$PY" -m fastfield eval --run "$OUT/lego-$backend" --device cuda >> "$OUT/lego-$backend.log" 2>&1 || true
    iters=$([ "$backend" = kernels ] && echo 2000 || echo 300)
    stage "neus-womask on DTU scan24, $backend, $iters steps" 600 "dtu-$backend.log" \
      "$PY" -m fastfield train --preset neus-womask --data gpu_data/dtu_scan24 --device cuda \
      --backend "$backend" --iters "$iters" --out "$OUT/dtu-$backend" --set val_every=100000
    "$PY" -m fastfield eval --run "$OUT/dtu-$backend" --device cuda >> "$OUT/dtu-$backend.log" 2>&1 || true
  done
fi
log "done: $OUT"
