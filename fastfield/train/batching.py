"""Which pixels each training step uses, drawn without ever materialising a table of rays."""
import random
from typing import Any, Dict, List, Optional

import torch
from torch import Tensor

from .. import ops

BATCHING = ("all_images", "one_image")


class PixelSampler:
    """Draws the [batch, 3] int64 pixel ids (camera, row, col) of each training step.

    - ``"all_images"`` (nerf-pytorch's default batching, fern): pixels uniform over every
      training image.
    - ``"one_image"``: all pixels of a step from one image. NeRF picks the image at random each
      step (nerf-pytorch ``no_batching``); NeuS walks a random permutation of the images,
      drawn afresh every epoch (NeuS ``image_perm``). During the first ``precrop_iters`` steps
      pixels come from the central ``precrop_frac`` window (nerf-pytorch ``precrop``).

    The image is chosen on the host with Python's ``random.Random`` (plain ints: the step never
    touches a tensor for it); the pixels are drawn on the training device with the
    ``device_generator`` passed to ``sample``.
    """

    def __init__(self, batching: str, image_order: str, n_images: int, height: int, width: int,
                 batch_rays: int, precrop_iters: int, precrop_frac: float, seed: int,
                 device: torch.device):
        if batching not in BATCHING:
            raise ValueError(f"batching must be one of {', '.join(BATCHING)}, got {batching!r}")
        if image_order not in ("random", "permutation"):
            raise ValueError(f"image_order must be 'random' or 'permutation', got {image_order!r}")
        if batch_rays < 1:
            raise ValueError(f"batch_rays must be >= 1, got {batch_rays}")
        self.batching, self.image_order = batching, image_order
        self.n_images, self.height, self.width = n_images, height, width
        self.batch_rays = batch_rays
        self.precrop_iters, self.precrop_frac = precrop_iters, precrop_frac
        self.device = device
        self.host_random = random.Random(seed)
        self.permutation: Optional[List[int]] = None  # NeuS's image_perm

    def _image(self, step: int) -> int:
        if self.image_order == "random":
            return self.host_random.randrange(self.n_images)
        if self.permutation is None or step % self.n_images == 0:
            self.permutation = self.host_random.sample(range(self.n_images), self.n_images)
        return self.permutation[step % self.n_images]

    def sample(self, step: int, device_generator: torch.Generator,
               camera: Optional[Tensor] = None) -> Tensor:
        """Pixel ids [batch_rays, 3] int64 on the training device for update ``step``.

        ``camera``: for one-image batches, a 0-d int64 device tensor holding the image (drawn
        beforehand with ``image_for(step)``): the ids then read it on the device, so a captured
        step (CUDA graph) follows the image of each replay. The ids are those ``sample``
        draws without it."""
        if self.batching == "all_images":
            return ops.random_pixels(self.batch_rays, self.n_images, self.height, self.width,
                                     generator=device_generator, device=self.device)
        crop = self.precrop_frac if self.precropping(step) else 1.0
        image = self._image(step) if camera is None else 0
        pixels = ops.random_pixels_in_camera(self.batch_rays, image, self.height, self.width,
                                             crop_fraction=crop, generator=device_generator,
                                             device=self.device)
        if camera is None:
            return pixels
        return torch.cat([camera.expand(self.batch_rays, 1), pixels[:, 1:]], -1)

    def image_for(self, step: int) -> Optional[int]:
        """The image of a one-image step (advancing the host stream as ``sample`` would), or
        None for all-image batches."""
        return None if self.batching == "all_images" else self._image(step)

    def precropping(self, step: int) -> bool:
        """Whether step draws from the central precrop window (its shape of work changes
        when the window ends: a captured step is captured again)."""
        return self.batching == "one_image" and step < self.precrop_iters

    def state_dict(self) -> Dict[str, Any]:
        return {"host_random": self.host_random.getstate(), "permutation": self.permutation}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        version, internal, gauss_next = state["host_random"]
        self.host_random.setstate((version, tuple(internal), gauss_next))
        self.permutation = None if state["permutation"] is None else list(state["permutation"])
