"""The hash-grid fields (instant-ngp's NeRF field, instant-nsr-pl's SDF field), their
spherical-harmonics view encoding, and the training options of their presets."""
import math

import numpy as np
import pytest
import torch
from torch.func import functional_call

from fastfield.config import TrainConfig, preset
from fastfield.data import builtin_scene
from fastfield.fields import (HashFieldConfig, HashNeRFField, HashSDFField, NeRF, NeRFConfig,
                              NeuS, NeuSConfig, build_model, sdf_and_gradient,
                              spherical_harmonics)
from fastfield.fields.hash_field import trunc_exp
from fastfield.render import render
from fastfield.train.schedule import learning_rate
from fastfield.train.step import make_optimizer, over_background

SMALL = dict(n_levels=4, log2_table_size=10, base_resolution=4, finest_resolution=64,
             hidden_width=16)


def unit_vectors(n, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=dtype), dim=-1)


# ----------------------------------------------------------------------------- spherical harmonics
def test_spherical_harmonics_match_scipy_real_harmonics():
    """Against the complex harmonics of scipy (with the Condon-Shortley phase): the real basis
    sqrt(2) Im Y_l^|m| (m < 0), Y_l^0, sqrt(2) Re Y_l^m (m > 0), ordered by l then m."""
    special = pytest.importorskip("scipy.special")
    d = unit_vectors(500)
    theta = np.arccos(d[:, 2].clamp(-1, 1).numpy())          # polar
    phi = np.arctan2(d[:, 1].numpy(), d[:, 0].numpy())       # azimuth
    expected = []
    for l in range(4):
        for m in range(-l, l + 1):
            y = special.sph_harm_y(l, abs(m), theta, phi)
            expected.append(np.sqrt(2) * y.imag if m < 0 else
                            np.sqrt(2) * y.real if m > 0 else y.real)
    expected = torch.from_numpy(np.stack(expected, -1))
    torch.testing.assert_close(spherical_harmonics(d, 4), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(spherical_harmonics(d, 2), expected[:, :4], rtol=0, atol=1e-12)


def test_spherical_harmonics_are_orthonormal_on_the_sphere():
    """Gauss-Legendre in cos(theta) x uniform azimuth integrates these polynomials exactly."""
    nodes, weights = np.polynomial.legendre.leggauss(8)
    n_phi = 16
    phi = torch.arange(n_phi, dtype=torch.float64) * 2 * math.pi / n_phi
    z = torch.from_numpy(nodes)[:, None].expand(-1, n_phi)
    r = (1 - z ** 2).sqrt()
    d = torch.stack([r * phi.cos(), r * phi.sin(), z], -1).reshape(-1, 3)
    w = (torch.from_numpy(weights)[:, None] * 2 * math.pi / n_phi).expand(-1, n_phi).reshape(-1)
    y = spherical_harmonics(d, 4)                             # [n, 16]
    gram = (y * w[:, None]).T @ y
    torch.testing.assert_close(gram, torch.eye(16, dtype=torch.float64), rtol=0, atol=1e-12)


@pytest.mark.parametrize("degree", [0, 5])
def test_spherical_harmonics_reject_degrees_out_of_range(degree):
    with pytest.raises(ValueError, match="degree must be in 1..4"):
        spherical_harmonics(unit_vectors(2), degree)


# ----------------------------------------------------------------------------- NeRF hash field
def test_hash_nerf_field_shapes_density_and_box():
    torch.manual_seed(0)
    field = HashNeRFField(HashFieldConfig(**SMALL, aabb=(-1, -1, -1, 1, 1, 1)))
    points = torch.rand(300, 3) * 3 - 1.5
    density, rgb = field(points, unit_vectors(300, torch.float32))
    assert density.shape == (300,) and rgb.shape == (300, 3)
    assert density.dtype == rgb.dtype == torch.float32
    outside = (points.abs() > 1).any(-1)
    assert outside.any() and (~outside).any()
    assert (density[outside] == 0).all() and (density[~outside] > 0).all()
    torch.testing.assert_close(field.density(points), density)
    # Density is exp of the MLP's first output: with that output shifted by c, it scales by e^c.
    with torch.no_grad():
        field.density_net[-1].bias[0] += 1.0
    torch.testing.assert_close(field.density(points), density * math.e)


def test_hash_nerf_field_gradients_reach_the_table_and_every_layer():
    torch.manual_seed(0)
    field = HashNeRFField(HashFieldConfig(**SMALL, aabb=(-1, -1, -1, 1, 1, 1)))
    density, rgb = field(torch.rand(200, 3) * 2 - 1, unit_vectors(200, torch.float32))
    (density.sum() + rgb.square().sum()).backward()
    for name, param in field.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_trunc_exp_is_exp_with_a_clamped_gradient():
    x = torch.tensor([-20.0, 0.0, 3.0, 20.0], dtype=torch.float64, requires_grad=True)
    y = trunc_exp(x)
    torch.testing.assert_close(y, torch.tensor([math.exp(-20), 1, math.exp(3), math.exp(15)],
                                               dtype=torch.float64))
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(grad, torch.tensor([math.exp(-15), 1, math.exp(3), math.exp(15)],
                                                  dtype=torch.float64))


def test_nerf_with_one_hash_field_renders_through_the_hierarchical_pipeline():
    config = NeRFConfig(field="hash", fine=None, n_fine=0, n_coarse=16,
                        hash=HashFieldConfig(**SMALL))
    model = NeRF(config)
    assert isinstance(model.coarse, HashNeRFField) and model.fine is None
    two = NeRF(NeRFConfig(field="hash", n_coarse=8, n_fine=8, hash=HashFieldConfig(**SMALL)))
    assert isinstance(two.fine, HashNeRFField)
    origins = torch.tensor([[0.0, 0.0, 4.0]]).expand(5, 3)
    directions = torch.nn.functional.normalize(torch.randn(5, 3) * 0.1 + torch.tensor([0, 0, -1.0]),
                                               dim=-1)
    out = render(model, origins, directions, 2.0, 6.0, background=torch.rand(5, 3))
    assert out["rgb"].shape == (5, 3) and "rgb_coarse" not in out


# ----------------------------------------------------------------------------- NeuS hash field
def test_hash_sdf_field_starts_as_a_sphere():
    """Geometric initialisation: sdf ~ |x| - r with the sign right inside and outside and
    radial normals. A 64-wide layer of random ridges approximates |x| in expectation over the
    weights; one draw's average over directions is c |x| with c within a few percent of 1."""
    torch.manual_seed(0)
    field = HashSDFField(HashFieldConfig(**{**SMALL, "hidden_width": 64}), init_radius=0.5)
    directions = unit_vectors(2000, torch.float32)
    for radius in (0.25, 0.5, 0.75):
        error = field.sdf(directions * radius) - (radius - 0.5)
        assert error.mean().abs() < 0.1 * radius, radius
    assert (field.sdf(directions * 0.05) < 0).all()
    assert (field.sdf(directions * 0.95) > 0).float().mean() > 0.95
    _, feature, gradient = sdf_and_gradient(field, directions * 0.5, create_graph=False)
    assert feature.shape == (2000, 15)
    radial = (gradient * directions).sum(-1) / gradient.norm(dim=-1)
    assert radial.mean() > 0.9
    # Without the initialisation (PyTorch's default), the field is nothing like a sphere.
    plain = HashSDFField(HashFieldConfig(**{**SMALL, "hidden_width": 64}))
    for layer in plain.layers:
        torch.nn.init.uniform_(layer.parametrizations.weight.original1, -0.1, 0.1)
    assert (plain.sdf(directions * 0.5)).abs().mean() > 0.1


def test_eikonal_loss_backward_through_hash_encode_is_its_exact_gradient():
    """The eikonal loss of autograd normals (create_graph) differentiated w.r.t. the hash table
    and the network: gradcheck in float64 (second derivatives through hash_encode)."""
    torch.manual_seed(0)
    config = HashFieldConfig(n_levels=2, log2_table_size=6, base_resolution=3,
                             finest_resolution=9, hidden_width=8, geo_features=3,
                             aabb=(-1, -1, -1, 1, 1, 1))
    field = HashSDFField(config, use_weight_norm=False).double()
    with torch.no_grad():  # leave the initialisation so that the table matters
        field.layers[0].weight.normal_()
        field.grid.params.uniform_(-0.5, 0.5)
    points = torch.rand(20, 3, dtype=torch.float64) * 1.6 - 0.8

    def eikonal(table, first_weight):
        def sdf(p):
            return functional_call(field, {"grid.params": table,
                                           "layers.0.weight": first_weight}, (p,))
        _, _, gradient = sdf_and_gradient(sdf, points, create_graph=True)
        return ((gradient.norm(dim=-1) - 1) ** 2).mean()

    table = field.grid.params.detach().clone().requires_grad_(True)
    weight = field.layers[0].weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(eikonal, (table, weight))
    eikonal(table, weight).backward()
    assert table.grad.abs().sum() > 0


def test_neus_with_the_hash_field_feeds_its_feature_to_the_colour_field():
    config = NeuSConfig(field="hash", hash=HashFieldConfig(**SMALL, geo_features=7),
                        n_outside=0)
    model = NeuS(config)
    assert isinstance(model.sdf_network, HashSDFField)
    points = unit_vectors(10, torch.float32) * 0.5
    sdf, feature, gradient = sdf_and_gradient(model.sdf_network, points, create_graph=False)
    assert feature.shape == (10, 7)
    assert model.color_network(points, gradient, points, feature).shape == (10, 3)


# ----------------------------------------------------------------------------- configuration
@pytest.mark.parametrize("make, message", [
    (lambda: NeRF(NeRFConfig(field="grid")), "nerf.field must be one of 'mlp', 'hash'"),
    (lambda: NeuS(NeuSConfig(field="tcnn")), "neus.field must be one of 'mlp', 'hash'"),
    (lambda: HashNeRFField(HashFieldConfig(aabb=(0, 0, 0, 1, 1))), "hash.aabb must be"),
    (lambda: HashNeRFField(HashFieldConfig(aabb=(0, 0, 0, 1, -1, 1))), "hash.aabb must be"),
    (lambda: HashNeRFField(HashFieldConfig(finest_resolution=8)), "hash.finest_resolution"),
    (lambda: HashNeRFField(HashFieldConfig(**{**SMALL, "geo_features": 0})), "hash.geo_features"),
    (lambda: HashNeRFField(HashFieldConfig(**SMALL, sh_degree=6)), "degree must be in 1..4"),
])
def test_bad_field_configs_raise_value_errors_naming_the_field(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_per_level_scale_follows_instant_ngp():
    assert HashFieldConfig().per_level_scale() == pytest.approx(1.3819, abs=1e-4)
    config = HashFieldConfig(n_levels=5, base_resolution=16, finest_resolution=256)
    assert 16 * config.per_level_scale() ** 4 == pytest.approx(256)


def test_ngp_presets_use_instant_ngp_training_options():
    for name in ("ngp-lego", "ngp-small"):
        config = preset(name)
        assert (config.nerf.field, config.lr, config.adam_eps) == ("hash", 1e-2, 1e-15)
        assert tuple(config.adam_betas) == (0.9, 0.99) and config.random_background
        assert isinstance(build_model(config).coarse, HashNeRFField)
    lego = preset("ngp-lego")
    assert (lego.iters, lego.data.downscale, lego.data.half_res) == (20_000, 1, False)
    assert isinstance(build_model(preset("neus-ngp")).sdf_network, HashSDFField)


def test_ngp_schedule_is_tiny_cuda_nn_exponential_decay():
    config = TrainConfig(model="nerf", lr=1.0, lr_schedule="ngp", lr_decay_start=100,
                         lr_decay_interval=50, lr_decay_base=0.5)
    rates = [learning_rate(config, s) for s in (0, 99, 100, 149, 150, 199, 200, 275)]
    assert rates == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.125]
    config.warm_up = 10
    assert learning_rate(config, 5) == pytest.approx(0.5)


def test_optimizer_takes_eps_betas_and_spares_hash_tables_weight_decay():
    config = TrainConfig(model="nerf", nerf=NeRFConfig(field="hash", fine=None, n_fine=0,
                                                       hash=HashFieldConfig(**SMALL)),
                         adam_eps=1e-15, adam_betas=(0.9, 0.99), weight_decay=1e-6)
    model = build_model(config)
    optimizer = make_optimizer(model, config)
    networks, tables = optimizer.param_groups
    assert tables["params"] == [model.coarse.grid.params] and tables["weight_decay"] == 0.0
    assert networks["weight_decay"] == 1e-6 and len(networks["params"]) == \
        len(list(model.parameters())) - 1
    assert all(g["eps"] == 1e-15 and g["betas"] == (0.9, 0.99) for g in optimizer.param_groups)


def test_recompositing_over_a_new_background_matches_the_loader(tmp_path):
    """The built-in Blender scene loaded over white, recomposited over black with its alpha,
    equals the same scene loaded over black (up to the uint8 rounding of both)."""
    white = builtin_scene(tmp_path, "blender", resolution=32).split("train")
    black = builtin_scene(tmp_path, "blender", resolution=32,
                          white_background=False).split("train")
    alpha = (white.masks * 255).round() / 255.0
    recomposited = over_background(white.images.float() / 255.0, alpha[..., None],
                                   torch.ones(3), torch.zeros(3))
    assert (recomposited - black.images.float() / 255.0).abs().max() <= 1.5 / 255
