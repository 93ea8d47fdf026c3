#!/usr/bin/env bash
# Regression checking with pytest-benchmark, one machine at a time:
#   bash benchmarks/regress.sh save      run the suite and store it as this machine's baseline
#   bash benchmarks/regress.sh compare   run the suite again and fail (exit 1) where any
#                                        benchmark's median is more than 20% slower
# Extra arguments go to pytest (e.g. -k composite). FASTFIELD_BENCH (cpu, gpu, smoke) selects the
# sizes as for `pytest benchmarks`; a baseline is kept per size mode and compares only with runs
# of the same sizes. Results live in .benchmarks/<machine id>/ (git-ignored; another folder with
# FASTFIELD_BENCH_STORAGE); FASTFIELD_REGRESS_FAIL changes the criterion (pytest-benchmark's
# --benchmark-compare-fail syntax, default median:20%).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ACTION="${1:-}"
shift || true
NAME="baseline-${FASTFIELD_BENCH:-cpu}"
STORAGE="${FASTFIELD_BENCH_STORAGE:-$ROOT/.benchmarks}"
FAIL="${FASTFIELD_REGRESS_FAIL:-median:20%}"
PYTEST=(python -m pytest benchmarks -q --benchmark-storage="file://$STORAGE")
case "$ACTION" in
  save)
    exec "${PYTEST[@]}" --benchmark-save="$NAME" "$@" ;;
  compare)
    # The newest saved run of these sizes: pytest-benchmark names them NNNN_<name>.json.
    saved=$(ls -1 "$STORAGE"/*/*_"$NAME".json 2>/dev/null | sort | tail -n 1 || true)
    [ -n "$saved" ] || { echo "no saved $NAME run in $STORAGE: bash benchmarks/regress.sh save first" >&2; exit 2; }
    id=$(basename "$saved" .json)
    echo "comparing with $saved (fail on $FAIL)"
    exec "${PYTEST[@]}" --benchmark-compare="${id%%_*}" --benchmark-compare-fail="$FAIL" "$@" ;;
  *)
    echo "usage: bash benchmarks/regress.sh save|compare [pytest arguments]" >&2
    exit 2 ;;
esac
