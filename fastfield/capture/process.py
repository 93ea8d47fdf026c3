"""``process``: a folder of photos or a video in, a trainable scene folder out.

Everything is built in a hidden folder beside ``out`` and renamed into place at the end, so a
failure or Ctrl-C leaves no half-written scene (and, with ``overwrite``, the old one intact);
the source is only read.
"""
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from . import normalize, sfm, writer
from ..data._io import read_image
from .frames import extract_frames
from .images import MIN_IMAGES, check_photos, match_masks

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv")
FORWARD_FACING = ("auto", "yes", "no")
DEFAULT_FRAMES = 150


def process(source, out, *, frames: int = DEFAULT_FRAMES, camera_model: str = "SIMPLE_RADIAL",
            matching: Optional[str] = None, forward_facing: str = "auto",
            masks: Optional[str] = None, overwrite: bool = False, progress: bool = True,
            verbose: bool = False, threads: Optional[int] = None) -> Dict:
    """Run structure from motion on ``source`` and write a scene folder at ``out``.

    Args:
        source: a folder of photos (png/jpg, one size) or a video file.
        out: the scene folder to create; it must not exist unless ``overwrite`` (which replaces
            only an earlier scene folder, one holding transforms.json, or an empty folder).
        frames: video only: frames kept, spread over the video (the sharpest of each stretch).
        camera_model: COLMAP camera model shared by all images (one of sfm.CAMERA_MODELS).
        matching: "exhaustive" or "sequential"; None: exhaustive for photos, sequential for
            video.
        forward_facing: "auto" (detected, normalize.forward_facing), "yes" or "no": whether
            the NeRF presets render the capture in NDC, as LLFF scenes.
        masks: photos only: a folder with an object mask per photo (images.match_masks); they
            are undistorted with their photos and written as masks/ (mask_path per frame).
        verbose: show COLMAP's own log.
        threads: COLMAP's worker threads (None: one per core). 1 gives the same scene from the
            same photos on every run, at the cost of speed: COLMAP's geometric verification
            and mapping draw random samples per thread.
    Returns:
        The summary (also written to ``out/process.json``); ``format_summary`` prints it.
    """
    source, out = Path(source), Path(out)
    if camera_model not in sfm.CAMERA_MODELS:
        raise ValueError(f"camera_model must be one of {', '.join(sfm.CAMERA_MODELS)}, got "
                         f"{camera_model!r}")
    if matching not in (None, *sfm.MATCHING):
        raise ValueError(f"matching must be one of {', '.join(sfm.MATCHING)}, got {matching!r}")
    if forward_facing not in FORWARD_FACING:
        raise ValueError(f"forward_facing must be one of {', '.join(FORWARD_FACING)}, got "
                         f"{forward_facing!r}")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < sfm.MIN_REGISTERED:
        raise ValueError(f"frames must be an integer >= {sfm.MIN_REGISTERED}, got {frames!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValueError(f"threads must be an integer >= 1 or None, got {threads!r}")
    colmap_threads = sfm.ALL_CORES if threads is None else threads
    is_video = _source_kind(source)
    if masks is not None and is_video:
        raise ValueError("--masks applies to a folder of photos, not to a video")
    _check_out(source, out, overwrite)
    pycolmap = sfm.import_pycolmap()  # before any work: without it, one line naming the extra
    pycolmap.logging.minloglevel = 0 if verbose else 3
    pycolmap.set_random_seed(sfm.SEED)
    matching = matching or ("sequential" if is_video else "exhaustive")

    seconds: Dict[str, float] = {}
    summary = {"source": str(source), "kind": "video" if is_video else "photos",
               "camera_model": camera_model, "matching": matching, "masks": masks is not None,
               "threads": threads,
               "seconds": seconds}
    with _staging(out) as staging:
        work = staging / "colmap"
        work.mkdir()
        with _timed(seconds, "frames" if is_video else "checking"):
            if is_video:
                image_dir = staging / "frames"
                image_dir.mkdir()
                mask_files = None
                names = extract_frames(source, image_dir, frames, progress)
                if len(names) < MIN_IMAGES:
                    raise ValueError(f"{source}: {len(names)} frame(s); structure from motion "
                                     f"needs at least {MIN_IMAGES}")
            else:
                image_dir = source
                names, size = check_photos(source, progress)
                mask_files = (None if masks is None else
                              dict(zip(names, match_masks(masks, names, size))))
        summary["images"] = len(names)
        database = work / "database.db"
        with _timed(seconds, "features"):
            sfm.extract_features(database, image_dir, names, camera_model, progress,
                                 colmap_threads)
        with _timed(seconds, "matching"):
            sfm.match_features(database, matching, progress, colmap_threads)
        with _timed(seconds, "mapping"):
            (work / "sparse").mkdir()
            model_dir, reconstruction, others = sfm.reconstruct(database, image_dir, names,
                                                                work / "sparse", progress,
                                                                colmap_threads)
        registered = {image.name for image in reconstruction.images.values()}
        summary.update(registered=len(registered), other_models=others,
                       unregistered=[name for name in names if name not in registered],
                       camera=sfm.describe_camera(reconstruction),
                       mean_reprojection_error=float(
                           reconstruction.compute_mean_reprojection_error()),
                       points=int(reconstruction.num_points3D()))
        with _timed(seconds, "undistortion"):
            undistorted = sfm.undistort(model_dir, image_dir, work / "undistorted")
            model = sfm.read_model(undistorted / "sparse")
        with _timed(seconds, "writing"):
            mask_paths = None if mask_files is None else writer.write_masks(staging, (
                (name, sfm.undistort_mask(read_image(mask_files[name], "first")[..., 0],
                                          reconstruction, name)) for name in model.names),
                progress)
            _write_scene(staging, model, undistorted, forward_facing, mask_paths, summary,
                         progress)
            # Keep COLMAP's model of the kept reconstruction (distorted cameras, COLMAP's world)
            # as colmap/sparse/0; the database and the other models go.
            model_dir.rename(work / "model")
            shutil.rmtree(work / "sparse")
            (work / "sparse").mkdir()
            (work / "model").rename(work / "sparse" / "0")
            for leftover in (database, undistorted, staging / "frames"):
                _remove(leftover)
        summary["out"] = str(out)
        summary["total_seconds"] = float(sum(seconds.values()))
        writer.write_json(staging / "process.json", summary)
        _publish(staging, out)
    return summary


def _write_scene(staging: Path, model: sfm.SfmModel, undistorted: Path, forward_facing: str,
                 mask_paths: Optional[Dict[str, str]], summary: Dict, progress: bool) -> None:
    """Normalise the model and write every file of the scene into ``staging``."""
    good = normalize.inliers(model.errors, model.track_lengths)
    roi_centre, roi_radius = normalize.region_of_interest(model.points[good])
    similarity = normalize.scene_similarity(model.w2c, roi_centre)
    c2w = similarity.cameras(model.w2c)  # OpenCV, scene frame
    detected, angle, in_front = normalize.forward_facing(model.w2c, model.points[good])
    is_forward = detected if forward_facing == "auto" else forward_facing == "yes"
    closest, farthest = np.array(normalize.depth_range(model.w2c, model.points, model.observed,
                                                       good)) * similarity.scale
    points = similarity.apply(model.points)
    aabb = normalize.bounding_box(points[good], c2w[:, :, 3])
    scale_mat = writer.sphere_scale_mat(similarity.apply(roi_centre),
                                        roi_radius * similarity.scale)

    writer.write_images(undistorted / "images", staging, model.names, progress)
    writer.write_points_ply(staging / writer.PLY_NAME, points, model.colors)
    writer.write_neus_cameras(staging / writer.SPHERE_NAME, c2w, model.intrinsics, scale_mat)
    writer.write_json(staging / writer.TRANSFORMS_NAME, writer.transforms_record(
        model, c2w, similarity, (closest, farthest), aabb, is_forward, mask_paths))
    fx, fy, cx, cy = model.intrinsics[0]
    summary.update(
        undistorted={"width": model.width, "height": model.height, "fl_x": fx, "fl_y": fy,
                     "cx": cx, "cy": cy},
        forward_facing=is_forward,
        forward_facing_from="detected" if forward_facing == "auto" else "chosen",
        view_angle_deg=angle, points_in_front=in_front, depth_range=[closest, farthest],
        aabb=aabb.tolist(), roi={"center": similarity.apply(roi_centre).tolist(),
                                 "radius": roi_radius * similarity.scale},
        inlier_points=int(good.sum()))


# ----------------------------------------------------------------------------- files

def _source_kind(source: Path) -> bool:
    """True for a video file, False for a folder of photos; ValueError otherwise."""
    if source.is_dir():
        return False
    if source.is_file():
        if source.suffix.lower() in VIDEO_EXTENSIONS:
            return True
        raise ValueError(f"{source}: not a folder of photos or a video (expected a folder, or "
                         f"a file ending in {', '.join(VIDEO_EXTENSIONS)})")
    raise ValueError(f"{source}: not found (expected a folder of photos or a video file)")


def _check_out(source: Path, out: Path, overwrite: bool) -> None:
    source_abs, out_abs = source.resolve(), out.resolve()
    if out_abs == source_abs or out_abs in source_abs.parents:
        raise ValueError(f"--out {out} would hold the source {source}: choose another folder")
    if not out.exists() and not out.is_symlink():
        return
    if not overwrite:
        raise ValueError(f"{out} already exists: choose another --out, or pass --overwrite to "
                         f"replace it")
    if not out.is_dir() or out.is_symlink() or not (
            (out / writer.TRANSFORMS_NAME).is_file() or not any(out.iterdir())):
        raise ValueError(f"{out} is not a scene folder (no {writer.TRANSFORMS_NAME}) nor "
                         f"empty: --overwrite replaces only those")


@contextmanager
def _staging(out: Path):
    """A hidden folder beside ``out`` (same file system, so the final rename is atomic),
    removed with every parent folder created for it if the block fails or is interrupted."""
    created: List[Path] = []
    for parent in reversed(out.absolute().parents):
        if not parent.exists():
            created.append(parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                break
        raise


def _publish(staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``; an existing ``out`` (overwrite) is moved aside first and
    deleted only once the new scene is in place."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.replaced-{uuid.uuid4().hex[:8]}"
        out.rename(old)
    try:
        staging.rename(out)
    except BaseException:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


@contextmanager
def _timed(seconds: Dict[str, float], stage: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start
