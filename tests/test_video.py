"""Videos along camera paths (fastfield.app.video.render_video) and the 8-bit output views."""
import math

import imageio.v2 as imageio_v2
import imageio.v3 as iio
import numpy as np
import pytest
import torch

import fastfield.app.video as video
from fastfield import render_image
from fastfield.config import preset
from fastfield.data import orbit_path
from fastfield.app.video import render_video
from fastfield.fields import NeRF
from fastfield.train.images import depth_to_uint8, normal_to_uint8, to_uint8

HEIGHT, WIDTH, N_FRAMES = 15, 20, 3   # odd height: MP4 frames gain one repeated row


@pytest.fixture(scope="module")
def tiny_nerf():
    """An untrained nerf-small field with few samples, a 3-frame orbit around it, and its
    frames rendered one by one with render_image ([3, H, W, 3] float64 in 0..255)."""
    torch.manual_seed(0)
    config = preset("nerf-small").nerf
    config.n_coarse, config.n_fine = 16, 16
    model = NeRF(config)
    focal = 0.5 * WIDTH / math.tan(0.5 * 0.7)
    path = orbit_path((0.0, 0.0, 0.0), 4.0, 30.0, N_FRAMES, (focal, focal, WIDTH / 2, HEIGHT / 2),
                      HEIGHT, WIDTH)
    frames = np.stack([to_uint8(render_image(model, path, i, near=2.0, far=6.0,
                                             backend="reference")["rgb"])
                       for i in range(N_FRAMES)]).astype(np.float64)
    return model, path, frames


def test_render_video_writes_an_mp4_of_the_rendered_frames(tmp_path, tiny_nerf):
    if not video.mp4_encoder_available():
        pytest.skip("imageio-ffmpeg is not installed: no MP4 encoder")
    model, path, expected = tiny_nerf
    out = render_video(model, path, tmp_path / "orbit.mp4", fps=10, near=2.0, far=6.0,
                       backend="reference", progress=False)
    assert out == tmp_path / "orbit.mp4"
    with imageio_v2.get_reader(out, format="FFMPEG") as reader:
        assert reader.count_frames() == N_FRAMES
        assert reader.get_meta_data()["fps"] == 10
    decoded = np.stack(list(iio.imiter(out, plugin="FFMPEG")))
    assert decoded.shape == (N_FRAMES, HEIGHT + 1, WIDTH, 3)
    # H.264 is lossy: frames match on average, and each decoded frame is closest to its own.
    decoded = decoded[:, :HEIGHT].astype(np.float64)
    errors = np.abs(decoded[:, None] - expected[None]).mean((2, 3, 4))  # [decoded, rendered]
    assert errors.diagonal().max() < 6.0, errors
    assert (errors.argmin(1) == np.arange(N_FRAMES)).all(), errors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orbit.mp4"]


def test_render_video_falls_back_to_gif(tmp_path, tiny_nerf, monkeypatch, capsys):
    monkeypatch.setattr(video, "mp4_encoder_available", lambda: False)
    model, path, expected = tiny_nerf
    out = render_video(model, path, tmp_path / "orbit.mp4", fps=10, near=2.0, far=6.0,
                       backend="reference", progress=False)
    assert out == tmp_path / "orbit.gif"
    notice = capsys.readouterr().err.strip().splitlines()
    assert len(notice) == 1 and "orbit.gif" in notice[0]
    frames = iio.imread(out, index=None)
    assert frames.shape == (N_FRAMES, HEIGHT, WIDTH, 3)
    assert np.abs(frames.astype(np.float64) - expected).max() < 24  # GIF palette quantisation
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orbit.gif"]


def test_render_video_argument_errors(tmp_path, tiny_nerf):
    model, path, _ = tiny_nerf
    with pytest.raises(ValueError, match=".mp4 or .gif"):
        render_video(model, path, tmp_path / "orbit.avi", progress=False)
    with pytest.raises(ValueError, match="fps"):
        render_video(model, path, tmp_path / "orbit.gif", fps=0, progress=False)
    with pytest.raises(ValueError, match="no cameras"):
        render_video(model, path[[]], tmp_path / "orbit.gif", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_to_uint8_clamps_and_rounds():
    image = torch.tensor([[-0.5, 0.0, 0.6 / 255, 0.4], [1.0, 2.0, 254.6 / 255, 0.999]])
    np.testing.assert_array_equal(to_uint8(image), [[0, 0, 1, 102], [255, 255, 255, 255]])
    assert to_uint8(np.zeros((2, 2, 3))).dtype == np.uint8


def test_depth_to_uint8_shows_near_bright_far_dark_and_empty_black():
    depth = torch.tensor([[2.0, 3.0, 4.0, 0.0], [2.5, 3.5, 0.5 * 4.0, 0.0]])
    acc = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.5, 0.0]])
    grey = depth_to_uint8(depth, acc, near=2.0, far=4.0)
    assert grey.shape == (2, 4, 3) and (grey[..., 0] == grey[..., 2]).all()
    np.testing.assert_array_equal(grey[0, :, 0], [255, 128, 0, 0])
    # A half-covered pixel: its depth 4 is divided back out of acc, its brightness halved.
    assert grey[1, 2, 0] == 0 and grey[1, 0, 0] == 191
    auto = depth_to_uint8(depth, acc)   # range from the covered pixels' percentiles
    order = np.argsort(auto[0, :3, 0])
    np.testing.assert_array_equal(order, [2, 1, 0])
    assert auto[0, 3, 0] == 0


def test_normal_to_uint8_in_world_and_camera_frames():
    normal = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]])
    np.testing.assert_array_equal(normal_to_uint8(normal), [[[128, 128, 255], [128, 128, 128]]])
    # A camera whose x axis is world z: the world +z normal is +x in the camera.
    c2w = torch.tensor([[0.0, 1.0, 0.0, 5.0], [0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(normal_to_uint8(normal, c2w)[0, 0], [255, 128, 128])


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
@pytest.mark.parametrize("failing_frame", [0, 1])
def test_interrupted_render_leaves_no_file(tmp_path, tiny_nerf, monkeypatch, suffix,
                                           failing_frame):
    if suffix == ".mp4" and not video.mp4_encoder_available():
        pytest.skip("imageio-ffmpeg is not installed: no MP4 encoder")
    model, path, _ = tiny_nerf

    def render_or_fail(model, camera, index, **kwargs):
        if index == failing_frame:
            raise KeyboardInterrupt
        return render_image(model, camera, index, **kwargs)

    monkeypatch.setattr(video, "render_image", render_or_fail)
    with pytest.raises(KeyboardInterrupt):
        render_video(model, path, tmp_path / f"orbit{suffix}", near=2.0, far=6.0,
                     backend="reference", progress=False)
    assert list(tmp_path.iterdir()) == []
