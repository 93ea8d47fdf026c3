"""Bad input to ``fastfield process``: each ends in one line on stderr with exit code 2 (130 for
Ctrl-C), and leaves the user's files as they were: the source untouched, no --out (or the old
one intact), nothing left beside it."""
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from fastfield.app import cli
from fastfield.capture import sfm

from helpers import FERN, real_scene

REPO = Path(__file__).resolve().parents[1]
pycolmap = pytest.importorskip("pycolmap", reason="fastfield process needs the [capture] extra "
                                                  "(pip install -e \".[capture]\")")


def snapshot(folder: Path) -> dict:
    """Every file below ``folder``: relative path -> (size, mtime, sha1)."""
    return {str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns,
                                            hashlib.sha1(path.read_bytes()).hexdigest())
            for path in sorted(folder.rglob("*")) if path.is_file()}


def run_process(capsys, source, out, *options):
    code = cli.main(["process", str(source), "--out", str(out), "--no-progress",
                     *map(str, options)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_refused(capsys, tmp_path, source, out, *fragments, options=(), code=2):
    """Run process; check the exit code, the one-line error and that nothing changed."""
    before = snapshot(tmp_path)
    exit_code, _, err = run_process(capsys, source, out, *options)
    lines = [line for line in err.splitlines() if line.strip()]
    assert exit_code == code and len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert snapshot(tmp_path) == before
    return lines[0]


@pytest.fixture
def fern_photos(tmp_path):
    """Four overlapping fern photos (504x378) in tmp_path/photos."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("image000.png", "image001.png", "image002.png", "image003.png"):
        shutil.copy(real_scene(FERN) / "images_8" / name, folder / name)
    return folder


def test_empty_folder_and_too_few_images(capsys, tmp_path, fern_photos):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a photo")
    assert_refused(capsys, tmp_path, empty, tmp_path / "out", "no .png/.jpg images found")
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(fern_photos / "image000.png", one)
    assert_refused(capsys, tmp_path, one, tmp_path / "out", "1 image (image000.png)",
                   "at least 3 overlapping photos")
    assert_refused(capsys, tmp_path, tmp_path / "missing", tmp_path / "out", "not found")


def test_corrupt_and_mixed_size_images(capsys, tmp_path, fern_photos):
    corrupt = fern_photos / "image002.png"
    corrupt.write_bytes(corrupt.read_bytes()[:200])
    assert_refused(capsys, tmp_path, fern_photos, tmp_path / "out", "image002.png: cannot read")
    iio.imwrite(corrupt, np.zeros((100, 120, 3), np.uint8))
    assert_refused(capsys, tmp_path, fern_photos, tmp_path / "out",
                   "image002.png: image is 120x100 (WxH) but image000.png is 504x378")


def test_masks_that_do_not_fit_the_photos(capsys, tmp_path, fern_photos):
    masks = tmp_path / "masks"
    masks.mkdir()
    for i in range(3):
        iio.imwrite(masks / f"{i}.png", np.zeros((378, 504), np.uint8))
    assert_refused(capsys, tmp_path, fern_photos, tmp_path / "out", "3 masks for 4 photos",
                   options=("--masks", masks))
    iio.imwrite(masks / "3.png", np.zeros((10, 504), np.uint8))
    assert_refused(capsys, tmp_path, fern_photos, tmp_path / "out",
                   "3.png: mask is 504x10 (WxH), the photos 504x378", options=("--masks", masks))
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x")
    assert_refused(capsys, tmp_path, video, tmp_path / "out", "--masks applies to a folder",
                   options=("--masks", masks))


def test_photos_that_do_not_overlap(capsys, tmp_path):
    folder = tmp_path / "noise"
    folder.mkdir()
    generator = np.random.default_rng(0)
    for i in range(4):
        iio.imwrite(folder / f"{i}.png", generator.integers(0, 256, (96, 128, 3), np.uint8))
    message = assert_refused(capsys, tmp_path, folder, tmp_path / "out")
    assert "no 3D model" in message or "photos registered (" in message


def test_a_video_ffmpeg_cannot_read_or_too_short(capsys, tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"this is not a video" * 100)
    assert_refused(capsys, tmp_path, video, tmp_path / "out", "clip.mp4: ffmpeg cannot read")
    writer = imageio_ffmpeg.write_frames(str(video), (32, 32), macro_block_size=1,
                                         ffmpeg_log_level="error")
    writer.send(None)
    for value in (0, 255):
        writer.send(np.full((32, 32, 3), value, np.uint8))
    writer.close()
    assert_refused(capsys, tmp_path, video, tmp_path / "out", "clip.mp4: 2 frame(s)",
                   "at least 3")
    notes = tmp_path / "notes.txt"
    notes.write_text("neither photos nor a video")
    assert_refused(capsys, tmp_path, notes, tmp_path / "out", "not a folder of photos or a video")


def test_existing_out_is_refused_unless_overwrite_and_a_scene(capsys, tmp_path, fern_photos):
    out = tmp_path / "scene"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert_refused(capsys, tmp_path, fern_photos, out, "already exists", "--overwrite")
    assert_refused(capsys, tmp_path, fern_photos, out, "not a scene folder",
                   options=("--overwrite",))
    for holder in (fern_photos, tmp_path):
        assert_refused(capsys, tmp_path, fern_photos, holder, "would hold the source",
                       options=("--overwrite",))
    (out / "keep.txt").unlink()
    code, printed, err = run_process(capsys, fern_photos, out, "--overwrite")  # empty: allowed
    assert code == 0, err
    assert "registered 4 of 4 photos" in printed
    (out / "marker.txt").write_text("from the first run")
    code, _, err = run_process(capsys, fern_photos, out, "--overwrite")  # an earlier scene
    assert code == 0, err
    assert not (out / "marker.txt").exists() and (out / "transforms.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "scene"]


def test_ctrl_c_in_a_stage_leaves_nothing(capsys, tmp_path, fern_photos, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sfm, "match_features", interrupted)
    assert_refused(capsys, tmp_path, fern_photos, tmp_path / "new" / "scene",
                   "fastfield process: interrupted", code=130)


def test_ctrl_c_during_colmap_stops_it_and_keeps_the_old_scene(tmp_path, fern_photos):
    """A real SIGINT while COLMAP runs (in its worker thread): it is cancelled, the exit code
    is 130, the earlier scene at --out is intact and no partial folder is left."""
    out = tmp_path / "scene"
    out.mkdir()
    (out / "transforms.json").write_text("{}")  # an earlier scene, to be kept
    before = snapshot(tmp_path)
    many = tmp_path / "many"
    many.mkdir()
    for path in sorted((real_scene(FERN) / "images_8").iterdir()):
        shutil.copy(path, many / path.name)
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-m", "fastfield", "process", str(many), "--out",
                              str(out), "--overwrite", "--no-progress"], cwd=tmp_path,
                             env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".scene.partial-*/colmap/database.db")):
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.05)
    time.sleep(0.5)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert err.strip().splitlines()[-1] == "fastfield process: interrupted"
    shutil.rmtree(many)
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "scene"]


def test_without_pycolmap_one_line_names_the_extra(capsys, tmp_path, fern_photos, monkeypatch):
    monkeypatch.setitem(sys.modules, "pycolmap", None)  # import pycolmap raises ImportError
    assert_refused(capsys, tmp_path, fern_photos, tmp_path / "out", "needs pycolmap",
                   '.[capture]')


def test_bad_options_are_usage_errors(capsys, tmp_path, fern_photos):
    assert_refused(capsys, tmp_path, fern_photos, tmp_path / "out", "--camera-model",
                   options=("--camera-model", "FISHEYE"))
    assert_refused(capsys, tmp_path, fern_photos, tmp_path / "out", "frames must be",
                   options=("--frames", "1"))
    assert_refused(capsys, tmp_path, fern_photos, tmp_path / "out", "threads must be",
                   options=("--threads", "0"))


def test_only_the_process_command_imports_pycolmap():
    code = ("import sys, fastfield.app.cli, fastfield.capture, fastfield.data; "
            "fastfield.app.cli.build_parser(); assert 'pycolmap' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert result.returncode == 0, result.stderr
