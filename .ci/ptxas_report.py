"""Registers, stack and spills of every CUDA kernel, from a build log made with
FASTFIELD_PTXAS_VERBOSE=1 (ptxas -v), and a failure when any kernel spills.

    python .ci/ptxas_report.py BUILD_LOG [--arch sm_90]

ptxas prints, per entry function (kernel) and architecture:
    ptxas info    : Compiling entry function '<mangled>' for 'sm_90'
    ptxas info    : Function properties for <mangled>
        S bytes stack frame, N bytes spill stores, M bytes spill loads
    ptxas info    : Used R registers, ...
Occupancy follows from R with the launch's 256 threads per block (csrc/common/tile.h): on
sm_80/sm_90, 65536 registers per SM allocated per warp in units of 256 (R rounded up to a
multiple of 8), at most 2048 threads (8 such blocks) per SM.
"""
import argparse
import re
import shutil
import subprocess
import sys
from typing import Dict, List

ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(sm_\d+)'")
PROPERTIES = re.compile(r"Function properties for (\S+)")
FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
USED = re.compile(r"Used (\d+) registers")
THREADS_PER_BLOCK = 256


def parse(log: str) -> List[Dict[str, object]]:
    """One record per (kernel, architecture) in the order ptxas compiled them."""
    kernels, current, pending = [], None, None
    for line in log.splitlines():
        if (m := ENTRY.search(line)):
            current = {"name": m.group(1), "arch": m.group(2)}
            kernels.append(current)
        elif (m := PROPERTIES.search(line)):
            pending = m.group(1)
        elif (m := FRAME.search(line)) and current is not None and pending == current["name"]:
            current["stack"], current["spill_stores"], current["spill_loads"] = map(int, m.groups())
        elif (m := USED.search(line)) and current is not None:
            current.setdefault("registers", int(m.group(1)))
    return kernels


def demangle(names: List[str]) -> List[str]:
    if not names or shutil.which("c++filt") is None:
        return names
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True)
    lines = out.stdout.splitlines()
    return lines if len(lines) == len(names) else names


def short_name(demangled: str) -> str:
    """'fastfield::cuda::apply_per_tile<32, fastfield::SdfBackwardTiles<true, float> >(...)'
    -> 'SdfBackwardTiles<true, float> x32'."""
    m = re.search(r"apply_per_tile<(\d+), fastfield::(.+)>\(", demangled)
    if m:
        return f"{m.group(2).strip()} x{m.group(1)}"
    m = re.search(r"apply_per_item<(.+?)>\(", demangled)
    if m:
        body = re.sub(r"\(lambda\)|\{lambda[^}]*\}#?\d*", "lambda", m.group(1))
        return f"per item: {body[:70]}"
    return demangled[:90]


def blocks_per_sm(registers: int) -> int:
    per_warp = ((max(registers, 1) * 32 + 255) // 256) * 256
    warps = THREADS_PER_BLOCK // 32
    return min(65536 // (per_warp * warps), 2048 // THREADS_PER_BLOCK)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log")
    parser.add_argument("--arch", default=None, help="only this architecture, e.g. sm_90")
    args = parser.parse_args()
    with open(args.log, errors="replace") as f:
        kernels = [k for k in parse(f.read()) if args.arch in (None, k["arch"])]
    if not kernels:
        print(f"FAIL: no ptxas -v output in {args.log} (build with FASTFIELD_PTXAS_VERBOSE=1)")
        return 1
    names = demangle([str(k["name"]) for k in kernels])
    spilling = []
    print(f"{'kernel':58s} {'arch':6s} {'regs':>4s} {'stack':>5s} {'spill st/ld':>11s} "
          f"{'blocks/SM':>9s}")
    for k, name in sorted(zip(kernels, names), key=lambda kn: short_name(kn[1])):
        spills = (k.get("spill_stores", 0), k.get("spill_loads", 0))
        regs = int(k.get("registers", 0))
        tile = "apply_per_tile" in name
        occupancy = f"{blocks_per_sm(regs)}" if tile else "-"
        print(f"{short_name(name):58s} {k['arch']:6s} {regs:4d} {k.get('stack', 0):5d} "
              f"{spills[0]:5d}/{spills[1]:<5d} {occupancy:>9s}")
        if any(spills):
            spilling.append(short_name(name))
    if spilling:
        print(f"FAIL: {len(spilling)} kernels spill registers: {spilling}")
        return 1
    print(f"OK: {len(kernels)} kernels, none spills")
    return 0


if __name__ == "__main__":
    sys.exit(main())
