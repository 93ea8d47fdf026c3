"""Checkpoints written before fields and pipelines were separated still load.

tests/fixtures/checkpoints/{nerf,neus} hold tiny runs written by commit 1601646 (models with
render_rays, before fastfield.fields and fastfield.render; made by
tests/fixtures/make_checkpoints.py) and the test view that code rendered from each. Today's
fastfield must load the weights and the optimiser state, render the same pixels and resume."""
import shutil
from pathlib import Path

import pytest
import torch

from fastfield import render_image
from fastfield.app.runs import load_run
from fastfield.train import Trainer
from fastfield.train.checkpoint import checkpoint_config, load_checkpoint
from fastfield.train.scenes import render_settings

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "checkpoints"
KINDS = ["nerf", "neus"]


@pytest.mark.parametrize("kind", KINDS)
def test_an_old_checkpoint_renders_what_it_rendered(kind):
    run = load_run(FIXTURES / kind, "cpu")
    assert run.step == 2 and run.config.model == kind
    expected = torch.load(FIXTURES / kind / "expected.pt", weights_only=True)
    out = render_image(run.model, run.scene.split("test").cameras, 0, backend="reference",
                       **render_settings(run.scene, run.device))
    assert sorted(out) == sorted(expected)
    for key, value in expected.items():
        torch.testing.assert_close(out[key].float(), value, rtol=1e-5, atol=1e-6, msg=key)


@pytest.mark.parametrize("kind", KINDS)
def test_an_old_checkpoint_resumes_training(kind, tmp_path):
    run_dir = tmp_path / kind
    shutil.copytree(FIXTURES / kind, run_dir)
    config = checkpoint_config(load_checkpoint(run_dir / "checkpoint.pt"))
    config.iters = 4
    trainer = Trainer(config, run_dir, device="cpu", resume=True, progress=False)
    stored = load_checkpoint(run_dir / "checkpoint.pt")["optimizer"]["state"]
    for index, parameter in enumerate(trainer.model.parameters()):  # Adam's state, in order
        assert stored[index]["exp_avg"].shape == parameter.shape
    summary = trainer.train()
    assert summary["step"] == 4 and load_checkpoint(run_dir / "checkpoint.pt")["step"] == 4
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
