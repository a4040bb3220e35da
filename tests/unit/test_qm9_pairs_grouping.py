"""Experiments ``qm9_pairs`` and ``qm9_grouping``: grid sizes, configs, reading pair gains from
records, the partitions chosen from them, and the grid's dependence on the store."""
from __future__ import annotations

import numpy as np
import pytest

from factorlab.experiments import qm9_grouping as grouping
from factorlab.experiments import qm9_pairs as pairs
from factorlab.experiments.qm9_common import NASH11
from factorlab.experiments.registry import GridNeedsRecordsError
from factorlab.mtl.grouping import pair_gain_matrix
from factorlab.results import RunStore, config_hash

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.parametrize("profile, runs", [("smoke", 4), ("cpu", 168), ("full", 168)])
def test_pairs_grid_has_every_pair_and_one_stack_per_seed(profile, runs):
    configs = pairs.configs(profile)
    assert len(configs) == runs == len({config_hash(c.to_dict()) for c in configs})
    tasks = pairs.TASKS[profile]
    for seed in pairs.SEEDS[profile]:
        mine = [c for c in configs if c.seed == seed]
        assert [c.targets for c in mine if c.sharing == "none"] == [tasks]
        hard = [tuple(c.targets) for c in mine if c.sharing == "hard"]
        assert len(hard) == len(set(hard)) == len(tasks) * (len(tasks) - 1) // 2
        assert all(NASH11.index(a) < NASH11.index(b) for a, b in hard)
    assert pairs.TASKS["cpu"] == NASH11 and pairs.TASKS["smoke"] == ["mu", "alpha", "homo"]


def test_pairs_config_rejects_bad_targets():
    cfg = pairs.grid("smoke")[1]
    for bad in (["alpha", "mu"], ["mu"], ["mu", "gap"], ["mu", "alpha", "homo"]):
        with pytest.raises(ValueError, match="two distinct NASH11 targets in NASH11 order"):
            pairs.Config.from_dict({**cfg, "targets": bad})
    with pytest.raises(ValueError, match="a single-task run has the targets of a profile's TASKS"):
        pairs.Config.from_dict({**pairs.grid("smoke")[0], "targets": ["mu", "alpha"]})


def _fake_records(store: RunStore, profile: str, gains: dict[tuple[str, str], tuple[float, float]],
                  single: dict[str, float]) -> None:
    """Write qm9_pairs records whose valid and test MAEs realise ``gains`` (percent, (g_ab, g_ba))."""
    for cfg in pairs.grid(profile):
        ts = cfg["targets"]
        if cfg["sharing"] == "none":
            mae = dict(single)
        else:
            a, b = ts
            g_ab, g_ba = gains[(a, b)]
            mae = {b: single[b] * (1 - g_ab / 100), a: single[a] * (1 - g_ba / 100)}
        store.run(cfg, lambda c, mae=mae: {"metrics": {"test_mae": mae, "valid_mae": mae}, "history": {},
                                           "timing": {}, "model": {}})


SINGLE = {"mu": 1.0, "alpha": 2.0, "homo": 4.0}
GAINS = {("mu", "alpha"): (10.0, 20.0), ("mu", "homo"): (-5.0, 0.0), ("alpha", "homo"): (5.0, -10.0)}


def test_pair_gains_read_from_records(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_ALLOW_DIRTY", "1")
    store = RunStore(tmp_path)
    assert pairs.pair_gains("smoke", store)[0] == []
    _fake_records(store, "smoke", GAINS, SINGLE)
    seeds, g = pairs.pair_gains("smoke", store)
    assert seeds == [0] and g.shape == (1, 3, 3)
    assert g[0, 0, 1] == pytest.approx(10.0) and g[0, 1, 0] == pytest.approx(20.0)
    assert g[0, 1, 2] == pytest.approx(5.0) and g[0, 2, 1] == pytest.approx(-10.0)
    errs, single = pairs.pair_errors("smoke", store)[0]
    np.testing.assert_allclose(g[0], pair_gain_matrix(errs, single, pairs.TASKS["smoke"]))
    with pytest.raises(ValueError, match="split must be 'test' or 'valid'"):
        pairs.pair_errors("smoke", store, "train")


def test_grouping_chooses_partitions_from_pair_records(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORLAB_ALLOW_DIRTY", "1")
    store = RunStore(tmp_path)
    with pytest.raises(GridNeedsRecordsError, match="python -m factorlab run qm9_pairs --profile smoke"):
        grouping.chosen_partitions("smoke", store)
    assert grouping.groups_to_train("smoke", store) == [["mu", "alpha", "homo"]]  # the smoke fallback
    _fake_records(store, "smoke", GAINS, SINGLE)
    chosen = grouping.chosen_partitions("smoke", store)
    assert set(chosen) == {("oracle", s, k) for s in grouping.SEARCHES for k in grouping.KS["smoke"]}
    assert chosen[("oracle", "exact", 2)].groups == ((0, 1), (2,))  # mu and alpha help each other most
    assert chosen[("oracle", "exact", 2)].score == pytest.approx((10 + 20) / 3)
    assert grouping.groups_to_train("smoke", store) == [["mu", "alpha", "homo"]]


def test_grouping_without_pair_records_names_the_command_for_cpu(tmp_path):
    with pytest.raises(GridNeedsRecordsError, match=r"^qm9_grouping \(cpu\) .*python -m factorlab run qm9_pairs "
                                                    r"--profile cpu"):
        grouping.groups_to_train("cpu", RunStore(tmp_path))


def test_affinity_maps_each_measure_to_zero_is_unrelated():
    m = np.array([[1.0, -0.8], [-0.8, 1.0]])
    np.testing.assert_allclose(grouping.affinity("pearson_raw", m), [[0, 0.8], [0.8, 0]])
    np.testing.assert_allclose(grouping.affinity("encoder_swap", np.array([[1.0, 1.3], [0.9, 1.0]])),
                               [[0, -0.3], [0.1, 0]])
    np.testing.assert_allclose(grouping.affinity("tag_affinity", m), [[0, -0.8], [-0.8, 0]])
    with pytest.raises(ValueError, match="no affinity mapping for measure 'mystery'"):
        grouping.affinity("mystery", m)


def test_grouping_config_needs_three_ordered_targets():
    cfg = grouping.grid("smoke")[0]
    assert cfg["targets"] == ["mu", "alpha", "homo"] and cfg["sharing"] == "hard"
    for bad in (["mu", "alpha"], ["alpha", "mu", "homo"], ["mu", "mu", "homo"], ["mu", "alpha", "gap"]):
        with pytest.raises(ValueError, match="three or more distinct NASH11 targets"):
            grouping.Config.from_dict({**cfg, "targets": bad})


def test_measures_join_once_every_relatedness_seed_is_recorded(tmp_path, monkeypatch):
    from factorlab.experiments import qm9_relatedness

    monkeypatch.setenv("FACTORLAB_ALLOW_DIRTY", "1")
    store = RunStore(tmp_path)
    _fake_records(store, "smoke", GAINS, SINGLE)
    assert grouping.measure_matrices("smoke", store) == {}
    # a nash11 relatedness record in which homo is unrelated to mu and alpha
    labels = NASH11
    m = np.full((11, 11), 0.05)
    m[0, 1] = m[1, 0] = 0.9
    np.fill_diagonal(m, 1.0)
    measure = {"name": "dcor_residual", "labels": labels, "matrix": m.tolist(), "seconds": 1.0, "info": {}}
    (cfg,) = [c.to_dict() for c in qm9_relatedness.configs("smoke") if c.task_set == "nash11"]
    store.run(cfg, lambda c: {"metrics": {"measures": {"dcor_residual": measure}}, "history": {}, "timing": {},
                              "model": {}})
    mats = grouping.measure_matrices("smoke", store)
    assert list(mats) == ["dcor_residual"] and mats["dcor_residual"].shape == (3, 3)
    chosen = grouping.chosen_partitions("smoke", store)
    assert chosen[("dcor_residual", "exact", 2)].groups == ((0, 1), (2,))
    assert chosen[("dcor_residual", "cluster", 2)].groups == ((0, 1), (2,))
