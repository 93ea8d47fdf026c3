"""``fastfield demo``: the whole pipeline on the built-in scene, into one folder.

A NeRF run (trained, evaluated on the held-out test views, a video along the orbit) and a
NeuS run (trained, evaluated, its mesh exported and scored against the scene's exact surface),
then ``SUMMARY.md`` and ``summary.json`` saying what is where and the numbers.

On a CPU the runs are cut down so that the whole demo takes about five minutes on two cores;
on a GPU they use the sizes of the ``nerf-small`` / ``neus-small`` presets. NeuS trains with
the object masks in both. Running the demo again in the same folder resumes or reuses its
runs.
"""
import json
import time
from pathlib import Path
from typing import Any, Dict, List

import imageio.v3 as iio
import numpy as np

from ..config import apply_override, preset
from ..core.atomic import atomic_path
from ..render.backend import DEFAULT_BACKEND
from ..train.checkpoint import checkpoint_path
from ..train.device import resolve_device
from ..train.log import format_number
from ..train.metrics import mean_colour_psnr
from .commands import chamfer, evaluate_run, export_mesh, path_video, train
from .runs import TrainedRun

# NeuS learns its surface from the object masks too (neus-wmask's supervision: mask loss 0.1,
# no background model): in a demo-sized run that is what turns colours into a clean mesh.
NEUS_WITH_MASKS = ["data.use_masks=true", "mask_weight=0.1", "neus.n_outside=0"]
# Per device type: (run folder, preset, overrides). On a GPU the presets' own sizes; on a CPU
# sizes cut so that the whole demo takes about five minutes on two cores.
DEMO_PLAN = {
    "cpu": [("nerf", "nerf-small", ["data.builtin_resolution=32", "iters=600", "batch_rays=256",
                                    "log_every=25", "val_every=200", "ckpt_every=200"]),
            ("neus", "neus-small", [*NEUS_WITH_MASKS, "data.builtin_resolution=32", "iters=600",
                                    "batch_rays=128", "lr=1e-3", "warm_up=50", "anneal_end=200",
                                    "log_every=25", "val_every=300", "ckpt_every=200"])],
    "cuda": [("nerf", "nerf-small", []), ("neus", "neus-small", NEUS_WITH_MASKS)],
}
VIDEO_FRAMES = {"cpu": 20, "cuda": 40}
OVERVIEW_HEIGHT = 192  # pixels per row of overview.png (nearest-neighbour upscaling)
MESH_RESOLUTION = {"cpu": 96, "cuda": 256}
CHAMFER_POINTS = 10_000


def run_demo(out_dir, device="auto", progress: bool = True) -> Path:
    """Run the demo into ``out_dir``; returns the path of its SUMMARY.md."""
    device = resolve_device(device, DEFAULT_BACKEND)
    kind = "cuda" if device.type == "cuda" else "cpu"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary: Dict[str, Any] = {"device": str(device), "runs": {}}
    overview_rows: List[List[np.ndarray]] = []
    for folder, name, overrides in DEMO_PLAN[kind]:
        config = preset(name)
        for assignment in overrides:
            apply_override(config, assignment)
        run_dir = out / folder
        started = time.perf_counter()
        trainer = train(config, run_dir, device, resume=checkpoint_path(run_dir).is_file(),
                        progress=progress)
        timings = {"train_s": time.perf_counter() - started}
        started = time.perf_counter()
        trained = TrainedRun.from_trainer(trainer)
        test = evaluate_run(trained, "test", run_dir / "eval_test", progress=progress)
        timings["eval_s"] = time.perf_counter() - started
        views = trained.scene.split("test")
        overview_rows.append(_overview_row(views, run_dir / "eval_test"))
        run = {"preset": name, "overrides": overrides, "steps": trainer.step,
               "train": trainer.summary(), "test_psnr": test["mean_psnr"],
               "test_ssim": test["mean_ssim"], "test_note": test["note"],
               "mean_colour_psnr": mean_colour_psnr(views.images),
               "files": {"checkpoint": f"{folder}/checkpoint.pt",
                         "metrics": f"{folder}/metrics.jsonl",
                         "curve": f"{folder}/training_curve.png",
                         "test_images": f"{folder}/eval_test/"}}
        if "mean_psnr_masked" in test:  # NeuS with masks: no background model to score
            run["test_psnr_masked"] = test["mean_psnr_masked"]
            run["mean_colour_psnr_masked"] = mean_colour_psnr(views.images, views.masks)
        if (run_dir / "val").is_dir():
            run["files"]["validation_images"] = f"{folder}/val/"
        started = time.perf_counter()
        if config.model == "nerf":
            video, _ = path_video(trained, run_dir / "video.mp4", VIDEO_FRAMES[kind], fps=10,
                                  progress=progress)
            run["files"]["video"] = str(video.relative_to(out))
        else:
            export_mesh(trained, run_dir / "mesh.ply", MESH_RESOLUTION[kind])
            run["files"]["mesh"] = f"{folder}/mesh.ply"
            run["surface"] = chamfer(trained, MESH_RESOLUTION[kind], CHAMFER_POINTS, 0)
        timings["outputs_s"] = time.perf_counter() - started
        run["timings"] = timings
        summary["runs"][folder] = run
    summary["overview"] = "overview.png"
    write_overview(out / summary["overview"], overview_rows)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    summary_path = out / "SUMMARY.md"
    summary_path.write_text(_markdown(summary))
    return summary_path


def _overview_row(views, eval_dir: Path) -> List[np.ndarray]:
    """Test view 0: the scene's image, then what ``evaluate`` wrote for it (render, depth and,
    for NeuS, normals), each [H, W, 3] uint8."""
    name = Path(views.names[0]).stem
    panels = [views.images[0].numpy()]
    for kind in ("rgb", "depth", "normal"):
        path = eval_dir / f"{name}_{kind}.png"
        if path.is_file():
            panels.append(iio.imread(path)[..., :3])
    return panels


def write_overview(path: Path, rows: List[List[np.ndarray]]) -> None:
    """One row per run, panels side by side, upscaled to OVERVIEW_HEIGHT, on white."""
    gap = 4
    scaled_rows = []
    for panels in rows:
        factor = max(1, OVERVIEW_HEIGHT // panels[0].shape[0])
        scaled = [np.repeat(np.repeat(panel, factor, 0), factor, 1) for panel in panels]
        spacer = np.full((scaled[0].shape[0], gap, 3), 255, np.uint8)
        scaled_rows.append(np.concatenate([x for panel in scaled for x in (panel, spacer)][:-1], 1))
    width = max(row.shape[1] for row in scaled_rows)
    padded = [np.pad(row, ((0, gap), (0, width - row.shape[1]), (0, 0)), constant_values=255)
              for row in scaled_rows]
    with atomic_path(path) as temporary:
        iio.imwrite(temporary, np.concatenate(padded, 0)[:-gap])


def _markdown(summary: Dict[str, Any]) -> str:
    lines: List[str] = [
        "# fastfield demo", "",
        f"The built-in scene (generated by fastfield, exact surface known), trained on "
        f"{summary['device']}. Numbers are also in `summary.json`.", "",
        f"![overview]({summary['overview']})", "",
        "Rows: NeRF, NeuS on test view 0. Columns: the scene's image, the render, its depth "
        "(near is bright), and NeuS's normals in the camera's frame.", ""]
    for folder, run in summary["runs"].items():
        timings = run["timings"]
        lines += [
            f"## {folder}: `{run['preset']}`"
            + (f" with `{' '.join('--set ' + o for o in run['overrides'])}`"
               if run["overrides"] else ""), "",
            f"- {run['steps']} steps in {timings['train_s']:.0f} s; last training window: loss "
            f"{format_number(run['train']['loss'], '.4g')}, "
            f"PSNR {format_number(run['train']['psnr'], '.2f')} dB",
            f"- test PSNR **{run['test_psnr']:.2f} dB**, SSIM {run['test_ssim']:.3f} "
            f"({run['test_note']}); predicting each view's mean colour scores "
            f"{run['mean_colour_psnr']:.2f} dB",
        ]
        if "test_psnr_masked" in run:
            lines.append(
                f"- inside the object masks (NeuS trained with masks has no background model, "
                f"so it renders black around the object): PSNR "
                f"**{run['test_psnr_masked']:.2f} dB** against {run['mean_colour_psnr_masked']:.2f}"
                f" dB for each view's mean object colour")
        if "surface" in run:
            surface = run["surface"]
            lines.append(
                f"- mesh Chamfer distance to the true surface **{surface['chamfer']:.4f}** "
                f"(normalised unit-sphere units; {surface['chamfer_world']:.4f} in the scene "
                f"files' world units; a perfect mesh scores {surface['sampling_floor']:.4f} "
                f"with {surface['points']} points); {100 * surface['outward_fraction']:.1f}% "
                f"of the faces point outward")
        lines += ["", "| what | where |", "|---|---|"]
        lines += [f"| {what} | `{where}` |" for what, where in run["files"].items()]
        lines.append("")
    lines += ["Continue a run: `fastfield train --out <run folder> --resume --iters N`; "
              "evaluate: `fastfield eval --run <run folder>`.", ""]
    return "\n".join(lines)
