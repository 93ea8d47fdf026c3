"""Turn a saved benchmark run into a markdown summary and the render_rays scaling plot.

    python -m pytest benchmarks --benchmark-json=out/bench.json
    python benchmarks/summarize.py out/bench.json --out out/        # -> summary.md, scaling.png

The summary has one row per group: the median time of fastfield's kernels and of the reference
ops measured in the same run, and their ratio; the machine the run was on; the time per ray of
render_rays against ray count (with the rise from the first size >= 4096 rays to the largest);
the networks' share of each whole step / image (1 - pipeline time / whole time, kernels); and
the peak memory table when benchmarks/.results/memory.json is present (each workload in its own
process; the peak is over the workload alone where the kernel allows resetting it).
"""
import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Dict, List


def load(path: Path) -> dict:
    data = json.loads(path.read_text())
    if "benchmarks" not in data:
        raise SystemExit(f"{path}: not a pytest-benchmark JSON file (no 'benchmarks' key)")
    return data


def by_group(data: dict) -> Dict[str, Dict[str, dict]]:
    groups: Dict[str, Dict[str, dict]] = defaultdict(dict)
    for bench in data["benchmarks"]:
        groups[bench["group"]][bench["extra_info"].get("impl", bench["name"])] = bench
    return groups


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def ratio_table(groups) -> List[str]:
    """One row per group: fastfield against the reference ops, then one row for each other
    baseline measured in the group (e.g. nerf-pytorch's ways of making rays)."""
    lines = ["| group | fastfield (median) | baseline (median) | speed-up |",
             "|---|---:|---:|---:|"]
    for name in sorted(groups):
        impls = groups[name]
        ours = impls.get("fastfield")
        if ours is None:
            lines.append(f"| {name} | | " + ", ".join(
                f"{impl}: {fmt_time(b['stats']['median'])}" for impl, b in impls.items()) + " | |")
            continue
        ours_t = ours["stats"]["median"]
        baselines = [impl for impl in impls if impl != "fastfield"]
        baselines.sort(key=lambda impl: impl != "reference")  # the reference first
        if not baselines:
            lines.append(f"| {name} | {fmt_time(ours_t)} | | |")
        for impl in baselines:
            theirs = impls[impl]["stats"]["median"]
            label = name if impl == "reference" else f"{name} vs {impl}"
            lines.append(f"| {label} | {fmt_time(ours_t)} | {impl}: {fmt_time(theirs)} | "
                         f"{theirs / ours_t:.2f}x |")
    return lines


def scaling(data: dict):
    """{(preset, impl): [(n_rays, seconds per ray)]} from the render_rays groups."""
    series = defaultdict(list)
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        if info.get("scaling"):
            series[(info["preset"], info["impl"])].append(
                (info["n_rays"], bench["stats"]["median"] / info["n_rays"]))
    return {key: sorted(points) for key, points in series.items()}


def scaling_lines(series) -> List[str]:
    lines = ["| preset | impl | " + " | ".join(["time per ray at n rays ..."]) + " | rise from 4k |",
             "|---|---|---|---:|"]
    for (preset, impl), points in sorted(series.items()):
        cells = ", ".join(f"{n}: {fmt_time(t)}" for n, t in points)
        big = [t for n, t in points if n >= 4096]
        rise = f"{(big[-1] / big[0] - 1) * 100:+.0f}%" if len(big) >= 2 else "n/a"
        lines.append(f"| {preset} | {impl} | {cells} | {rise} |")
    return lines


def plot_scaling(series, path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no scaling plot (pip install matplotlib)")
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for (preset, impl), points in sorted(series.items()):
        ax.plot([n for n, _ in points], [t * 1e6 for _, t in points], marker="o",
                linestyle="-" if impl == "fastfield" else "--", label=f"{preset} ({impl})")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("rays per call")
    ax.set_ylabel("time per ray (us)")
    ax.set_title("render_rays: time per ray against ray count")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def network_share(groups) -> List[str]:
    """Share of the whole step spent in the networks: 1 - pipeline / whole (kernels)."""
    lines = []
    for name in sorted(groups):
        if name.startswith("pipeline ") or "fastfield" not in groups[name]:
            continue
        trivial = groups.get("pipeline " + name, {}).get("fastfield")
        if trivial is None:
            continue
        whole = groups[name]["fastfield"]["stats"]["median"]
        lines.append(f"| {name} | {(1 - trivial['stats']['median'] / whole) * 100:.0f}% |")
    return (["| workload (fastfield kernels) | networks' share |", "|---|---:|"] + lines
            if lines else [])


def memory_lines(path: Path) -> List[str]:
    if not path.is_file():
        return []
    results = json.loads(path.read_text())["results"]
    lines = ["| workload | preset | backend | peak RSS in the workload (MiB) | RSS after setup (MiB) "
             "| CUDA peak (MiB) |",
             "|---|---|---|---:|---:|---:|"]
    for r in results:
        cuda = f"{r['cuda_peak_mib']:.0f}" if "cuda_peak_mib" in r else ""
        lines.append(f"| {r['workload']} | {r['preset']} | {r['backend']} | "
                     f"{r['peak_rss_mib']:.0f} | {r['baseline_rss_mib']:.0f} | {cuda} |")
    return lines


def machine_line(data: dict) -> str:
    info = next((b["extra_info"] for b in data["benchmarks"] if "torch" in b["extra_info"]), {})
    keys = ["gpu", "cpu", "threads", "torch", "cuda", "bench_mode"]
    return ", ".join(f"{k}: {info[k]}" for k in keys if info.get(k) is not None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", type=Path, help="file written by --benchmark-json")
    parser.add_argument("--out", type=Path, default=None, help="folder for summary.md and scaling.png")
    parser.add_argument("--memory", type=Path,
                        default=Path(__file__).resolve().parent / ".results" / "memory.json")
    args = parser.parse_args()
    data = load(args.json)
    groups = by_group(data)
    out = args.out or args.json.parent
    out.mkdir(parents=True, exist_ok=True)
    series = scaling(data)
    sections = [f"# fastfield benchmarks ({data.get('datetime', '')[:19]})", "",
                f"Machine: {machine_line(data)}", "", "## Kernels against reference, same run",
                "", *ratio_table(groups)]
    if series:
        sections += ["", "## render_rays: time per ray", "", *scaling_lines(series)]
        if plot_scaling(series, out / "scaling.png"):
            sections += ["", "![scaling](scaling.png)"]
    share = network_share(groups)
    if share:
        sections += ["", "## Share of time in the networks", "", *share]
    memory = memory_lines(args.memory)
    if memory:
        sections += ["", "## Peak memory", "", *memory]
    (out / "summary.md").write_text("\n".join(sections) + "\n")
    print(f"wrote {out / 'summary.md'}")


if __name__ == "__main__":
    main()
