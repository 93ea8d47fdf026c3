"""NeuS (Wang et al. 2021) as its code trains it: an SDF network with geometric initialisation,
a single variance, an IDR colour network, a NeRF++ background beyond the unit sphere, 4-step
hierarchical up-sampling and the fused SDF compositing op. ``ops`` chooses the kernels
(``fastfield``) or their twins (``fastfield.reference``).
"""
import math
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from .encoding import PositionalEncoding
from .mlp import MLPConfig, NeRFMLP


@dataclass
class SDFConfig:
    depth: int = 8
    width: int = 256
    skips: Tuple[int, ...] = (4,)
    frequencies: int = 6
    feature_dim: int = 256
    init_radius: float = 0.5   # geometric initialisation: SDF of a sphere of this radius
    weight_norm: bool = True
    softplus_beta: float = 100.0


@dataclass
class ColorConfig:
    depth: int = 4
    width: int = 256
    dir_frequencies: int = 4
    weight_norm: bool = True


def _background_default() -> MLPConfig:
    return MLPConfig(depth=8, width=256, skips=(4,), pos_frequencies=10, dir_frequencies=4,
                     in_dim=4)


@dataclass
class NeuSConfig:
    sdf: SDFConfig = field(default_factory=SDFConfig)
    color: ColorConfig = field(default_factory=ColorConfig)
    background: MLPConfig = field(default_factory=_background_default)
    n_samples: int = 64
    n_importance: int = 64       # added over up_sample_steps steps
    up_sample_steps: int = 4
    n_outside: int = 32          # 0: no background model (NeuS wmask)
    variance_init: float = 0.3


def _linear(in_dim: int, out_dim: int, use_weight_norm: bool, init) -> nn.Module:
    layer = nn.Linear(in_dim, out_dim)
    init(layer)
    return weight_norm(layer) if use_weight_norm else layer


class SDFNetwork(nn.Module):
    """points [N, 3] -> (sdf [N], feature [N, feature_dim]); NeuS's SDFNetwork with its
    geometric initialisation (a sphere of ``init_radius``) and Softplus(beta=100)."""

    def __init__(self, config: SDFConfig):
        super().__init__()
        self.config = config
        self.encoding = PositionalEncoding(3, config.frequencies)
        in_dim = self.encoding.out_dim
        dims = [in_dim] + [config.width] * config.depth + [1 + config.feature_dim]
        layers = []
        n_linear = len(dims) - 1
        for i in range(n_linear):
            out_dim = dims[i + 1] - in_dim if i + 1 in config.skips else dims[i + 1]

            def init(layer, i=i, out_dim=out_dim):
                nn.init.zeros_(layer.bias)
                if i == n_linear - 1:   # output layer: sdf(x) ~ |x| - r
                    nn.init.normal_(layer.weight, math.sqrt(math.pi) / math.sqrt(dims[i]), 1e-4)
                    nn.init.constant_(layer.bias, -config.init_radius)
                    return
                nn.init.normal_(layer.weight, 0.0, math.sqrt(2) / math.sqrt(out_dim))
                if i == 0 and config.frequencies > 0:    # only the raw xyz reaches layer 0
                    nn.init.zeros_(layer.weight[:, 3:])
                elif i in config.skips and config.frequencies > 0:  # skip input: xyz only
                    nn.init.zeros_(layer.weight[:, -(in_dim - 3):])

            layers.append(_linear(dims[i], out_dim, config.weight_norm, init))
        self.layers = nn.ModuleList(layers)
        self.activation = nn.Softplus(beta=config.softplus_beta)

    def forward(self, points: Tensor) -> Tuple[Tensor, Tensor]:
        encoded = self.encoding(points)
        x = encoded
        for i, layer in enumerate(self.layers):
            if i in self.config.skips:
                x = torch.cat([x, encoded], -1) / math.sqrt(2)
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.activation(x)
        return x[:, 0], x[:, 1:]

    def sdf(self, points: Tensor) -> Tensor:
        return self.forward(points)[0]


def sdf_and_gradient(sdf_network: nn.Module, points: Tensor, create_graph: bool
                     ) -> Tuple[Tensor, Tensor, Tensor]:
    """(sdf [N], feature [N, F], d sdf / d points [N, 3]) from one forward pass of any module
    returning (sdf, feature) (NeuS runs its network twice for this). Works under torch.no_grad
    (rendering); create_graph=True keeps the graph for the eikonal loss and the colour net."""
    with torch.enable_grad():
        points = points.detach().requires_grad_(True)
        sdf, feature = sdf_network(points)
        (gradient,) = torch.autograd.grad(sdf, points, torch.ones_like(sdf),
                                          create_graph=create_graph)
    if not create_graph:
        sdf, feature = sdf.detach(), feature.detach()
    return sdf, feature, gradient


class ColorNetwork(nn.Module):
    """NeuS's IDR rendering network: (point, view direction, normal, feature) -> rgb in [0, 1]."""

    def __init__(self, config: ColorConfig, feature_dim: int):
        super().__init__()
        self.dir_encoding = PositionalEncoding(3, config.dir_frequencies)
        dims = [3 + self.dir_encoding.out_dim + 3 + feature_dim] + [config.width] * config.depth + [3]
        self.layers = nn.ModuleList(
            _linear(dims[i], dims[i + 1], config.weight_norm, lambda layer: None)
            for i in range(len(dims) - 1))

    def forward(self, points: Tensor, normals: Tensor, viewdirs: Tensor, feature: Tensor) -> Tensor:
        x = torch.cat([points, self.dir_encoding(viewdirs), normals, feature], -1)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return torch.sigmoid(x)


class NeuS(nn.Module):
    """NeuS in the unit sphere of the normalised scene, with an optional NeRF++ background."""

    kind = "neus"

    def __init__(self, config: NeuSConfig, sdf_network: Optional[nn.Module] = None,
                 color_network: Optional[nn.Module] = None,
                 background: Optional[nn.Module] = None):
        super().__init__()
        self.config = config
        self.sdf_network = sdf_network if sdf_network is not None else SDFNetwork(config.sdf)
        self.color_network = (color_network if color_network is not None
                              else ColorNetwork(config.color, config.sdf.feature_dim))
        if background is None and config.n_outside > 0:
            background = NeRFMLP(config.background)
        self.background = background
        self.variance = nn.Parameter(torch.tensor(config.variance_init))

    def inv_s(self) -> Tensor:
        """NeuS's SingleVarianceNetwork: exp(10 * variance), clipped to [1e-6, 1e6]."""
        return torch.exp(self.variance * 10.0).clip(1e-6, 1e6)

    def points_per_ray(self) -> int:
        return self.config.n_samples + self.config.n_importance + self.config.n_outside

    # -- sampling ---------------------------------------------------------------------------
    def _inside_samples(self, rays_o, rays_d, near, far, ops, perturb, generator) -> Tensor:
        cfg = self.config
        t = ops.stratified_samples(near, far, cfg.n_samples,
                                   jitter="per_ray" if perturb else "none", generator=generator)
        if cfg.n_importance == 0:
            return t
        n_rays = t.shape[0]
        steps = cfg.up_sample_steps
        with torch.no_grad():
            sdf = self.sdf_network(
                (rays_o[:, None] + rays_d[:, None] * t[..., None]).reshape(-1, 3))[0].reshape(n_rays, -1)
            for i in range(steps):
                new_t = ops.neus_upsample(rays_o, rays_d, t, sdf, cfg.n_importance // steps,
                                          64.0 * 2 ** i)
                merged = ops.merge_sorted(t, new_t)
                if i + 1 < steps:  # the SDF at the new samples feeds the next step
                    new_sdf = self.sdf_network(
                        (rays_o[:, None] + rays_d[:, None] * new_t[..., None]).reshape(-1, 3))[0]
                    sdf = torch.cat([sdf, new_sdf.reshape(n_rays, -1)], -1).gather(1, merged.index)
                t = merged.merged
        return t

    def _outside_samples(self, far, ops, perturb, generator) -> Tensor:
        """Inverse-depth samples beyond far: far / flip(stratified(1e-3, 1 - 1/(n+1))) + 1/n_samples."""
        n = self.config.n_outside
        lo = torch.full_like(far, 1e-3)
        hi = torch.full_like(far, 1.0 - 1.0 / (n + 1.0))
        s = ops.stratified_samples(lo, hi, n, jitter="per_sample" if perturb else "none",
                                   generator=generator)
        return far[:, None] / torch.flip(s, dims=[-1]) + 1.0 / self.config.n_samples

    def _background(self, rays_o, rays_d, t: Tensor, sample_dist: float):
        """NeuS ``render_core_outside``: alpha and colour of the NeRF++ model at midpoints."""
        n_rays, n = t.shape
        dists = torch.cat([t[:, 1:] - t[:, :-1], t.new_full((n_rays, 1), sample_dist)], -1)
        mid = t + 0.5 * dists
        points = rays_o[:, None] + rays_d[:, None] * mid[..., None]
        radius = points.norm(dim=-1, keepdim=True).clip(1.0, 1e10)
        points = torch.cat([points / radius, 1.0 / radius], -1)
        density, rgb = self.background(points.reshape(-1, 4),
                                       rays_d[:, None].expand(n_rays, n, 3).reshape(-1, 3))
        alpha = 1.0 - torch.exp(-F.softplus(density.reshape(n_rays, n)) * dists)
        return alpha, torch.sigmoid(rgb).reshape(n_rays, n, 3)

    # -- rendering --------------------------------------------------------------------------
    def render_rays(self, rays_o: Tensor, rays_d: Tensor, near: Tensor, far: Tensor, *, ops,
                    perturb: bool, background: Optional[Tensor] = None,
                    cos_anneal_ratio: float = 1.0, generator: Optional[torch.Generator] = None,
                    **_) -> Dict[str, Tensor]:
        """Render rays of the normalised scene: rays_o [n_rays, 3], unit rays_d [n_rays, 3],
        near/far [n_rays] (NeuS: from the unit sphere). Returns rgb [n_rays, 3], acc, depth
        [n_rays], normal [n_rays, 3] (world-space, weighted inside the sphere) and, while
        training, the eikonal term and s_val (1 / inv_s)."""
        cfg = self.config
        n_rays = rays_o.shape[0]
        sample_dist = 2.0 / cfg.n_samples  # NeuS assumes near/far 2 apart (the unit sphere)
        t = self._inside_samples(rays_o, rays_d, near, far, ops, perturb, generator)
        n_in = t.shape[1]
        bg_alpha = bg_rgb = None
        if self.background is not None and cfg.n_outside > 0:
            t_out = self._outside_samples(far, ops, perturb, generator)
            # Outside samples start beyond far + 1/n_samples > every inside sample: the union is
            # already sorted (NeuS sorts it; the sort would not move anything).
            bg_alpha, bg_rgb = self._background(rays_o, rays_d, torch.cat([t, t_out], -1),
                                                sample_dist)
        dists = torch.cat([t[:, 1:] - t[:, :-1], t.new_full((n_rays, 1), sample_dist)], -1)
        mid = t + 0.5 * dists
        points = (rays_o[:, None] + rays_d[:, None] * mid[..., None]).reshape(-1, 3)
        dirs = rays_d[:, None].expand(n_rays, n_in, 3).reshape(-1, 3)
        sdf, feature, gradient = sdf_and_gradient(self.sdf_network, points,
                                                  create_graph=torch.is_grad_enabled())
        rgb = self.color_network(points, gradient, dirs, feature).reshape(n_rays, n_in, 3)
        cos = (dirs * gradient).sum(-1).reshape(n_rays, n_in)
        radius = points.detach().norm(dim=-1).reshape(n_rays, n_in)
        inside = (radius < 1.0).to(sdf.dtype)
        inv_s = self.inv_s()
        out = ops.composite_sdf(sdf.reshape(n_rays, n_in), cos, dists, inv_s, rgb,
                                cos_anneal_ratio, inside if bg_alpha is not None else None,
                                bg_alpha, bg_rgb)
        color = out.rgb
        if background is not None:
            color = color + (1.0 - out.acc)[:, None] * background
        weights_in = out.weights[:, :n_in]
        normal = (gradient.reshape(n_rays, n_in, 3) * (weights_in * inside)[..., None]).sum(1)
        result = {"rgb": color, "acc": out.acc, "depth": (weights_in * mid).sum(-1),
                  "normal": normal, "s_val": 1.0 / inv_s.detach()}
        if torch.is_grad_enabled():
            relax = (radius < 1.2).to(sdf.dtype)
            error = (gradient.reshape(n_rays, n_in, 3).norm(dim=-1) - 1.0) ** 2
            result["eikonal"] = (relax * error).sum() / (relax.sum() + 1e-5)
        return result

    def loss(self, out: Dict[str, Tensor], target_rgb: Tensor, mask: Optional[Tensor] = None,
             eikonal_weight: float = 0.1, mask_weight: float = 0.0
             ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """NeuS: L1 colour over the mask sum + eikonal_weight * eikonal + mask_weight * BCE of
        acc against the mask (masks thresholded at 0.5 when mask_weight > 0)."""
        if mask is None or mask_weight <= 0.0:
            mask = torch.ones_like(target_rgb[:, 0])
        else:
            mask = (mask > 0.5).to(target_rgb.dtype)
        mask_sum = mask.sum() + 1e-5
        diff = (out["rgb"] - target_rgb) * mask[:, None]
        color_loss = diff.abs().sum() / mask_sum
        loss = color_loss + eikonal_weight * out["eikonal"]
        if mask_weight > 0.0:
            acc = out["acc"].clip(1e-3, 1.0 - 1e-3)
            loss = loss + mask_weight * F.binary_cross_entropy(acc, mask)
        mse = (diff ** 2).sum() / (mask_sum * 3.0)
        return loss, {"loss": loss.detach(), "psnr": -10.0 * torch.log10(mse.detach()),
                      "eikonal": out["eikonal"].detach(), "s_val": out["s_val"]}
