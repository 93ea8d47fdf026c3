#!/usr/bin/env bash
# Regression checking with pytest-benchmark, one machine at a time:
#   bash benchmarks/regress.sh save      run the suite and store it as this machine's baseline
#   bash benchmarks/regress.sh compare   run the suite again and fail (exit 1) where any
#                                        benchmark's median is more than 20% slower
# Extra arguments go to pytest (e.g. -k composite). Results live in .benchmarks/<machine id>/
# (git-ignored); FASTFIELD_BENCH (cpu, gpu, smoke) selects the sizes as for `pytest benchmarks`,
# and a baseline only compares with runs of the same sizes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ACTION="${1:-}"
shift || true
NAME="baseline-${FASTFIELD_BENCH:-cpu}"
STORAGE=(--benchmark-storage="file://$ROOT/.benchmarks")
case "$ACTION" in
  save)
    exec python -m pytest benchmarks -q "${STORAGE[@]}" --benchmark-save="$NAME" "$@" ;;
  compare)
    # The newest saved run of these sizes: pytest-benchmark names them NNNN_<name>.json.
    saved=$(ls -1 "$ROOT"/.benchmarks/*/*_"$NAME".json 2>/dev/null | sort | tail -n 1)
    [ -n "$saved" ] || { echo "no saved $NAME run: bash benchmarks/regress.sh save first" >&2; exit 2; }
    id=$(basename "$saved" .json); id=${id%%_*}
    echo "comparing with $saved"
    exec python -m pytest benchmarks -q "${STORAGE[@]}" --benchmark-compare="$id" \
        --benchmark-compare-fail=median:20% "$@" ;;
  *)
    echo "usage: bash benchmarks/regress.sh save|compare [pytest arguments]" >&2
    exit 2 ;;
esac
