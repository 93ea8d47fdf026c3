"""What a training run reports: a tqdm progress bar, ``metrics.jsonl`` and a training-curve PNG.

Records are JSON lines: training windows ``{"step", "loss", "psnr", "lr", "it_s", "elapsed",
...}`` every ``log_every`` steps, and validation renders ``{"step", "val_psnr", "val_view",
"image"}``.
"""
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from tqdm.auto import tqdm

METRICS_NAME = "metrics.jsonl"
CURVE_NAME = "training_curve.png"


def format_number(value, spec: str) -> str:
    """``format(value, spec)``, or "n/a" for None (a run with no record yet)."""
    return "n/a" if value is None else format(value, spec)


def read_records(path) -> List[Dict[str, Any]]:
    """The JSON records of a metrics.jsonl file ([] when it does not exist). A last line cut
    short by a crash is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def plot_curves(records: List[Dict[str, Any]], path) -> Optional[str]:
    """Loss (log scale) and PSNR (train windows and validation views) against the step, as a
    PNG at ``path``. Returns None, or why no plot was written (matplotlib missing)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no training-curve PNG (pip install matplotlib)"
    train = [r for r in records if "loss" in r]
    val = [r for r in records if "val_psnr" in r]
    figure, (loss_axis, psnr_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot([r["step"] for r in train], [r["loss"] for r in train])
    loss_axis.set(xlabel="step", ylabel="training loss", yscale="log", title="loss")
    psnr_axis.plot([r["step"] for r in train], [r["psnr"] for r in train], label="train batch")
    if val:
        psnr_axis.plot([r["step"] for r in val], [r["val_psnr"] for r in val], "o-",
                       label="validation view")
    psnr_axis.set(xlabel="step", ylabel="PSNR (dB)", title="PSNR")
    psnr_axis.legend()
    for axis in (loss_axis, psnr_axis):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return None


class TrainingLog:
    """Progress bar, metrics file and curve of one run in ``out_dir``.

    ``start_step`` > 0 (a resumed run) keeps the records up to that step and drops later ones,
    which an interrupted run may have logged after its last checkpoint.
    """

    def __init__(self, out_dir, total_steps: int, start_step: int, progress: bool = True):
        self.metrics_path = Path(out_dir) / METRICS_NAME
        self.curve_path = Path(out_dir) / CURVE_NAME
        kept = [r for r in read_records(self.metrics_path) if r.get("step", 0) <= start_step] \
            if start_step > 0 else []
        self.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self._curve_warning_shown = False
        self.bar = tqdm(total=total_steps, initial=start_step, disable=not progress,
                        file=sys.stderr, dynamic_ncols=True, unit="it")

    def record(self, record: Dict[str, Any]) -> None:
        with open(self.metrics_path, "a") as file:
            file.write(json.dumps(record) + "\n")

    def advance(self, steps: int, postfix: Dict[str, str]) -> None:
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(steps)

    def notice(self, message: str) -> None:
        """A line for the user that does not break the progress bar."""
        self.bar.write(message, file=sys.stderr)

    def plot(self) -> None:
        problem = plot_curves(read_records(self.metrics_path), self.curve_path)
        if problem and not self._curve_warning_shown:
            self.notice(problem)
            self._curve_warning_shown = True

    def close(self) -> None:
        self.bar.close()


class SilentLog:
    """TrainingLog's interface, doing nothing: the log of a rank other than 0 in a
    multi-process run (rank 0 alone writes the metrics and shows the bar)."""

    def record(self, record: Dict[str, Any]) -> None:
        pass

    def advance(self, steps: int, postfix: Dict[str, str]) -> None:
        pass

    def notice(self, message: str) -> None:
        pass

    def plot(self) -> None:
        pass

    def close(self) -> None:
        pass
