"""CIFAR-10 nets: parameter counts by hand, shapes, whitening, the factorized variants."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from factorlab.layers import SeparableConv2d, TTConv2d
from factorlab.models import count_params
from factorlab.models.cifar import (FAMILIES, AirbenchNet, ResNet9, SeparableTTConv2d, build_cifar_model,
                                    conv_factory, describe_factorized)
from factorlab.models.counting import compressed_modules


def conv_bn(c_in: int, c_out: int, bn_weight: bool = True) -> int:
    """Parameters of a bias-free 3x3 conv followed by BatchNorm (shift, and scale if trained)."""
    return 9 * c_in * c_out + c_out * (2 if bn_weight else 1)


def test_resnet9_parameter_count_by_hand_and_shapes():
    prep = 27 * 64 + 2 * 64
    layer1, res1 = conv_bn(64, 128), 2 * conv_bn(128, 128)
    layer2 = conv_bn(128, 256)
    layer3, res3 = conv_bn(256, 512), 2 * conv_bn(512, 512)
    head = 512 * 10  # linear without bias
    expected = prep + layer1 + res1 + layer2 + layer3 + res3 + head
    assert expected == 6_573_120
    torch.manual_seed(0)
    net = ResNet9()
    assert count_params(net) == expected
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    half = ResNet9(width=0.5)
    assert half.channels == (32, 64, 128, 256) and half(torch.randn(3, 3, 32, 32)).shape == (3, 10)
    assert ResNet9(width=0.25).channels == (16, 32, 64, 128)


def test_airbench_parameter_count_by_hand_and_whitening():
    convs = [(24, 64), (64, 64), (64, 256), (256, 256), (256, 256), (256, 256)]
    # trainable: whitening bias, conv weights, BatchNorm shifts (scales frozen), linear without bias
    expected = 24 + sum(conv_bn(i, o, bn_weight=False) for i, o in convs) + 256 * 10
    torch.manual_seed(0)
    net = AirbenchNet()
    assert count_params(net) == expected == 1_971_352
    assert count_params(net, trainable_only=False) == expected + 24 * 12 + 64 * 2 + 256 * 4  # + whitening, BN scales
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    images = torch.randn(64, 3, 32, 32) * torch.tensor([1.0, 2.0, 0.5]).view(1, 3, 1, 1)
    net.init_whitening(images, eps=0.0)
    w = net.whiten.weight.detach().double()
    assert torch.equal(w[:12], -w[12:])
    patches = images.double().unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)
    white = patches @ w[:12].reshape(12, 12).T
    cov = white.T @ white / white.shape[0]
    assert torch.allclose(cov, torch.eye(12, dtype=torch.float64), atol=1e-6)  # whitened patches
    assert not net.whiten.weight.requires_grad


def test_dirac_initialisation_of_airbench_convs():
    net = AirbenchNet(width=0.25)
    conv = net.blocks[1][1].conv  # 64 -> 64
    x = torch.randn(1, 64, 5, 5)
    assert torch.allclose(conv(x), x, atol=1e-6)


def _spec_grid():
    return [{"family": "separable"}] + [{"family": "separable_lowrank", "factor": f} for f in (2, 4, 10, 20)] + \
        [{"family": "separable_tt", "d": d, "rank": r} for d in (2, 3, 4) for r in (4, 16)] + \
        [{"family": "tucker", "compression": 8}, {"family": "cp", "compression": 32}, {"family": "lowrank", "rank": 8},
         {"family": "tt", "d": 3, "rank": 4}, {"family": "tucker", "rank": 4}]


@pytest.mark.parametrize("net", ["resnet9", "airbench"])
@pytest.mark.parametrize("spec", _spec_grid(), ids=lambda s: "-".join(str(v) for v in s.values()))
def test_factorized_variants_replace_every_3x3_conv_but_the_first(net, spec):
    torch.manual_seed(0)
    width = 0.25
    dense = build_cifar_model(net, width)
    model = build_cifar_model(net, width, spec)
    layers = compressed_modules(model)
    assert len(layers) == (7 if net == "resnet9" else 6)
    first = model.prep.conv if net == "resnet9" else model.whiten
    assert type(first) is nn.Conv2d and type(model.head[2]) is nn.Linear
    # whole-model count = dense count - replaced dense convs + each layer's own num_params
    replaced = sum(9 * m.in_channels * m.out_channels for _, m in layers)
    assert count_params(model) == count_params(dense) - replaced + sum(m.num_params() for _, m in layers)
    for name, m in layers:
        assert m.num_params() == sum(p.numel() for p in m.parameters())
        assert m.dense_params() == 9 * m.in_channels * m.out_channels
        if spec["family"] == "separable_lowrank":
            assert isinstance(m, SeparableConv2d) and m.rank == min(max(1, m.in_channels // spec["factor"]),
                                                                     m.out_channels)
        if spec["family"] == "separable_tt":
            assert isinstance(m, SeparableTTConv2d) and isinstance(m.pointwise, TTConv2d)
            assert len(m.rank) == spec["d"] and m.rank[0] == 1 and max(m.rank) <= spec["rank"]
    rows = describe_factorized(model)
    assert [r["name"] for r in rows] == [n for n, _ in layers] and all(r["params"] > 0 for r in rows)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_journal_bottleneck_ranks_at_width_1():
    model = build_cifar_model("resnet9", 1.0, {"family": "separable_lowrank", "factor": 4})
    ranks = {n: m.rank for n, m in compressed_modules(model)}
    assert ranks["layer1.conv"] == 64 // 4 and ranks["layer3.conv"] == 256 // 4 and ranks["res3.blocks.0.conv"] == 128
    sep = build_cifar_model("resnet9", 1.0, {"family": "separable"})
    assert all(m.rank is None for _, m in compressed_modules(sep))


def test_bad_specs_and_widths_are_clear_errors():
    with pytest.raises(ValueError, match="unknown conv family 'svd'"):
        conv_factory({"family": "svd"})
    with pytest.raises(ValueError, match="takes .*'factor', 'rank'.*unknown \\['d'\\]"):
        conv_factory({"family": "separable_lowrank", "factor": 4, "d": 2})
    with pytest.raises(ValueError, match="exactly one of factor"):
        conv_factory({"family": "separable_lowrank"})
    with pytest.raises(ValueError, match="needs d"):
        conv_factory({"family": "separable_tt", "rank": 4})
    with pytest.raises(ValueError, match="exactly one of rank or compression"):
        conv_factory({"family": "tucker", "rank": 4, "compression": 8})
    with pytest.raises(ValueError, match="factor must be a number >= 1"):
        conv_factory({"family": "separable_lowrank", "factor": 0.5})
    with pytest.raises(ValueError, match="a 'family' key"):
        conv_factory({"rank": 4})
    for width in (0, -0.5, 8, "1", float("nan"), True):
        with pytest.raises(ValueError, match="width must be a number"):
            build_cifar_model("resnet9", width)
    with pytest.raises(ValueError, match="unknown CIFAR net 'vgg'"):
        build_cifar_model("vgg")
    assert set(FAMILIES) >= {"dense", "separable", "separable_lowrank", "separable_tt", "tucker", "cp"}
