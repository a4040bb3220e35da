"""factorlab.experiments.mnist_multitask: the grid, the two-class form of the binary tasks, the
per-task errors, the deeper network's parameter match, and the multitask labels through
fit_classifier."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from factorlab.experiments import mnist_multitask as mm
from factorlab.experiments.registry import get


@pytest.mark.parametrize("profile", ["smoke", "cpu", "full"])
def test_grid_has_every_method_per_size_and_seed_single_first(profile):
    configs = mm.grid(profile)
    budget = mm.BUDGETS[profile]
    assert len(configs) == len(budget["sizes"]) * len(budget["seeds"]) * len(mm.METHODS)
    assert len({get(mm.NAME).label(c) for c in configs}) == len(configs)
    for i in range(0, len(configs), len(mm.METHODS)):
        block = configs[i:i + len(mm.METHODS)]
        assert [c["method"] for c in block] == list(mm.METHODS)
        assert len({(c["n_train"], c["seed"]) for c in block}) == 1
        for c in block:
            assert (c["rel_error"] is None) == (c["method"] in ("single", "hard", "single_long"))
            assert (c["tucker_iters"] is not None) == (c["method"] == "tucker")
            assert (c["single_init"] is None) == (c["method"] == "hard")
            assert c["epochs"] == block[0]["epochs"] * (mm.LONG_FACTOR if c["method"] == "single_long" else 1)
            if c["method"] == "single_long":
                with pytest.raises(ValueError, match="single_long starts from nothing"):
                    mm.single_task_config(c)
            elif c["method"] != "hard":
                assert mm.single_task_config(c) == block[0]


def test_single_task_networks_start_shared_or_independent():
    torch.manual_seed(0)
    shared = mm.build_single("shared", num_tasks=3)
    for layer in shared.layers():
        assert torch.equal(layer.weight[1], layer.weight[0]) and torch.equal(layer.bias[2], layer.bias[0])
    indep = mm.build_single("independent", num_tasks=3)
    assert not torch.equal(indep.conv1.weight[1], indep.conv1.weight[0])
    with pytest.raises(ValueError, match="single_init must be 'independent' or 'shared'"):
        mm.build_single("same")


def test_two_class_logits_give_binary_cross_entropy_and_the_sign_rule():
    torch.manual_seed(0)
    z = torch.randn(7, 4)
    y = torch.randint(0, 2, (7, 4))
    logits = mm.TwoClassLogits(torch.nn.Identity())(z)
    assert logits.shape == (7, 2, 4)
    assert torch.allclose(F.cross_entropy(logits, y), F.binary_cross_entropy_with_logits(z, y.float()), atol=1e-6)
    assert torch.equal(logits.argmax(1), (z > 0).long())


def test_one_vs_all_and_task_errors_count_wrong_answers_per_task():
    y = torch.tensor([0, 1, 2, 2])
    assert mm.one_vs_all(y, 3).tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]]

    class Fixed(torch.nn.Module):  # says "digit 2" for every image: wrong on task 0 and 1 once each, task 2 twice
        def forward(self, x):
            return torch.tensor([[-1.0, -1.0, 1.0]]).expand(x.shape[0], 3)

    x = torch.zeros(4, 28, 28, dtype=torch.uint8)
    assert mm.task_errors(Fixed(), x, y, batch_size=3) == [25.0, 25.0, 50.0]


@pytest.mark.parametrize("target", [600_000, 2_000_000, 7_000_000])
def test_deep_network_matches_the_parameter_count_it_is_given(target):
    w = mm.deep_width(target)
    net = mm.build_deep(w)
    assert net.num_params() == mm.deep_params(w)
    assert abs(mm.deep_params(w) - target) <= abs(mm.deep_params(w + 1) - target)
    assert w == 1 or abs(mm.deep_params(w) - target) <= abs(mm.deep_params(w - 1) - target)
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="deep_layers must be >= 1"):
        mm.deep_width(target, layers=0)


def test_fit_classifier_takes_one_label_per_task_and_averages_over_all_labels():
    from factorlab.train import fit_classifier
    from factorlab.train.classifier import evaluate

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x, y = torch.randn(10, 1, 2, 2), torch.randint(0, 2, (10, 3))
    model = mm.TwoClassLogits(net)
    loss, acc = evaluate(model, x, y, preprocess=lambda t: t, device=torch.device("cpu"), batch_size=4)
    with torch.no_grad():
        z = net(x)
    assert loss == pytest.approx(float(F.binary_cross_entropy_with_logits(z, y.float())), rel=1e-6)
    assert acc == pytest.approx(float(((z > 0).long() == y).float().mean()))
    fit = fit_classifier(model, torch.optim.SGD(model.parameters(), lr=0.0), (x, y), (x, y), epochs=1, batch_size=5,
                         device=torch.device("cpu"), seed=0, preprocess=lambda t: t)
    assert fit.metrics["train_loss"] == pytest.approx(loss, rel=1e-6)
    assert fit.metrics["train_acc"] == pytest.approx(acc)


def test_single_long_continues_the_single_task_networks_training():
    """``single_long`` starts from the same networks and batches as ``single``: its first epochs
    are the single-task run's epochs exactly (constant learning rate), then it trains as many
    again."""
    single, long_ = (c for c in mm.grid("smoke") if c["method"] in ("single", "single_long"))
    a, b = mm.train(single, "cpu"), mm.train(long_, "cpu")
    n = single["epochs"]
    assert long_["epochs"] == mm.LONG_FACTOR * n and len(b["history"]["train_loss"]) == mm.LONG_FACTOR * n
    assert b["history"]["train_loss"][:n] == a["history"]["train_loss"]
    assert b["model"]["params"] == a["model"]["params"] and "pretrain_s" not in b["timing"]
