"""Structure from motion with COLMAP through pycolmap (the ``[capture]`` extra): SIFT features
with one shared camera, exhaustive or sequential matching, incremental mapping, and
undistortion to pinhole images.

Every pycolmap call runs in a worker thread with a ``CancellationToken``, so Ctrl-C stops
COLMAP within moments instead of after the stage.
"""
import math
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List

import numpy as np
from tqdm.auto import tqdm

CAMERA_MODELS = ("SIMPLE_RADIAL", "PINHOLE", "OPENCV", "SIMPLE_PINHOLE", "RADIAL")
MATCHING = ("exhaustive", "sequential")
MIN_REGISTERED = 3
SIFT_MAX_IMAGE_SIZE = 3200  # COLMAP's command-line default: larger photos are resized for SIFT
EXTRACTION_CHUNKS = 10      # extraction runs in this many calls, for a progress bar
SEED = 0
# COLMAP's worker threads: -1 = one per core. Its geometric verification and mapping draw
# random samples per thread, so only one thread gives the same scene from the same photos
# on every run (``fastfield process --threads 1``).
ALL_CORES = -1


def import_pycolmap():
    """pycolmap, or ImportError (one line) naming the extra that installs it."""
    try:
        import pycolmap
    except ImportError:
        raise ImportError("fastfield process needs pycolmap: pip install -e \".[capture]\" "
                          "(or pip install pycolmap)") from None
    return pycolmap


def cancellable(function: Callable, *args, **kwargs):
    """``function(*args, cancellation_token=token, **kwargs)`` in a worker thread; Ctrl-C
    (KeyboardInterrupt in this thread) cancels the token, waits for COLMAP to stop, re-raises.

    The wait is on an Event, not Thread.join: a join interrupted by KeyboardInterrupt marks
    the thread stopped while it still runs (CPython 3.11), and an interpreter exiting under a
    running COLMAP thread aborts.
    """
    token = import_pycolmap().CancellationToken()
    outcome, done = {}, threading.Event()

    def work():
        try:
            outcome["value"] = function(*args, cancellation_token=token, **kwargs)
        except BaseException as error:  # handed to the calling thread
            outcome["error"] = error
        finally:
            done.set()

    threading.Thread(target=work, name="colmap", daemon=True).start()
    try:
        while not done.wait(0.1):
            pass
    except KeyboardInterrupt:
        token.cancel()
        while True:
            try:
                if done.wait(0.1):
                    break
            except KeyboardInterrupt:  # pressed again: COLMAP is already stopping
                pass
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


@dataclass
class SfmModel:
    """The kept reconstruction, undistorted, as arrays in COLMAP's world frame.

    Attributes:
        names: [n] registered image names, sorted.
        height, width: the undistorted (pinhole) image size.
        intrinsics: [n, 4] (fx, fy, cx, cy) in pixels, pixel corners at integers.
        w2c: [n, 3, 4] world-to-camera [R | t], OpenCV (x right, y down, z forward).
        points: [m, 3] sparse points; colors: [m, 3] uint8; errors: [m] mean reprojection
            error (pixels); track_lengths: [m] observations per point.
        observed: n arrays of the point indices each image sees.
    """

    names: List[str]
    height: int
    width: int
    intrinsics: np.ndarray
    w2c: np.ndarray
    points: np.ndarray
    colors: np.ndarray
    errors: np.ndarray
    track_lengths: np.ndarray
    observed: List[np.ndarray]

    @property
    def centres(self) -> np.ndarray:
        """[n, 3] camera centres -R^T t."""
        return -np.einsum("nji,nj->ni", self.w2c[:, :, :3], self.w2c[:, :, 3])


def extract_features(database: Path, image_dir: Path, names: List[str], camera_model: str,
                     progress: bool = True, threads: int = ALL_CORES) -> None:
    """SIFT features of ``names`` into ``database``, all images sharing one camera of
    ``camera_model`` (its parameters are estimated by the mapper)."""
    pycolmap = import_pycolmap()
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = camera_model
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.max_image_size = SIFT_MAX_IMAGE_SIZE
    extraction.num_threads = threads
    chunk = max(1, math.ceil(len(names) / EXTRACTION_CHUNKS))
    with tqdm(total=len(names), desc="features", unit="image", disable=not progress,
              file=sys.stderr, leave=False) as bar:
        for start in range(0, len(names), chunk):
            cancellable(pycolmap.extract_features, database, image_dir,
                        image_names=names[start:start + chunk],
                        camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader,
                        extraction_options=extraction, device=pycolmap.Device.cpu)
            if start == 0:  # the later chunks join the camera the first one created
                reader.existing_camera_id = _first_camera_id(database)
            bar.update(len(names[start:start + chunk]))
    db = pycolmap.Database.open(database)
    try:
        found = {image.name for image in db.read_all_images()}
    finally:
        db.close()
    missing = [name for name in names if name not in found]
    if missing:
        raise ValueError(f"{image_dir / missing[0]}: COLMAP could not read this image"
                         + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))


def _first_camera_id(database: Path) -> int:
    db = import_pycolmap().Database.open(database)
    try:
        return db.read_all_cameras()[0].camera_id
    finally:
        db.close()


def match_features(database: Path, matching: str, progress: bool = True,
                   threads: int = ALL_CORES) -> None:
    """Match every pair ("exhaustive", photo folders) or each image with its following ones
    ("sequential", video frames in order), with geometric verification."""
    pycolmap = import_pycolmap()
    function = {"exhaustive": pycolmap.match_exhaustive,
                "sequential": pycolmap.match_sequential}[matching]
    with tqdm(total=1, desc=f"matching ({matching})", disable=not progress, file=sys.stderr,
              leave=False) as bar:
        options = pycolmap.FeatureMatchingOptions()
        options.num_threads = threads
        cancellable(function, database, matching_options=options, device=pycolmap.Device.cpu)
        bar.update(1)


def reconstruct(database: Path, image_dir: Path, names: List[str], sparse_dir: Path,
                progress: bool = True, threads: int = ALL_CORES):
    """Incremental mapping; the model with the most registered images is kept.

    Returns:
        (model folder of the kept reconstruction, its pycolmap.Reconstruction,
        registered image counts of the other models).
    Raises:
        ValueError when no model, or only one of fewer than MIN_REGISTERED images, comes out,
        saying what registered.
    """
    pycolmap = import_pycolmap()
    options = pycolmap.IncrementalPipelineOptions()
    options.random_seed = SEED
    options.num_threads = threads
    options.min_model_size = MIN_REGISTERED  # smaller side models are dropped (and reported)
    bar = tqdm(total=len(names), desc="mapping", unit="image", disable=not progress,
               file=sys.stderr, leave=False)
    try:
        models = cancellable(pycolmap.incremental_mapping, database, image_dir, sparse_dir,
                             options, next_image_callback=lambda: bar.update(1))
    finally:
        bar.close()
    models = dict(models or {})
    if not models:
        raise ValueError(f"no 3D model: COLMAP could not find two of the {len(names)} photos "
                         f"that overlap enough to start from; the photos must overlap (and "
                         f"show textured, static surfaces)")
    ranked = sorted(models, key=lambda key: models[key].num_reg_images(), reverse=True)
    kept = models[ranked[0]]
    if kept.num_reg_images() < MIN_REGISTERED:
        registered = sorted(image.name for image in kept.images.values())
        raise ValueError(f"only {len(registered)} of {len(names)} photos registered "
                         f"({', '.join(registered)}); at least {MIN_REGISTERED} must overlap")
    return (sparse_dir / str(ranked[0]), kept,
            [models[key].num_reg_images() for key in ranked[1:]])


def undistort(model_dir: Path, image_dir: Path, out_dir: Path) -> Path:
    """Undistorted (pinhole) copies of the model's images in ``out_dir/images`` and the model
    in ``out_dir/sparse`` (COLMAP's image_undistorter). Returns ``out_dir``."""
    pycolmap = import_pycolmap()
    cancellable(pycolmap.undistort_images, out_dir, model_dir, image_dir, output_type="COLMAP")
    return out_dir


def undistort_mask(mask: np.ndarray, reconstruction, name: str) -> np.ndarray:
    """A mask [H, W] uint8 of image ``name`` warped as COLMAP's undistorter warps the image
    (same options, so the same pinhole camera and size)."""
    pycolmap = import_pycolmap()
    image = reconstruction.find_image_with_name(name)
    bitmap, _ = pycolmap.undistort_image(pycolmap.UndistortCameraOptions(),
                                         pycolmap.Bitmap.from_array(np.ascontiguousarray(mask)),
                                         image.camera)
    return bitmap.to_array().reshape(bitmap.height, bitmap.width)


def read_model(model_dir: Path) -> SfmModel:
    """The arrays of an undistorted (PINHOLE, one size) COLMAP model."""
    pycolmap = import_pycolmap()
    reconstruction = pycolmap.Reconstruction(model_dir)
    images = sorted(reconstruction.images.values(), key=lambda image: image.name)
    point_ids = sorted(reconstruction.points3D)
    index_of = {point_id: i for i, point_id in enumerate(point_ids)}
    points = [reconstruction.points3D[i] for i in point_ids]
    sizes = {(image.camera.height, image.camera.width) for image in images}
    if len(sizes) != 1:
        raise ValueError(f"{model_dir}: undistorted images of different sizes {sorted(sizes)}")
    intrinsics = []
    for image in images:
        camera = image.camera
        if camera.model_name != "PINHOLE":
            raise ValueError(f"{model_dir}: expected undistorted PINHOLE cameras, got "
                             f"{camera.model_name}")
        intrinsics.append(camera.params[:4])
    observed = [np.array([index_of[p.point3D_id] for p in image.points2D if p.has_point3D()],
                         dtype=np.int64) for image in images]
    (height, width), = sizes
    return SfmModel(
        names=[image.name for image in images], height=int(height), width=int(width),
        intrinsics=np.array(intrinsics, dtype=np.float64),
        w2c=np.stack([image.cam_from_world().matrix() for image in images]),
        points=np.array([p.xyz for p in points], dtype=np.float64).reshape(-1, 3),
        colors=np.array([p.color for p in points], dtype=np.uint8).reshape(-1, 3),
        errors=np.array([p.error for p in points], dtype=np.float64),
        track_lengths=np.array([p.track.length() for p in points], dtype=np.int64),
        observed=observed)


def describe_camera(reconstruction) -> str:
    """The estimated (distorted) camera, e.g. "SIMPLE_RADIAL 504x378 f=416.2 cx=252.0 ..."."""
    camera = next(iter(reconstruction.cameras.values()))
    names = camera.params_info.replace(" ", "").split(",")
    values = " ".join(f"{name}={value:.4g}" for name, value in zip(names, camera.params))
    return f"{camera.model_name} {camera.width}x{camera.height} {values}"
