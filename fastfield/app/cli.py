"""The ``fastfield`` command (also ``python -m fastfield``): train, eval, render, mesh, chamfer,
demo, process.

Mistakes (an unknown preset or option, a missing data or run folder, a checkpoint of another
model, a device that does not exist) end in one line on stderr saying what is wrong and what is
accepted, with exit code 2; FASTFIELD_TRACEBACK=1 shows the full traceback instead.
"""
import argparse
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

from .. import config as configs
from ..core.checks import first_line
from ..render.backend import BACKENDS
from ..render.graphed import GRAPH_MODES
from ..train.distributed import launched_by_torchrun
from ..train.precision import PRECISIONS

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) and exit code 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_device(parser, default: str = "auto"):
    parser.add_argument("--device", default=default,
                        help="cpu, cuda or cuda:N; auto = cuda when a GPU is visible "
                             f"(default: {default})")


def _add_backend_precision(parser, what: str):
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help=f"fastfield kernels or the pure-PyTorch reference ops "
                             f"(default: {what})")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help=f"fp32 (the CPU default); tf32 (float32 with TensorFloat-32 "
                             f"matrix products: the CUDA default, an error on a CPU); bf16 "
                             f"(autocast around the networks) (default: {what})")


def _run_command(commands, name: str, handler, run_help: str, resolution: bool = False,
                 **kwargs) -> argparse.ArgumentParser:
    """A command that works on a run folder: --run, --device (and --resolution for meshes)."""
    parser = commands.add_parser(name, **kwargs)
    parser.add_argument("--run", required=True, help=run_help)
    if resolution:
        parser.add_argument("--resolution", type=int,
                            help="marching-cubes grid points per axis (default: 512 on a GPU, "
                                 "128 on a CPU)")
    _add_device(parser)
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fastfield",
                     description="NeRF and NeuS radiance fields on fused C++/CUDA kernels. "
                                 "Start with 'fastfield demo'; 'fastfield COMMAND --help' "
                                 "explains each command.",
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     epilog="presets:\n  " + configs.describe().replace("\n", "\n  "))
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    train = commands.add_parser(
        "train", help="train a preset on the built-in scene or a dataset",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a NeRF or NeuS preset. Writes checkpoint.pt, metrics.jsonl, "
                    "training_curve.png and val/*.png to --out.",
        epilog="presets:\n  " + configs.describe().replace("\n", "\n  ")
               + "\n\nexamples:\n  fastfield train --preset nerf-small\n"
                 "  fastfield train --preset nerf-lego --data ../shared/data/nerf_synthetic/lego"
                 " --device cuda\n  fastfield train --preset neus-small --set batch_rays=128 "
                 "--set neus.n_samples=16 --iters 500")
    train.add_argument("--preset", help="the configuration to start from (see the list below); "
                                        "optional with --resume")
    train.add_argument("--data", help="scene folder (Blender, LLFF, NeuS or transforms.json, "
                                      "e.g. from fastfield process); default: the built-in "
                                      "scene")
    train.add_argument("--out", help="run folder (default: runs/<preset>)")
    train.add_argument("--iters", type=int, help="training steps")
    _add_device(train)
    train.add_argument("--seed", type=int, help="random seed (initialisation and sampling)")
    _add_backend_precision(train, "kernels / the device's, or the checkpoint's with "
                                  "--resume")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field, e.g. --set lr=1e-3 --set "
                            "nerf.n_fine=64 (see --print-config for the fields)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its checkpoint")
    train.add_argument("--print-config", action="store_true",
                       help="print the resulting configuration as JSON and exit")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.add_argument("--cuda-graph", choices=GRAPH_MODES, default="auto",
                       help="capture the training step in a CUDA graph and replay it: auto = "
                            "where capture works, else eager with the reason; on = an error "
                            "where it cannot (default: auto)")
    train.add_argument("--compile", action="store_true",
                       help="compile the fields with torch.compile (fuses the work around "
                            "their matrix products; NeuS's SDF field stays eager); the first "
                            "steps compile")
    train.add_argument("--nproc", type=int, default=1,
                       help="data-parallel processes, launched as torchrun would: on CUDA one "
                            "GPU each (at most the visible GPUs), on a CPU N gloo processes "
                            "sharing its cores; each draws batch_rays/N rays per step "
                            "(default: 1; under torchrun its --nproc_per_node decides)")
    train.set_defaults(handler=cmd_train)

    run_folder, neus_run = "the run folder (train's --out)", "the run folder of a NeuS run"
    evaluate = _run_command(commands, "eval", cmd_eval, run_folder,
                            help="PSNR / SSIM of a run on a split, with images")
    evaluate.add_argument("--split", default="test", help="test, val or train (default: test)")
    evaluate.add_argument("--out", help="output folder (default: <run>/eval_<split>)")
    _add_backend_precision(evaluate, "the run's")

    render = _run_command(commands, "render", cmd_render, run_folder,
                          help="a video along the scene's render path")
    render.add_argument("--frames", type=int,
                        help="frames, evenly spaced along the path (default: all of its frames: "
                             "40 for Blender, 60 for NeuS, 120 for LLFF)")
    render.add_argument("--fps", type=int, default=30, help="frames per second (default: 30)")
    render.add_argument("--out", help="video file, .mp4 or .gif (default: <run>/video.mp4; a "
                                      "GIF when no MP4 encoder is installed)")
    _add_backend_precision(render, "the run's")

    mesh = _run_command(commands, "mesh", cmd_mesh, neus_run, resolution=True,
                        help="a NeuS run's surface as a PLY mesh")
    mesh.add_argument("--out", help="PLY file (default: <run>/mesh.ply), world coordinates")

    chamfer = _run_command(
        commands, "chamfer", cmd_chamfer, neus_run, resolution=True,
        help="Chamfer distance of a NeuS run's mesh to the built-in scene's surface",
        description="Extract the mesh of a NeuS run trained on the built-in scene and measure "
                    "its Chamfer distance to the scene's exact surface (the built-in scene is "
                    "the one whose surface is known), in the normalised unit-sphere frame.")
    chamfer.add_argument("--points", type=int, default=10_000,
                         help="points sampled on each surface (default: 10000)")
    chamfer.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")

    demo = commands.add_parser(
        "demo", help="train, evaluate, render and mesh the built-in scene in one go",
        description="The whole pipeline on the built-in scene: a NeRF and a NeuS run, their "
                    "test metrics, a video and the NeuS mesh with its Chamfer distance to the "
                    "true surface, all in one folder with SUMMARY.md. About 5 minutes on two "
                    "CPU cores; with --device cuda the runs use the full nerf-small and "
                    "neus-small presets.")
    demo.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    _add_device(demo)
    demo.set_defaults(handler=cmd_demo)
    _add_process(commands)
    return parser


def _add_process(commands) -> None:
    from ..capture.process import DEFAULT_FRAMES, FORWARD_FACING
    from ..capture.sfm import CAMERA_MODELS, MATCHING

    process = commands.add_parser(
        "process", help="your own photos or video -> a scene folder (COLMAP through pycolmap)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Structure from motion on a folder of photos or a video: COLMAP (pycolmap, "
                    "pip install -e \".[capture]\") registers the images and the scene folder "
                    "gets nerfstudio's transforms.json, undistorted images/ (+ images_2/4/8), "
                    "sparse_pc.ply and NeuS's cameras_sphere.npz, ready for fastfield train "
                    "--data with the NeRF and the NeuS presets.",
        epilog="examples:\n  fastfield process my_photos/ --out scenes/mine\n"
               "  fastfield process walkaround.mp4 --out scenes/walk --frames 200\n"
               "  fastfield train --preset nerf-small --data scenes/mine")
    process.add_argument("source", help="a folder of photos (png/jpg, all one size) or a video")
    process.add_argument("--out", required=True,
                         help="the scene folder to write (it must not exist; see --overwrite)")
    process.add_argument("--frames", type=int, default=DEFAULT_FRAMES,
                         help=f"video: frames kept, spread over the video, the sharpest of each "
                              f"stretch (default: {DEFAULT_FRAMES})")
    process.add_argument("--camera-model", choices=CAMERA_MODELS, default=CAMERA_MODELS[0],
                         help=f"COLMAP camera model shared by all images (default: "
                              f"{CAMERA_MODELS[0]})")
    process.add_argument("--matching", choices=MATCHING,
                         help="feature matching (default: exhaustive for photos, sequential "
                              "for video)")
    process.add_argument("--forward-facing", choices=FORWARD_FACING, default="auto",
                         help="whether the NeRF presets render the scene in NDC as LLFF scenes "
                              "(default: auto, detected from the cameras and points)")
    process.add_argument("--masks", metavar="DIR",
                         help="photos only: object masks, one per photo (same name, or the "
                              "i-th mask for the i-th photo), undistorted with the photos")
    process.add_argument("--overwrite", action="store_true",
                         help="replace --out if it is an earlier scene folder (or empty)")
    process.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    process.add_argument("--threads", type=int,
                         help="COLMAP's worker threads (default: one per core); 1 gives the "
                              "same scene from the same photos on every run, more slowly")
    process.add_argument("--verbose", action="store_true", help="show COLMAP's log")
    process.set_defaults(handler=cmd_process)


# ----------------------------------------------------------------------------- commands

def training_config(args) -> configs.TrainConfig:
    """The preset (or, resuming without one, the checkpoint's config) with the command line's
    overrides applied."""
    from ..train.checkpoint import checkpoint_config, checkpoint_path, load_checkpoint

    if args.preset is not None:
        config = configs.preset(args.preset)
    elif args.resume and args.out:
        config = checkpoint_config(load_checkpoint(checkpoint_path(args.out)))
    else:
        raise ValueError("train needs --preset (or --resume with --out); accepted presets: "
                         + ", ".join(sorted(configs.PRESETS)))
    for assignment in args.set:
        configs.apply_override(config, assignment)
    if args.data is not None:
        config.data.path = str(Path(args.data).resolve())
    if args.iters is not None:
        config.iters = args.iters
    if args.seed is not None:
        config.seed = args.seed
    return config


def cmd_train(args) -> int:
    from ..train.log import format_number
    from .commands import train

    config = training_config(args)
    if args.print_config:
        print(configs.to_json(config))
        return 0
    out = Path(args.out or Path("runs") / args.preset)
    if args.nproc != 1 and not launched_by_torchrun():
        from .commands import launch_training
        launch_training(args.argv, args.nproc, config, out, args.device, args.backend)
        return 0
    trainer = train(config, out, args.device, args.backend, args.precision, args.resume,
                    progress=not args.no_progress, cuda_graph=args.cuda_graph,
                    compile=args.compile)
    if not trainer.world.is_main:
        return 0
    summary = trainer.summary()
    processes = f" x {summary['processes']} processes" if summary["processes"] > 1 else ""
    print(f"trained {config.model} for {summary['step']} steps in {summary['elapsed']:.0f} s "
          f"on {summary['device']}{processes}: loss {format_number(summary['loss'], '.4g')}, training PSNR "
          f"{format_number(summary['psnr'], '.2f')} dB, last validation view "
          f"{format_number(summary['val_psnr'], '.2f')} dB; run folder {out}")
    return 0


def cmd_eval(args) -> int:
    from .commands import evaluate_run
    from .runs import load_run

    run = load_run(args.run, args.device, args.backend, args.precision)
    out = Path(args.out) if args.out else run.run_dir / f"eval_{args.split}"
    result = evaluate_run(run, args.split, out)
    # A run with object masks is judged on the object, as NeuS reports it: that number first.
    masked = (f"masked PSNR {result['mean_psnr_masked']:.2f} dB (pixels inside the masks), "
              if "mean_psnr_masked" in result else "")
    print(f"{args.split}: {masked}PSNR {result['mean_psnr']:.2f} dB, SSIM "
          f"{result['mean_ssim']:.4f} (mean over views) -- {result['note']}; images and "
          f"metrics.json in {out}")
    return 0


def cmd_render(args) -> int:
    from .commands import path_video
    from .runs import load_run

    run = load_run(args.run, args.device, args.backend, args.precision)
    written, n_frames = path_video(run, args.out or run.run_dir / "video.mp4", args.frames,
                                   fps=args.fps)
    print(f"wrote {n_frames} frames to {written}")
    return 0


def cmd_mesh(args) -> int:
    from .commands import export_mesh
    from .runs import load_run

    run = load_run(args.run, args.device)
    out = Path(args.out) if args.out else run.run_dir / "mesh.ply"
    vertices, faces = export_mesh(run, out, args.resolution)
    print(f"wrote {len(vertices)} vertices and {len(faces)} faces (world coordinates) to {out}")
    return 0


def cmd_chamfer(args) -> int:
    from .commands import chamfer
    from .runs import load_run

    run = load_run(args.run, args.device, load_scene=False)
    print(json.dumps(chamfer(run, args.resolution, args.points, args.seed)))
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    summary_path = run_demo(args.out, args.device)
    print(f"demo finished: {summary_path}")
    return 0


def cmd_process(args) -> int:
    from ..capture import format_summary, process

    summary = process(args.source, args.out, frames=args.frames, camera_model=args.camera_model,
                      matching=args.matching, forward_facing=args.forward_facing,
                      masks=args.masks, overwrite=args.overwrite, progress=not args.no_progress,
                      verbose=args.verbose, threads=args.threads)
    print(format_summary(summary))
    return 0


# ----------------------------------------------------------------------------- entry point

def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line ``argv`` (default sys.argv[1:]); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2, already printed)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print(f"fastfield {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, OSError, RuntimeError, ImportError) as error:
        if os.environ.get("FASTFIELD_TRACEBACK") == "1":
            raise
        print(f"fastfield {args.command}: error: {first_line(error)}", file=sys.stderr)
        return EXIT_USAGE
