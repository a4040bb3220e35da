"""The C allocator setting (factorlab.train.allocator) is the process's: set once where a training
process starts (the CLI's run, each executor worker, a notebook's first trained run), recorded by
the training loop, never set by it."""
from __future__ import annotations

import ctypes
import ctypes.util
import sys
import types

import pytest
import torch

from factorlab.experiments import executors, registry
from factorlab.results import RunStore
from factorlab.train import allocator, fit_classifier, seed_everything
from factorlab.models import MLP

SET = "glibc, freed memory kept"


@pytest.fixture
def fresh(monkeypatch):
    """This process as if nothing had set the allocator; ``calls`` counts the mallopt calls."""
    calls = []
    monkeypatch.setattr(allocator, "_state", {})
    monkeypatch.setattr(allocator, "_set_thresholds", lambda: calls.append(1) or SET)
    return calls


def _fit_once() -> dict:
    seed_everything(0)
    model = MLP(hidden=(8,), dropout=0.0)
    x = torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8)
    y = torch.randint(0, 10, (64,))
    r = fit_classifier(model, torch.optim.SGD(model.parameters(), lr=0.01), (x, y), (x[:16], y[:16]), epochs=1,
                       batch_size=32, device=torch.device("cpu"), seed=0,
                       preprocess=lambda b: (b.float() / 255.0).unsqueeze(1))
    return r.timing


def test_retain_freed_memory_sets_the_thresholds_once_per_process(fresh):
    assert allocator.allocator_in_effect() == "system default"  # nothing set yet
    assert allocator.retain_freed_memory() == SET and allocator.retain_freed_memory() == SET
    assert fresh == [1] and allocator.allocator_in_effect() == SET


def test_fit_classifier_records_the_process_setting_and_does_not_set_it(fresh):
    assert _fit_once()["allocator"] == "system default" and fresh == []
    allocator.retain_freed_memory()
    assert _fit_once()["allocator"] == SET and fresh == [1]


def test_the_cli_run_sets_it_once_before_anything_trains(fresh, monkeypatch, tmp_path):
    from factorlab import cli

    seen = []
    monkeypatch.setenv("FACTORLAB_RESULTS_DIR", str(tmp_path))
    monkeypatch.setattr(executors, "run_grid", lambda *a, **k: seen.append(allocator.allocator_in_effect()) or [])
    assert cli.main(["run", "mnist_baselines", "--profile", "smoke"]) == 0
    assert seen == [SET] and fresh == [1]


def test_a_run_trained_in_this_process_sets_it_first(fresh, tmp_path, monkeypatch):
    """A notebook's kernel (registry.run_config / run_experiment) becomes a training process."""
    cfg = {"experiment": "toy_alloc", "profile": "smoke", "seed": 0}
    exp = types.SimpleNamespace(
        from_dict=lambda d: types.SimpleNamespace(to_dict=lambda: dict(d)), device_for=lambda c, d: "cpu",
        train=lambda c, d: {"metrics": {"allocator": allocator.allocator_in_effect()}, "history": {}, "timing": {},
                            "model": {}})
    monkeypatch.setattr(registry, "get", lambda name: exp)
    store = RunStore(tmp_path)
    assert registry.run_config("toy_alloc", cfg, store=store)["metrics"]["allocator"] == SET
    assert registry.run_config("toy_alloc", cfg, store=store)["metrics"]["allocator"] == SET  # cached
    assert fresh == [1]


def alloc_train(config: dict, device: str) -> dict:
    """A toy run (module level, so worker processes import it): the worker's allocator setting."""
    return {"metrics": {"allocator": allocator.allocator_in_effect()}, "history": {}, "timing": {}, "model": {}}


def test_process_workers_set_it_as_they_start(tmp_path):
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6") if sys.platform.startswith("linux") else None
    expected = SET if libc is not None and hasattr(libc, "gnu_get_libc_version") else "system default"
    configs = [{"experiment": "toy_alloc", "profile": "smoke", "seed": s} for s in range(2)]
    records = executors.run_configs(configs, alloc_train, executor="processes", jobs=2, store=RunStore(tmp_path))
    assert [r["metrics"]["allocator"] for r in records] == [expected, expected]
