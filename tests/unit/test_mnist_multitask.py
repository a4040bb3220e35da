"""DMTRL's MNIST network (factorlab.models.mnist_multitask): shapes, exact parameter counts of
the three forms, the single-task form equal to T separate networks, and a DMTRL network
initialised from it at full rank reproducing its outputs."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from factorlab.layers.task_tensor import full_ranks
from factorlab.models.mnist_multitask import (FLAT, HIDDEN, KINDS, build_mnist_multitask, dmtrl_from_single_task,
                                              task_factorized_layers)

T = 3
DENSE_PER_TASK = (32 * 25 + 32) + (64 * 32 * 16 + 64) + (512 * 1024 + 512) + (512 + 1)


def _images(n=4, dtype=torch.float32):
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(0), dtype=dtype)


@pytest.mark.parametrize("kind", ["single", "hard"])
def test_shapes_and_parameter_counts(kind):
    torch.manual_seed(0)
    model = build_mnist_multitask(kind, num_tasks=T)
    assert model(_images()).shape == (4, T)
    if kind == "single":
        assert model.num_params() == T * DENSE_PER_TASK
    else:
        assert model.num_params() == DENSE_PER_TASK - (512 + 1) + T * (512 + 1)
    assert FLAT == 1024 and HIDDEN == 512
    per_task = (24 * 24 * 32 * (2 * 25 + 1) + 9 * 9 * 64 * (2 * 32 * 16 + 1) + 512 * (2 * 1024 + 1)
                + 1 * (2 * 512 + 1))
    head = 2 * 512 + 1
    assert model.flops(batch=2) == 2 * (T * per_task if kind == "single" else per_task - head + T * head)


def test_dmtrl_parameter_count_is_the_sum_of_the_hand_formulas():
    model = build_mnist_multitask("dmtrl", "laf", 2, num_tasks=T)
    assert model(_images()).shape == (4, T)
    laf = 2 * (32 * 25 + T) + 2 * (64 * 32 * 16 + T) + 2 * (512 * 1024 + T) + 2 * (512 + T)
    assert model.num_params() == laf + T * (32 + 64 + 512 + 1)
    tt = build_mnist_multitask("dmtrl", "tt", [(2, 4, 4, 2), (2, 4, 4, 2), (2, 8), (2, 1)], num_tasks=T)
    cores = ((T * 2 + 2 * 32 * 4 + 4 * 1 * 4 + 4 * 5 * 2 + 2 * 5)  # modes (T, 32, 1, 5, 5)
             + (T * 2 + 2 * 64 * 4 + 4 * 32 * 4 + 4 * 4 * 2 + 2 * 4)  # (T, 64, 32, 4, 4)
             + (T * 2 + 2 * 512 * 8 + 8 * 1024) + (T * 2 + 2 * 1 * 1 + 1 * 512))  # (T, 512, 1024), (T, 1, 512)
    assert tt.num_params() == cores + T * (32 + 64 + 512 + 1)
    assert set(task_factorized_layers(tt)) == {"conv1", "conv2", "fc1", "head"}
    layers = task_factorized_layers(tt)
    shapes = {"conv1": (2, 1, 28, 28), "conv2": (T, 2, 32, 12, 12), "fc1": (T, 2, 1024), "head": (T, 2, 512)}
    assert tt.flops(batch=2) == sum(layers[n].flops(s) for n, s in shapes.items())


def test_single_task_form_equals_t_separate_networks():
    torch.manual_seed(1)
    model = build_mnist_multitask("single", num_tasks=T).double()
    x = _images(dtype=torch.float64)
    got = model(x)
    for t in range(T):
        conv1, conv2 = nn.Conv2d(1, 32, 5).double(), nn.Conv2d(32, 64, 4).double()
        fc1, head = nn.Linear(1024, 512).double(), nn.Linear(512, 1).double()
        with torch.no_grad():
            for dense, stacked in ((conv1, model.conv1), (conv2, model.conv2), (fc1, model.fc1), (head, model.head)):
                dense.weight.copy_(stacked.weight[t])
                dense.bias.copy_(stacked.bias[t])
        net = nn.Sequential(conv1, nn.ReLU(), nn.MaxPool2d(2), conv2, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            fc1, nn.ReLU(), head)
        torch.testing.assert_close(got[:, t], net(x)[:, 0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["laf", "tucker", "tt"])
def test_dmtrl_from_single_task_at_full_rank_reproduces_the_single_task_networks(method):
    torch.manual_seed(2)
    single = build_mnist_multitask("single", num_tasks=T).double()
    ranks = [full_ranks(method, layer.weight.shape) for layer in single.layers()]
    dmtrl = dmtrl_from_single_task(single, method, rank=ranks)
    assert dmtrl.kind == "dmtrl"
    x = _images(dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(dmtrl(x), single(x), rtol=1e-9, atol=1e-9)
    single32 = single.float()
    dmtrl32 = dmtrl_from_single_task(single32, method, rank=ranks)
    with torch.no_grad():
        torch.testing.assert_close(dmtrl32(_images()), single32(_images()), rtol=1e-5, atol=1e-5)


def test_dmtrl_from_single_task_at_a_relative_error_on_the_small_layers():
    torch.manual_seed(3)
    single = build_mnist_multitask("single", num_tasks=T)
    single.fc1.weight.data = single.fc1.weight.data[:1].expand(T, -1, -1).clone()  # fc1 shared by every task
    dmtrl = dmtrl_from_single_task(single, "laf", rel_error=0.1)
    assert dmtrl.fc1.task_rank() == 1 and dmtrl.conv2.task_rank() == T
    assert dmtrl(_images()).shape == (4, T)


def test_builder_refuses_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        build_mnist_multitask("soft")
    with pytest.raises(ValueError, match="needs method"):
        build_mnist_multitask("dmtrl", "laf")
    with pytest.raises(ValueError, match="kind='dmtrl' only"):
        build_mnist_multitask("hard", "laf", 2)
    with pytest.raises(ValueError, match="one spec per layer"):
        build_mnist_multitask("dmtrl", "laf", [1, 2])
    with pytest.raises(ValueError, match=r"\[2\]=8 exceeds its maximum 1"):  # Tucker rank 8 on conv1 in-mode (1)
        build_mnist_multitask("dmtrl", "tucker", 8)
    with pytest.raises(ValueError, match="kind='single'"):
        dmtrl_from_single_task(build_mnist_multitask("hard"), "laf", rank=1)
    assert KINDS == ("single", "hard", "dmtrl")
