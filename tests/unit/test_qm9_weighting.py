"""Experiment ``qm9_weighting``: the grid (exact counts, the budget of the sharing experiments),
the equal-weight reference it takes from ``qm9_soft_sharing`` (bit-identical on the fixture),
and that uncertainty weighting and FAMO train and change the run."""
from __future__ import annotations

import pytest

from factorlab.experiments import get
from factorlab.experiments import qm9_soft_sharing as soft
from factorlab.experiments import qm9_weighting as qw
from factorlab.experiments.qm9_common import NASH11
from factorlab.results import config_hash

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

#: Config keys that only name what differs between the sharing experiments.
_OWN = {"experiment", "task_set", "weighting", "weighting_kwargs", "method", "lam", "stitch", "sharing"}


@pytest.mark.parametrize("profile,runs,seeds", [("smoke", 2, [0]), ("cpu", 6, [0, 1, 2]), ("full", 6, [0, 1, 2])])
def test_grid_counts_weightings_seeds_and_targets(profile, runs, seeds):
    configs = qw.grid(profile)
    assert len(configs) == runs == len(qw.WEIGHTINGS) * len(seeds)
    assert len({config_hash(c) for c in configs}) == runs
    assert sorted(c["seed"] for c in configs) == sorted(seeds * len(qw.WEIGHTINGS))
    assert [c["weighting"] for c in configs[:2]] == ["uncertainty", "famo"]
    assert all(c["targets"] == NASH11 and c["task_set"] == "nash11" and c["sharing"] == "hard" for c in configs)
    assert all(c["weighting_kwargs"] == qw.WEIGHTING_KWARGS[c["weighting"]] for c in configs)
    assert get("qm9_weighting").grid(profile)[0].to_dict() == configs[0]


@pytest.mark.parametrize("profile", ["smoke", "cpu", "full"])
def test_budget_and_seeds_are_those_of_the_equal_weight_reference(profile):
    """Every run shares its budget with the qm9_soft_sharing λ = ∞ nash11 run of its seed."""
    ref = qw.equal_weight_configs(profile)
    assert [c["seed"] for c in ref] == qw.SEEDS[profile]
    assert all(c["lam"] == "inf" and c["task_set"] == "nash11" and c["targets"] == NASH11 for c in ref)
    by_seed = {c["seed"]: c for c in ref}
    for c in qw.grid(profile):
        other = by_seed[c["seed"]]
        assert {k: v for k, v in c.items() if k not in _OWN} == {k: v for k, v in other.items() if k not in _OWN}


def test_config_rejects_other_targets_and_bad_weighting_arguments():
    base = qw.grid("smoke")[0]
    with pytest.raises(ValueError, match="nash11"):
        qw.Config.from_dict({**base, "targets": NASH11[:3]})
    with pytest.raises(ValueError, match="bad arguments for loss weighting 'famo'"):
        qw.Config.from_dict({**base, "weighting": "famo", "weighting_kwargs": {"beta": 0.1}})
    with pytest.raises(ValueError, match="weighting"):
        qw.Config.from_dict({**base, "weighting": "gradnorm"})


def _smoke(weighting: str, n_train: int = 96) -> dict:
    """A seconds-long smoke config of ``weighting`` (the fixture's first molecules)."""
    base = qw.grid("smoke")[0]
    return qw.Config.from_dict({**base, "weighting": weighting, "n_train": n_train, "n_valid": 16, "n_test": 16,
                                "weighting_kwargs": qw.WEIGHTING_KWARGS[weighting]}).to_dict()


@pytest.fixture(scope="module")
def runs() -> dict[str, dict]:
    return {w: qw.train(_smoke(w), "cpu") for w in qw.ALL_WEIGHTINGS}


def test_smoke_runs_record_every_target_and_the_task_weights(runs):
    for w, parts in runs.items():
        m = parts["metrics"]
        assert set(m["test_mae"]) == set(NASH11) and m["weighting"] == w
        assert set(m["task_weight"]) == set(NASH11)
        assert all(len(v) == 2 for v in parts["history"]["task_weight"].values())  # one per epoch
        assert m["mean_valid_mae_std"] > 0
    assert set(runs["equal"]["metrics"]["task_weight"].values()) == {1.0}
    assert abs(sum(runs["famo"]["metrics"]["task_weight"].values()) - 1) < 1e-6  # on the simplex


def test_each_weighting_changes_the_run(runs):
    """Uncertainty weighting and FAMO move their task weights off the start and give other test
    errors than equal weighting (and than each other)."""
    assert len(set(runs["uncertainty"]["metrics"]["task_weight"].values())) > 1
    assert len(set(runs["famo"]["metrics"]["task_weight"].values())) > 1
    maes = {w: tuple(p["metrics"]["test_mae"][t] for t in NASH11) for w, p in runs.items()}
    assert len(set(maes.values())) == 3


def test_equal_weighting_is_the_soft_sharing_hard_run_bit_for_bit(runs):
    """The reason the grid has no equal-weight run: qm9_soft_sharing's λ = ∞ run of the same
    budget trains exactly the same network."""
    eq = _smoke("equal")
    ref = next(c for c in qw.equal_weight_configs("smoke") if c["seed"] == eq["seed"])
    ref = {**ref, **{k: eq[k] for k in ("n_train", "n_valid", "n_test")}}
    hard = soft.train(ref, "cpu")
    assert hard["metrics"]["test_mae"] == runs["equal"]["metrics"]["test_mae"]
    assert hard["history"]["valid_mae"] == runs["equal"]["history"]["valid_mae"]


def test_the_full_grid_trains_at_full_width_in_smoke():
    """Every distinct network and weighting of the ``full`` grid trains (fixture, one epoch)."""
    variants = {(c["weighting"], str(c["model_kwargs"])): c for c in qw.grid("full")}
    assert len(variants) == len(qw.WEIGHTINGS)
    for cfg in variants.values():
        small = qw.smoke_variant(cfg)
        assert small["model_kwargs"] == cfg["model_kwargs"] and small["weighting"] == cfg["weighting"]
        parts = qw.train(small, "cpu")
        assert all(v == v for v in parts["metrics"]["test_mae"].values())
        assert parts["model"]["params"] > 0
