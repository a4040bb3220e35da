"""Experiment cifar_fulldata: the research log's CIFAR-10 comparison points on the whole
training set (grids per profile, the variants, validation, a smoke run on the fixture)."""
from __future__ import annotations

import collections

import pytest

from factorlab.experiments import cifar_common as cc
from factorlab.experiments import cifar_fulldata as F
from factorlab.experiments import get_experiment
from factorlab.results import RunStore, config_hash

NAMES = ["dense", "separable", "lowrank2_usual", "lowrank2_scaled", "lowrank10_usual", "lowrank10_scaled", "tt"]


def test_variants_are_the_journals_comparison_points():
    assert [n for n, _, _ in F.VARIANTS] == NAMES
    spec = {n: (s, wd) for n, s, wd in F.VARIANTS}
    assert spec["dense"] == (None, "usual") and spec["separable"] == ({"family": "separable"}, "usual")
    for f in (2, 10):
        for wd in ("usual", "scaled"):
            assert spec[f"lowrank{f}_{wd}"] == ({"family": "separable_lowrank", "factor": f}, wd)
    assert spec["tt"] == ({"family": "separable_tt", "d": 3, "rank": 16}, "usual")


@pytest.mark.parametrize("profile", ["cpu", "full"])
def test_cpu_and_full_grids_width_half_three_seeds_width_one_one_seed(profile):
    grid = F.EXPERIMENT.grid(profile)
    assert len(grid) == 28 and len({config_hash(c.to_dict()) for c in grid}) == 28
    per_width = collections.Counter((c.width, c.seed) for c in grid)
    assert per_width == {(0.5, 0): 7, (0.5, 1): 7, (0.5, 2): 7, (1.0, 0): 7}
    for width, seeds in ((0.5, [0, 1, 2]), (1.0, [0])):
        names = collections.Counter(F.variant_name(c.to_dict()) for c in grid if c.width == width)
        assert names == {n: len(seeds) for n in NAMES}
    for c in grid:
        assert c.experiment == "cifar_fulldata" and c.profile == profile and c.net == "airbench"
        assert (c.n_train, c.n_test, c.data_source) == (None, None, None)  # all 50,000 / 10,000 images
        assert c.recipe == cc.airbench_recipe(warmup_steps=1 if profile == "cpu" else 3)
        assert (c.recipe["epochs"], c.recipe["batch_size"]) == (9.9, 1024)  # airbench94's own schedule
        assert c.dirac is True and c.family == cc.family_of(c.factorize)


def test_smoke_grid_is_the_fixture_seven_variants_once():
    grid = F.grid("smoke")
    assert [F.variant_name(c) for c in grid] == NAMES
    assert all(c["data_source"] == "fixture" and c["width"] == 0.125 and c["seed"] == 0 for c in grid)
    assert all(c["recipe"] == cc.airbench_recipe(epochs=1, batch_size=50, warmup_steps=1) for c in grid)


def test_cpu_grid_configs_are_off_the_small_grid():
    small = {config_hash(c) for c in get_experiment("cifar_factorized").grid("cpu")}
    small |= {config_hash(c) for c in get_experiment("cifar_baselines").grid("cpu")}
    assert not small & {config_hash(c) for c in F.grid("cpu")}


def test_validation_errors():
    with pytest.raises(ValueError, match="unknown profile 'gpu'"):
        F.configs("gpu")
    off = dict(F.grid("smoke")[2], factorize={"family": "separable_lowrank", "factor": 4})
    with pytest.raises(ValueError, match=r"factorize=\{'family': 'separable_lowrank', 'factor': 4\} with "
                                         r"wd_mode='usual' is none of cifar_fulldata's variants: dense, separable, "
                                         r"lowrank2_usual, lowrank2_scaled, lowrank10_usual, lowrank10_scaled, tt"):
        F.train(off)
    sep_scaled = dict(F.grid("smoke")[1], wd_mode="scaled")
    with pytest.raises(ValueError, match="wd_mode='scaled' is none of cifar_fulldata's variants"):
        F.variant_name(sep_scaled)
    exp = F.EXPERIMENT
    with pytest.raises(ValueError, match="family must be 'separable'"):
        exp.from_dict(dict(F.grid("smoke")[1], family="dense"))
    with pytest.raises(ValueError, match="not a config of 'cifar_fulldata'"):
        exp.from_dict(get_experiment("cifar_factorized").grid("smoke")[0])


def test_smoke_run_writes_a_record(tmp_path, monkeypatch):
    """Two smoke configs (dense and the tensor train) trained through the store on the fixture."""
    monkeypatch.delenv("FACTORLAB_REQUIRE_CACHED", raising=False)
    store = RunStore(tmp_path)
    grid = F.grid("smoke")
    for cfg in (grid[0], grid[-1]):
        rec = store.run(cfg, lambda c: F.EXPERIMENT.train(c, "cpu"), device="cpu")
        assert rec["config"] == cfg and store.get(cfg) == rec
        assert rec["metrics"]["n_train"] == 250 and rec["metrics"]["n_test"] == 100
        assert 0.0 <= rec["metrics"]["test_acc"] <= 1.0 and rec["timing"]["steps"] == 5
    dense, tt = (store.get(c)["model"] for c in (grid[0], grid[-1]))
    assert dense["params"] == dense["dense_params"] == tt["dense_params"] > tt["params"] > 0
    assert dense["compression"] == 1 and tt["compression"] > 1


def test_anchor_beside_the_dense_width_half_net():
    """cifar_anchor: its grid unchanged (one comparison per profile; the committed cpu record's
    key), and --ours cifar_fulldata puts airbench94 beside cifar_fulldata's dense width-1/2
    seeds 0-2 on all the data."""
    from factorlab.experiments import cifar_anchor as A

    assert [len(A.configs(p)) for p in ("smoke", "cpu", "full")] == [1, 1, 1]
    assert config_hash(A.configs("cpu")[0].to_dict()) == "ea105cf2b028367f"
    full_data = A.make_config(profile="cpu", torchvision="shim", ours_experiment="cifar_fulldata")
    assert (full_data.ours_experiment, full_data.runs, full_data.seeds, full_data.device) == \
        ("cifar_fulldata", 3, [0, 1, 2], "cpu")
    dense = [c for c in F.grid("cpu") if c["factorize"] is None and c["width"] == 0.5]
    assert full_data.ours_keys == [config_hash(c) for c in dense]
    assert full_data.ours_recipe == cc.airbench_recipe(warmup_steps=1)
    assert A.anchor_configs(3, "cpu", "cifar_fulldata") == dense
    with pytest.raises(ValueError, match="--runs must be in 1..3"):
        A.anchor_configs(4, "cpu", "cifar_fulldata")
    with pytest.raises(ValueError, match="our side of the anchor comes from one of cifar_baselines, cifar_fulldata, "
                                         "not 'cifar_long'"):
        A.make_config(profile="cpu", ours_experiment="cifar_long")


def test_anchor_script_takes_ours(monkeypatch):
    """The script's config for --ours cifar_fulldata (validated before any data are read)."""
    import argparse

    from factorlab.experiments import cifar_anchor as A

    parser = argparse.ArgumentParser()
    A._options(parser)
    args = parser.parse_args(["--ours", "cifar_fulldata", "--torchvision-shim"])
    monkeypatch.setattr(A, "import_airbench", lambda shim=False, force_shim=False: (None, "shim"))
    cfg = A._command_config("cpu", "cpu", args)
    assert cfg == A.make_config(profile="cpu", torchvision="shim", ours_experiment="cifar_fulldata")
    with pytest.raises(ValueError, match="--runs must be in 1..3"):
        A._command_config("cpu", "cpu", parser.parse_args(["--ours", "cifar_fulldata", "--runs", "5"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["--ours", "cifar_long"])
